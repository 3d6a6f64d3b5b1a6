"""The inflow drop: a zone's inflow falling abruptly against the same time on earlier days, with how the
zone's pressures moved in the message (unchanged: the meter; fell: the supply; rose: the zone draws less)."""

from __future__ import annotations

import numpy as np
import pytest

from rules.detectors.burst_fingerprint import pressure_response
from rules.engine import Engine
from rules.loader import load_rules
from sentinel.readings import Batch
from tests.helpers import MIN, catalog, ruleset, series_batch
from tests.test_burst_fingerprint import MONDAY, PER_DAY, SETTINGS, STEP, ZONE, _days, _run

DROP = {"id": "drop", "kind": "inflow_drop", "z": {"yellow": 6}, "min_ratio": 0.06, "window": 3,
        "reference": "weekday", "history": "14d", "min_days": 1}  # as in the water defaults
AT = 15 * PER_DAY + 10 * 12  # 10:00 local on day 16: its weekday seen a week before, its spread learned


def _engine(*rules: dict) -> Engine:
    return Engine(catalog(*ZONE), ruleset(*(rules or (DROP,)), settings=SETTINGS))


def _raised(cols: dict, *rules: dict) -> list:
    return [d for d in _run(_engine(*rules), cols) if d.transition == "raised"]


def test_an_inlet_meter_reading_low_is_raised_within_fifteen_minutes_and_the_meter_is_suspected() -> None:
    cols = _days(17)
    cols["FI"][AT:AT + 10 * 12] -= 25.0  # the meter reads 25 m3/h low for ten hours; nothing else moves
    (d,) = _raised(cols)
    assert (d.rule_id, d.kind, d.zone) == ("drop", "inflow_drop", "DMA1")
    assert 0 < (d.time_ns - (MONDAY + AT * STEP)) / MIN <= 15
    assert "fell" in d.message and "inlet meter reading low" in d.message
    assert d.value == pytest.approx(-25.0, rel=0.35)


def test_a_supply_cut_drops_the_pressures_too_and_the_message_says_so() -> None:
    cols = _days(17)
    cols["FI"][AT:AT + 36] *= 0.6
    for p in ("P1", "P2", "P3"):
        cols[p][AT:AT + 36] -= 60.0  # the inlet valve half closed: less water and less head
    (d,) = _raised(cols)
    assert "supply is cut" in d.message


def test_a_zone_drawing_less_raises_its_pressures_and_the_message_says_so() -> None:
    cols = _days(17)
    cols["FI"][AT:AT + 36] -= 25.0
    for p in ("P1", "P2", "P3"):
        cols[p][AT:AT + 36] += 0.3 * 25.0 + 10.0  # less flow through the mains: less head lost
    (d,) = _raised(cols)
    assert "draws less" in d.message


def test_a_bursts_repair_is_not_a_drop_the_inflow_only_returns_to_usual() -> None:
    """Eight hours: longer than the drop's learning pause (max_pause, 6 h), so by the repair today's level
    has taken the burst in and the inflow steps down from it, but only back to the zone's usual."""
    cols = _days(17)
    cols["FI"][AT:AT + 96] += 25.0  # an eight-hour burst, then repaired
    assert _raised(cols) == []
    burst = {"id": "burst", "kind": "burst_fingerprint", "z": {"orange": 9}, "min_ratio": 0.06}
    assert [d.rule_id for d in _raised(cols, DROP, burst)] == ["burst"]  # the fingerprint raises the burst alone


def test_ordinary_days_raise_nothing() -> None:
    assert _raised(_days(21, seed=7)) == []


@pytest.mark.parametrize("z", [None, 0, {"yellow": -1}])
def test_a_drop_rule_without_a_positive_limit_is_refused_naming_z(z: object) -> None:
    with pytest.raises(ValueError, match=r"`z` needs at least one limit above 0"):
        ruleset({**DROP, "z": z})


def test_the_default_water_rules_carry_the_drop_beside_the_fingerprint() -> None:
    kinds = {r.id: r.kind for r in load_rules().rules}
    assert kinds["water-inflow-drop"] == "inflow_drop" and kinds["water-burst-fingerprint"] == "burst_fingerprint"


def test_last_weeks_burst_is_not_this_weeks_usual_so_a_normal_day_is_no_drop() -> None:
    """The drop stops learning while the inflow is as far up as its own limit: a burst kept in its history
    would raise the reference at that hour a week later, and an ordinary day would look low."""
    cols = _days(24)
    cols["FI"][AT:AT + 36] += 25.0  # a three-hour burst on day 16; day 23 is the same weekday
    assert _raised(cols) == []
    later = AT + 7 * PER_DAY
    cols["FI"][later:later + 36] -= 25.0  # while a meter reading low at that hour is raised
    (d,) = _raised(cols)
    assert 0 < (d.time_ns - (MONDAY + later * STEP)) / MIN <= 15


def test_a_meter_that_read_low_for_a_while_is_no_burst_when_it_recovers() -> None:
    """The fingerprint, likewise, does not follow a fall as large as its limit (for up to `max_pause`):
    the meter's return to the truth is not a step up from today's level."""
    cols = _days(17)
    cols["FI"][AT:AT + 36] -= 25.0  # reads low for three hours
    burst = {"id": "burst", "kind": "burst_fingerprint", "z": {"orange": 9}, "min_ratio": 0.06}
    assert [d.rule_id for d in _raised(cols, DROP, burst)] == ["drop"]


def test_a_drop_right_after_a_burst_gets_a_whole_learning_pause() -> None:
    """A burst (far off the other way) pauses the drop's learning; the inlet valve closed for the repair
    straight after is a new alarm, and today's level is held for a whole `max_pause` (6 h) from it, not
    for what the burst left of its pause: the alarm stands that long before the level takes the cut in."""
    cols = _days(17)
    cols["FI"][AT:AT + 24] += 25.0  # two hours of burst
    cols["FI"][AT + 24:AT + 120] *= 0.3  # then the valve all but closed for eight hours
    for p in ("P1", "P2", "P3"):
        cols[p][AT + 24:AT + 120] -= 60.0
    changes = [(d.transition, (d.time_ns - MONDAY) // STEP - AT) for d in _run(_engine(), cols)]
    (raised, start), (cleared, end) = changes
    assert (raised, cleared) == ("raised", "cleared")
    assert 24 < start <= 26  # while the burst still fills the window
    assert start + 72 <= end < 120  # paused six hours from the alarm, then the new state is accepted


def test_the_message_tells_silent_loggers_from_none() -> None:
    assert "unknown" in pressure_response(float("nan"), has_loggers=True)
    assert "no pressure loggers" in pressure_response(float("nan"), has_loggers=False)
    assert "inlet meter" in pressure_response(0.5, has_loggers=True)


OUTLET = {"sensor_id": "FO", "network": "water", "zone": "DMA1", "quantity": "flow", "unit": "m3/h",
          "role": "outlet", "interval_s": 300}
FINGERPRINT = {"id": "burst", "kind": "burst_fingerprint", "z": {"orange": 5}, "min_ratio": 0.06, "window": 3,
               "reference": "weekday", "history": "14d", "min_days": 1}


@pytest.mark.parametrize("shift", [-20.0, 20.0])
def test_a_meter_silent_while_water_shifts_between_zones_opens_no_alarm(shift: float) -> None:
    """A valve moves 20 m3/h more (or less) through the zone to its neighbour: inlet and outlet move
    together and the zone's own use does not change. The outlet meter misses that bucket's reading, so its
    last value is carried and the net inflow steps for one bucket; neither step rule opens on it."""
    cols = _days(17)
    cols["FO"] = np.full(len(cols["FI"]), 30.0) + np.random.default_rng(5).normal(0, 0.2, len(cols["FI"]))
    cols["FI"] = cols["FI"] + cols["FO"]
    cols["FI"][AT:] += shift
    cols["FO"][AT:] += shift
    eng = Engine(catalog(*ZONE, OUTLET), ruleset(DROP, FINGERPRINT, settings=SETTINGS))
    batch = series_batch(eng.catalog, cols, step_ns=STEP, t0=MONDAY)
    silent = (batch.sensor == eng.catalog.index["FO"]) & (batch.time_ns == MONDAY + AT * STEP)
    keep = ~silent
    batch = Batch.of(batch.sensor[keep], batch.time_ns[keep], batch.value[keep], batch.quality[keep])
    state = eng.new_state()
    raised = [d for d in eng.step(state, batch).detections if d.transition == "raised"]
    assert raised == []


def test_a_burst_whose_first_bucket_carries_a_silent_meter_is_raised_a_bucket_later() -> None:
    cols = _days(17)
    cols["FO"] = np.full(len(cols["FI"]), 30.0) + np.random.default_rng(5).normal(0, 0.2, len(cols["FI"]))
    cols["FI"] = cols["FI"] + cols["FO"]
    cols["FI"][AT:AT + 36] += 25.0  # a burst: the zone itself draws more
    eng = Engine(catalog(*ZONE, OUTLET), ruleset(DROP, FINGERPRINT, settings=SETTINGS))
    batch = series_batch(eng.catalog, cols, step_ns=STEP, t0=MONDAY)
    keep = ~((batch.sensor == eng.catalog.index["FO"]) & (batch.time_ns == MONDAY + AT * STEP))
    batch = Batch.of(batch.sensor[keep], batch.time_ns[keep], batch.value[keep], batch.quality[keep])
    raised = [d for d in eng.step(eng.new_state(), batch).detections if d.transition == "raised"]
    assert [d.rule_id for d in raised] == ["burst"]
    assert 5 < (raised[0].time_ns - (MONDAY + AT * STEP)) / MIN <= 15
