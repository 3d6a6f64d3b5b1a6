"""`explained_by`: a night's excess raised while a burst alarm stands in the zone is that burst's water, and
its alarm ends with the burst's (rules/explained.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rules import snapshot
from rules.engine import Engine
from rules.loader import load_rules
from sentinel.errors import InputErrors
from tests.helpers import MIN, MONDAY_CST, catalog, ruleset, series_batch

ZONE = [{"sensor_id": "FI", "network": "water", "zone": "DMA1", "quantity": "flow", "unit": "m3/h",
         "role": "inlet", "interval_s": 300}]
SETTINGS = {"zone_bucket": "15m", "zone_lateness": "5m", "utc_offset_h": 8}
STEP = 15 * MIN
PER_DAY = 96
DAY_NS = 86_400 * 10**9
BURST = {"id": "burst", "kind": "zone_balance", "z": 4, "min_ratio": 0.5}  # stands in for a burst rule
NIGHT = {"id": "mnf", "kind": "night_flow", "increase": 0.2, "warmup_nights": 2}


def _inflow(days: int, seed: int = 1) -> np.ndarray:
    """15-minute inflow with a 20 m3/h night, a morning and an evening peak, 1 % noise."""
    rng = np.random.default_rng(seed)
    h = (np.arange(days * PER_DAY) * 15 / 60) % 24
    shape = 20 + 50 * np.exp(-((h - 8) ** 2) / 4) + 30 * np.exp(-((h - 19) ** 2) / 6)
    return shape * (1 + rng.normal(0, 0.01, len(h)))


def _at(day: int, hour: float) -> int:
    return day * PER_DAY + int(hour * 4)


def _run(flow: np.ndarray, night: dict, batch: int | None = None, restart_at: int | None = None,
         night_first: bool = False) -> list[tuple[str, str, float, str]]:
    """(rule, transition, days since the first Monday, message) of every detection; `restart_at`: the
    engine is snapshotted after that many readings and a new one goes on from the snapshot."""
    rules = (night, BURST) if night_first else (BURST, night)
    eng = Engine(catalog(*ZONE), ruleset(*rules, settings=SETTINGS))
    state = eng.new_state()
    b = series_batch(eng.catalog, {"FI": flow}, step_ns=STEP, t0=MONDAY_CST)
    size = batch or len(b)
    cuts = sorted({*range(0, len(b), size), *([restart_at] if restart_at else [])})
    out = []
    for start, end in zip(cuts, [*cuts[1:], len(b)], strict=True):
        if start == restart_at:
            eng = Engine(catalog(*ZONE), ruleset(*rules, settings=SETTINGS))
            state, _ = snapshot.from_bytes(snapshot.to_bytes(state, engine=eng), eng)
        out += eng.step(state, b.take(slice(start, end))).detections
    return [(d.rule_id, d.transition, round((d.time_ns - MONDAY_CST) / DAY_NS, 3), d.message) for d in out]


def _night(dets: list[tuple[str, str, float, str]]) -> list[tuple[str, float]]:
    return [(tr, t) for rid, tr, t, _ in dets if rid == "mnf"]


def _burst_through_the_night(days: int = 14) -> np.ndarray:
    flow = _inflow(days)
    flow[_at(9, 20):_at(10, 10)] += 40.0  # 20:00 on day 9 until a repair at 10:00 the next morning
    return flow


def test_a_night_raised_during_a_burst_ends_with_the_burst_not_a_day_later():
    flow = _burst_through_the_night()
    alone = _night(_run(flow, NIGHT))  # on its own, night flow holds its alarm until the next night's judgement
    assert alone == [("raised", pytest.approx(10 + 4 / 24, abs=0.01)),
                     ("cleared", pytest.approx(11 + 4 / 24, abs=0.01))]
    linked = _run(flow, {**NIGHT, "explained_by": ["burst"]})
    night = _night(linked)
    assert [tr for tr, _ in night] == ["raised", "cleared"]
    assert night[0][1] == pytest.approx(10 + 4 / 24, abs=0.01)  # 04:00, as before
    burst_clear = next(t for rid, tr, t, _ in linked if rid == "burst" and tr == "cleared")
    assert night[1][1] == burst_clear == pytest.approx(10 + 10 / 24, abs=0.02)  # the repair at 10:00
    raised = next(m for rid, tr, _, m in linked if rid == "mnf" and tr == "raised")
    assert "an alarm of burst stands in the zone" in raised
    cleared = next(m for rid, tr, _, m in linked if rid == "mnf" and tr == "cleared")
    assert cleared.startswith("cleared with burst")


def test_a_burst_repaired_as_the_night_is_judged_explains_that_night_away():
    flow = _inflow(14)
    flow[_at(9, 22):_at(10, 4)] += 40.0  # the main is shut at 04:00, as the night's window closes
    assert _night(_run(flow, NIGHT))[:1] == [("raised", pytest.approx(10 + 4 / 24, abs=0.01))]
    assert _night(_run(flow, {**NIGHT, "explained_by": ["burst"]})) == []  # its water stopped with it


def test_a_leak_that_outlasts_the_burst_raises_again_on_the_next_night():
    flow = _burst_through_the_night()
    flow[_at(9, 20):] += 6.0  # and a leak from the same evening that nobody repairs
    night = _night(_run(flow, {**NIGHT, "explained_by": ["burst"]}))
    assert [tr for tr, _ in night][:3] == ["raised", "cleared", "raised"]
    assert night[2][1] == pytest.approx(11 + 4 / 24, abs=0.01)


def test_a_night_raised_without_a_standing_burst_is_not_explained():
    flow = _inflow(14)
    flow[_at(9, 20):] += 6.0  # a leak alone: night flow holds it night after night
    night = _night(_run(flow, {**NIGHT, "explained_by": ["burst"]}))
    assert night[:1] == [("raised", pytest.approx(10 + 4 / 24, abs=0.01))] and len(night) == 1


def test_a_burst_repaired_early_in_the_window_leaves_the_night_to_a_leak_it_did_not_explain():
    flow = _inflow(14)
    flow[_at(9, 20):] += 6.0  # a leak
    flow[_at(9, 22):_at(10, 2.5)] += 40.0  # and a burst repaired at 02:30: the minimum is read after it
    night = _night(_run(flow, {**NIGHT, "explained_by": ["burst"]}))
    assert night == [("raised", pytest.approx(10 + 4 / 24, abs=0.01))]  # raised that night, and held


def test_an_alarm_escalating_during_a_burst_is_not_taken_for_its_water():
    flow = _inflow(14)
    flow[_at(9, 20):] += 6.0  # a leak raised on its own the first night (30 % over)
    flow[_at(10, 20):_at(11, 10)] += 40.0  # a burst through the next night escalates it
    rule = {**NIGHT, "increase": {"yellow": 0.2, "red": 1.0}, "explained_by": ["burst"]}
    dets = [d for d in _run(flow, rule) if d[0] == "mnf"]
    assert [(tr, t) for _, tr, t, _ in dets] == [("raised", pytest.approx(10 + 4 / 24, abs=0.01)),
                                                 ("escalated", pytest.approx(11 + 4 / 24, abs=0.01)),
                                                 ("deescalated", pytest.approx(12 + 4 / 24, abs=0.01))]
    # the leak's alarm is not the burst's: not said to be, and not cleared with it at 10:00
    assert "stands in the zone" not in dets[1][3]


def test_an_explaining_rule_that_stops_on_an_error_leaves_the_alarm_standing(monkeypatch: pytest.MonkeyPatch):
    from rules.detectors.zone_balance import ZoneBalanceDetector

    real = ZoneBalanceDetector.evaluate_bucket

    def breaks_after_the_night(self, st, bucket, level):
        if bucket.end_ns >= MONDAY_CST + int((10 + 6 / 24) * DAY_NS):
            raise RuntimeError("sensor table corrupt")
        return real(self, st, bucket, level)

    monkeypatch.setattr(ZoneBalanceDetector, "evaluate_bucket", breaks_after_the_night)
    night = _night(_run(_burst_through_the_night(), {**NIGHT, "explained_by": ["burst"]}))
    # its alarm can no longer be read, so the night is not cleared "with" it: the next night decides
    assert night == [("raised", pytest.approx(10 + 4 / 24, abs=0.01)),
                     ("cleared", pytest.approx(11 + 4 / 24, abs=0.01))]


def test_an_explaining_rule_reloaded_with_new_settings_starts_over_and_the_alarm_holds():
    flow = _burst_through_the_night()
    night = {**NIGHT, "explained_by": ["burst"]}
    eng = Engine(catalog(*ZONE), ruleset(BURST, night, settings=SETTINGS))
    state = eng.new_state()
    b = series_batch(eng.catalog, {"FI": flow}, step_ns=STEP, t0=MONDAY_CST)
    cut = _at(10, 6)  # after the night was raised under the burst, before the repair
    first = eng.step(state, b.take(slice(0, cut))).detections
    assert [d.transition for d in first if d.rule_id == "mnf"] == ["raised"]
    edited = Engine(catalog(*ZONE), ruleset({**BURST, "z": 4.5}, night, settings=SETTINGS))
    state = edited.adopt(state)  # the burst rule starts over: it has no alarm left to end with
    rest = edited.step(state, b.take(slice(cut, len(b)))).detections
    assert [(d.transition, round((d.time_ns - MONDAY_CST) / DAY_NS, 2)) for d in rest if d.rule_id == "mnf"] \
        == [("cleared", 11.17)]  # the next night decides, as without explained_by


def test_the_rule_order_in_the_file_does_not_matter():
    flow = _burst_through_the_night()
    rule = {**NIGHT, "explained_by": ["burst"]}
    assert sorted(_run(flow, rule, night_first=True)) == sorted(_run(flow, rule))


def test_linking_gives_the_same_detections_however_the_stream_is_cut():
    flow = _burst_through_the_night()
    rule = {**NIGHT, "explained_by": ["burst"]}
    assert _run(flow, rule) == _run(flow, rule, batch=37)


def test_a_restart_from_a_snapshot_remembers_the_night_was_explained():
    flow = _burst_through_the_night()
    rule = {**NIGHT, "explained_by": ["burst"]}
    assert _run(flow, rule, restart_at=_at(10, 6)) == _run(flow, rule)  # restarted between the raise and the repair


def test_editing_explained_by_keeps_what_the_rule_learned():
    plain = ruleset(NIGHT).rules[0]
    linked = ruleset({**NIGHT, "explained_by": ["burst"]}).rules[0]
    assert plain.fingerprint() == linked.fingerprint()


@pytest.mark.parametrize(("names", "problem"), [
    (["nope"], "explained_by 'nope' is not a rule in these files"),
    (["mnf"], "explained_by 'mnf' names the rule itself"),
    (["hi"], "explained_by 'hi' is a threshold rule, which watches sensors, not zones"),
    (["other"], "explained_by 'other' is itself explained by others"),
])
def test_explained_by_must_name_another_zone_rule(tmp_path: Path, names: list[str], problem: str):
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n"
        "  - {id: mnf, kind: night_flow, explained_by: " + str(names).replace("'", "") + "}\n"
        "  - {id: hi, kind: threshold, high: 5}\n"
        "  - {id: burst, kind: zone_balance}\n"
        "  - {id: other, kind: night_flow, explained_by: [burst]}\n", encoding="utf-8")
    with pytest.raises(InputErrors, match=problem):
        load_rules([path])
