"""The burst fingerprint: a zone's inflow steps up while its pressures step down, judged against the same
time on earlier days and today's own offset, and located at the logger that dropped most."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from rules.engine import Engine
from rules.loader import load_rules
from tests.helpers import MIN, MONDAY_CST, catalog, ruleset, series_batch

ZONE = [
    {"sensor_id": "FI", "network": "water", "zone": "DMA1", "quantity": "flow", "unit": "m3/h", "role": "inlet",
     "interval_s": 300},
    *({"sensor_id": f"P{i}", "network": "water", "zone": "DMA1", "quantity": "pressure", "unit": "kPa",
       "interval_s": 300} for i in (1, 2, 3)),
]
RULE = {"id": "burst", "kind": "burst_fingerprint", "z": {"orange": 9, "red": 16}, "min_ratio": 0.06}
SETTINGS = {"zone_bucket": "5m", "zone_lateness": "5m", "utc_offset_h": 8}
STEP = 5 * MIN
PER_DAY = 288
MONDAY = MONDAY_CST


def _days(days: int, *, busier_from: int | None = None, seed: int = 3,
          sunday_like: tuple[int, ...] = ()) -> dict[str, np.ndarray]:
    """Inflow with a morning and evening peak, pressures mirroring it, 5-minute steps. Each day's demand
    drifts 3 % around the usual; `busier_from` makes that day and the rest 10 % busier, the change
    creeping in over the evening and night before (weather does not switch at midnight)."""
    rng = np.random.default_rng(seed)
    n = days * PER_DAY
    h = (np.arange(n) * 5 / 60) % 24
    day = np.arange(n) // PER_DAY
    weekend = ((day % 7) >= 5) | np.isin(day, sunday_like)  # day 0 is a Monday
    peak = np.where(weekend, 10.5, 8.0)  # weekends and holidays sleep in
    shape = 40 + 50 * np.exp(-((h - peak) ** 2) / 3) + 35 * np.exp(-((h - 19) ** 2) / 4)
    daily = 1 + rng.normal(0, 0.03, days)
    day_factor = np.interp(np.arange(n), np.arange(days) * PER_DAY + PER_DAY // 2, daily)  # smooth drift
    if busier_from is not None:
        ramp_start = busier_from * PER_DAY - 6 * 12  # 18:00 the evening before
        day_factor *= 1 + 0.10 * np.clip((np.arange(n) - ramp_start) / (8 * 12), 0, 1)
    inflow = shape * day_factor * (1 + rng.normal(0, 0.01, n))
    cols = {"FI": inflow}
    for i, base in ((1, 420.0), (2, 400.0), (3, 380.0)):
        cols[f"P{i}"] = base - 0.3 * (inflow - 40) + rng.normal(0, 0.4, n)
    return cols


def _run(engine: Engine, cols: dict[str, np.ndarray], size: int = 5000) -> list:
    cat = engine.catalog
    batch = series_batch(cat, cols, step_ns=STEP, t0=MONDAY)
    state = engine.new_state()
    out = []
    for part in batch.split(size):
        out.extend(engine.step(state, part).detections)
    return out


def _engine(settings: dict | None = None, **rule: object) -> Engine:
    return Engine(catalog(*ZONE), ruleset({**RULE, **rule}, settings={**SETTINGS, **(settings or {})}))


def test_a_burst_is_raised_within_ten_minutes_and_located_at_the_logger_that_dropped_most() -> None:
    cols = _days(9)
    at = 8 * PER_DAY + 10 * 12  # 10:00 local on day 9
    cols["FI"][at:at + 36] += 12.0  # about 12 % of the inflow at that hour, for three hours
    cols["P2"][at:at + 36] -= 25.0  # the burst is nearest P2
    cols["P1"][at:at + 36] -= 8.0
    raised = [d for d in _run(_engine(), cols) if d.transition == "raised"]
    assert len(raised) == 1
    d = raised[0]
    assert (d.rule_id, d.kind, d.zone, d.sensor_id) == ("burst", "burst_fingerprint", "DMA1", None)
    assert 0 < (d.time_ns - (MONDAY + at * STEP)) / MIN <= 10
    assert "pressures fell" in d.message and "a burst?" in d.message and "pressure fell most at P2" in d.message
    assert d.value == pytest.approx(12.0, rel=0.35)  # the inflow step it saw, in m3/h


def test_a_busier_day_is_not_a_burst() -> None:
    """10 % busier from the night on: the morning peak is 12 m3/h above earlier mornings (an additive
    offset learned at night would call that a burst), but it is the same share as the night's."""
    dets = _run(_engine(), _days(9, busier_from=8))
    assert [d for d in dets if d.transition == "raised"] == []


def test_inflow_alone_raises_when_pressures_hold_but_needs_more_evidence() -> None:
    """With pressure controlled by a PRV (no drop) the flow evidence alone has to carry the grade."""
    cols = _days(9)
    at = 8 * PER_DAY + 10 * 12
    cols["FI"][at:at + 36] += 20.0
    raised = [d for d in _run(_engine(), cols) if d.transition == "raised"]
    assert len(raised) == 1 and "pressure fell most" not in raised[0].message
    assert "pressures held" in raised[0].message and "the inlet meter reading high?" in raised[0].message
    assert _run(_engine(pressure_weight=0), _days(9)) == []


def test_a_step_up_with_pressures_rising_is_told_as_more_water_pushed_in() -> None:
    """A pump started or an inlet valve opened: more water and more pressure together, not a burst."""
    cols = _days(9)
    at = 8 * PER_DAY + 10 * 12
    cols["FI"][at:at + 36] += 20.0
    cols["P1"][at:at + 36] += 15.0
    cols["P2"][at:at + 36] += 15.0
    raised = [d for d in _run(_engine(), cols) if d.transition == "raised"]
    assert len(raised) == 1 and "pressures rose" in raised[0].message and "burst" not in raised[0].message


def test_a_burst_is_judged_against_the_level_before_it_so_a_quick_level_does_not_swallow_it() -> None:
    """Today's offset may follow within minutes (half-life 5 min here) because the window's buckets are
    measured against it as it stood before the window: a burst's own first buckets cannot pull it up.
    Judged bucket by bucket against a level that follows, this burst faded before it was seen."""
    cols = _days(9)
    at = 8 * PER_DAY + 10 * 12
    cols["FI"][at:at + 36] += 6.0  # about 10 % of the inflow at that hour, no pressure drop
    quick = _engine(level_halflife="5m", pressure_weight=0, window=3, z={"orange": 5, "red": 16})
    raised = [d for d in _run(quick, cols) if d.transition == "raised"]
    assert len(raised) == 1
    assert 0 < (raised[0].time_ns - (MONDAY + at * STEP)) / MIN <= 15


def test_a_spread_learned_from_few_windows_counts_its_sigmas_for_less() -> None:
    """Three days of windows in an hour's slot read a z as Student's t with about ten degrees of
    freedom: at the limit that is worth 0.79 of a normal z, after a week 0.89, and never more than the
    EWMA's effective count allows (below 1: a spread is never known exactly)."""
    engine = _engine(z={"orange": 3.75}, window=3)
    scorer = next(c.detector for c in engine.rules if c.detector.rule.id == "burst").scorer
    factor = scorer._young(np.array([12 * 3, 12 * 7, 12 * 14, 12 * 60, 12 * 365]))
    assert factor[:2] == pytest.approx([0.79, 0.89], abs=0.01)
    assert np.all(np.diff(factor) >= 0) and factor[-1] == factor[-2] < 1.0


def test_an_alarm_stands_through_a_silent_inlet_meter_without_learning_the_burst() -> None:
    """The inlet meter goes silent for 75 minutes an hour into a burst (its last value is held for
    `zone_stale`, an hour, then the zone has a gap): the zone is not judged while its window has a gap,
    the alarm stands, and the quick level does not take the burst in meanwhile, so the alarm holds its
    grade once the meter is back, until the burst ends (learning there, it fell back to orange)."""
    cols = _days(9)
    at = 8 * PER_DAY + 10 * 12
    cols["FI"][at:at + 48] += 12.0  # four hours
    cols["P2"][at:at + 48] -= 25.0
    eng = _engine(window=3)
    batch = series_batch(eng.catalog, cols, step_ns=STEP, t0=MONDAY)
    gap_from, gap_to = MONDAY + (at + 12) * STEP, MONDAY + (at + 27) * STEP
    silent = (batch.sensor == eng.catalog.index["FI"]) & (batch.time_ns >= gap_from) & (batch.time_ns < gap_to)
    state = eng.new_state()
    dets = [d for part in batch.take(~silent).split(5000) for d in eng.step(state, part).detections]
    burst_end = MONDAY + (at + 48) * STEP
    assert [d.transition for d in dets if d.time_ns <= burst_end] == ["raised", "escalated"]


def test_a_public_holiday_is_judged_against_weekends_when_the_calendar_lists_it() -> None:
    cols = _days(17, sunday_like=(15,))  # Tuesday of the third week runs on the Sunday pattern
    holiday = dt.datetime.fromtimestamp((MONDAY + 15 * 86_400 * 10**9) / 1e9 + 8 * 3600, dt.UTC).date()
    assert _run(_engine({"holidays": [holiday.isoformat()]}), cols) == []
    unlisted = [d for d in _run(_engine(), cols) if d.transition == "raised"]
    assert unlisted and all(15 * PER_DAY <= (d.time_ns - MONDAY) // STEP < 16 * PER_DAY for d in unlisted)


def test_nothing_is_judged_before_three_same_type_days_of_history() -> None:
    cols = _days(3)
    cols["FI"][2 * PER_DAY + 120:] += 40.0  # a huge step on day 3: only two earlier days known
    assert _run(_engine(), cols) == []


def test_learning_pauses_during_an_alarm_for_at_most_max_pause() -> None:
    """An unrepaired burst stays raised for the pause, then becomes the zone's new normal and clears."""
    cols = _days(10)
    at = 8 * PER_DAY + 10 * 12
    cols["FI"][at:] += 15.0
    dets = _run(_engine(max_pause="2h"), cols)
    raised = [d for d in dets if d.transition == "raised"]
    cleared = [d for d in dets if d.transition == "cleared"]
    assert len(raised) >= 1 and cleared
    assert (cleared[0].time_ns - raised[0].time_ns) / MIN >= 120


@pytest.mark.parametrize("size", [1, 7, 1000])
def test_the_same_detections_whatever_the_batch_size(size: int) -> None:
    cols = _days(9)
    at = 8 * PER_DAY + 10 * 12
    cols["FI"][at:at + 36] += 12.0
    cols["P2"][at:at + 36] -= 25.0
    whole = _run(_engine(), cols, size=10**7)
    assert whole and _run(_engine(), cols, size=size) == whole


def test_a_bucket_that_does_not_divide_a_day_is_refused_with_the_rule_named() -> None:
    with pytest.raises(ValueError, match=r"'burst'.*zone_bucket must divide a day"):
        Engine(catalog(*ZONE), ruleset(RULE, settings={**SETTINGS, "zone_bucket": "7m"}))


@pytest.mark.parametrize("z", [None, 0, {"orange": 0, "red": 16}])
def test_a_fingerprint_without_a_positive_limit_is_refused_naming_z(z: object) -> None:
    with pytest.raises(ValueError, match=r"`z` needs at least one limit above 0"):
        ruleset({**RULE, "z": z})


def test_the_default_water_rules_carry_the_fingerprint_on_five_minute_buckets() -> None:
    rs = load_rules()
    rule = next(r for r in rs.rules if r.id == "water-burst-fingerprint")
    assert rule.kind == "burst_fingerprint" and rs.settings.zone_bucket == 300


def test_zone_state_round_trips_through_a_snapshot() -> None:
    from rules.snapshot import from_bytes, to_bytes

    eng = _engine()
    cols = _days(4)
    batch = series_batch(eng.catalog, cols, step_ns=STEP, t0=MONDAY)
    state = eng.new_state()
    eng.step(state, batch)
    restored, _ = from_bytes(to_bytes(state, engine=eng), eng)
    a, b = state.rules["burst"].detector, restored.rules["burst"].detector
    np.testing.assert_array_equal(a["flow"].ring, b["flow"].ring)
    np.testing.assert_array_equal(a["pressure"].level, b["pressure"].level)
    for field in ("resid", "ref", "before"):  # the window judged next, and the level it is judged against
        np.testing.assert_array_equal(getattr(a["flow"], field), getattr(b["flow"], field))
    assert len(batch) == 4 * PER_DAY * len(ZONE)


def test_a_zone_with_many_loggers_keeps_a_state_that_fits_one_kafka_message() -> None:
    """Scale-out sends each zone's whole memory as one Kafka record (1 MB by default): the fingerprint's
    history is kept per zone, not per logger, so 60 loggers cost what 3 do, give or take."""
    from rules.snapshot import to_bytes

    def state_bytes(loggers: int) -> int:
        rows = [ZONE[0], *({"sensor_id": f"P{i}", "network": "water", "zone": "DMA1", "quantity": "pressure",
                            "unit": "kPa", "interval_s": 300} for i in range(loggers))]
        eng = Engine(catalog(*rows), load_rules())
        return len(to_bytes(eng.new_state(), engine=eng))

    few, many = state_bytes(3), state_bytes(60)
    assert many < 400_000
    assert many - few < 57 * 4_000  # per extra logger: a few hourly baselines (~2 kB), no 16 kB history ring


def test_the_default_water_rules_keep_a_zone_under_260_kb() -> None:
    """Four weeks of 5-minute history per zone for the fingerprint and two for the inflow drop (an inflow
    and a pressure series and the marks of which bucket each slot holds, about 25 kB a week); the marks
    are int32 (they were half the state at int64). Scale-out sends a zone's state as one Kafka record."""
    from rules.snapshot import to_bytes

    rows = [ZONE[0], *({"sensor_id": f"P{i}", "network": "water", "zone": "DMA1", "quantity": "pressure",
                        "unit": "kPa", "interval_s": 300} for i in range(4))]
    eng = Engine(catalog(*rows), load_rules())
    state = eng.new_state()
    assert state.rules["water-burst-fingerprint"].detector["stamp"].dtype == np.int32
    assert len(to_bytes(state, engine=eng)) < 260_000
