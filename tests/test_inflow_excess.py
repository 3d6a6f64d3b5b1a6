"""Inflow excess: the steady extra m3/h a leak adds at every hour, told apart from a busier day (a scale of
the zone's weekly profile) and from hours of something else (a burst, a hydrant draw)."""

from __future__ import annotations

import numpy as np
import pytest

from rules.engine import Engine
from rules.loader import parse_rule_file
from sentinel.errors import InputErrors
from tests.helpers import MIN, MONDAY_CST, catalog, ruleset, series_batch

ZONE = [{"sensor_id": "FI", "network": "water", "zone": "DMA1", "quantity": "flow", "unit": "m3/h",
         "role": "inlet", "interval_s": 300}]
RULE = {"id": "excess", "kind": "inflow_excess", "z": {"yellow": 5, "orange": 10}, "min_ratio": 0.02}
SETTINGS = {"zone_bucket": "5m", "zone_lateness": "5m", "utc_offset_h": 8}
STEP = 5 * MIN
PER_DAY = 288
MONDAY = MONDAY_CST
SCALES = ["daily", "drift"]  # the demand scale fitted a knot a day, or weighed out as a drift


def _inflow(days: int, *, seed: int = 5, sunday_like: tuple[int, ...] = (),
            day_scale: dict[int, float] | None = None) -> np.ndarray:
    """5-minute zone inflow, mean about 60 m3/h: a night trough and two peaks whose timing and height
    differ by weekday (the same every week), each day 3 % busier or quieter than usual (blending from one
day's midday to the next), 1 % noise."""
    rng = np.random.default_rng(seed)
    n = days * PER_DAY
    h = (np.arange(n) * 5 / 60) % 24
    day = np.arange(n) // PER_DAY
    weekday = np.where(np.isin(day, sunday_like), 6, day % 7)  # day 0 is a Monday
    peak = 7.0 + 0.4 * weekday + np.where(weekday >= 5, 2.0, 0.0)
    evening = 19.0 + 0.3 * np.sin(weekday)
    shape = 25 + 55 * np.exp(-((h - peak) ** 2) / 3) + (30 + 3 * weekday) * np.exp(-((h - evening) ** 2) / 4)
    daily = 1 + rng.normal(0, 0.03, days)
    for d, f in (day_scale or {}).items():
        daily[d] = f
    scale = np.interp(np.arange(n), np.arange(days) * PER_DAY + PER_DAY // 2, daily)  # weather drifts
    return shape * scale * (1 + rng.normal(0, 0.01, n))


def _engine(settings: dict | None = None, **rule: object) -> Engine:
    return Engine(catalog(*ZONE), ruleset({**RULE, **rule}, settings={**SETTINGS, **(settings or {})}))


def _run(engine: Engine, inflow: np.ndarray, size: int = 4000) -> list:
    batch = series_batch(engine.catalog, {"FI": inflow}, step_ns=STEP, t0=MONDAY)
    state = engine.new_state()
    out = []
    for part in batch.split(size):
        out.extend(engine.step(state, part).detections)
    return out


def _raised(detections: list) -> list:
    return [d for d in detections if d.transition == "raised"]


def test_a_leak_growing_to_four_percent_over_three_days_is_raised_within_two_days() -> None:
    flow = _inflow(21)
    start = 15 * PER_DAY  # a Tuesday, two weeks of history behind it
    ramp = np.clip((np.arange(len(flow)) - start) / (3 * PER_DAY), 0, 1)
    flow += 0.04 * 60 * ramp  # to 2.4 m3/h, the same at 3 a.m. as at the peak
    raised = _raised(_run(_engine(), flow))
    assert len(raised) == 1
    d = raised[0]
    assert (d.rule_id, d.kind, d.zone, d.sensor_id) == ("excess", "inflow_excess", "DMA1", None)
    hours = (d.time_ns - (MONDAY + start * STEP)) / (60 * MIN)
    assert 12 < hours <= 48
    assert "% of the zone's inflow" in d.message and "weekly profile" in d.message
    assert 0.5 < d.value < 2.4  # the excess it estimated, m3/h (the window lags a growing leak)


@pytest.mark.parametrize("scale", SCALES)
def test_busier_and_quieter_days_are_not_leaks(scale: str) -> None:
    flow = _inflow(21, seed=11, day_scale={16: 1.10, 18: 0.90})  # a hot day, a rainy one
    assert _raised(_run(_engine(scale=scale), flow)) == []


@pytest.mark.parametrize("scale", SCALES)
def test_hours_of_something_else_are_left_to_other_rules(scale: str) -> None:
    flow = _inflow(21, seed=2)
    at = 16 * PER_DAY + 2 * 12  # 02:00 on a Wednesday
    flow[at:at + 6 * 12] += 20.0  # a burst worth a third of the mean inflow, repaired after six hours
    hydrant = 18 * PER_DAY + 10 * 12
    flow[hydrant:hydrant + 2 * 12] += 35.0  # a fire-hydrant draw, two hours
    assert _raised(_run(_engine(scale=scale), flow)) == []


@pytest.mark.parametrize("scale", SCALES)
def test_a_standing_leak_is_not_learned_into_the_profile(scale: str) -> None:
    flow = _inflow(29, seed=4)
    start = 14 * PER_DAY
    flow += 0.06 * 60 * np.clip((np.arange(len(flow)) - start) / PER_DAY, 0, 1)  # grows for a day, then stays
    out = _run(_engine(scale=scale), flow)
    assert len(_raised(out)) == 1
    assert [d for d in out if d.transition == "cleared"] == []  # still raised two weeks on


@pytest.mark.parametrize("scale", SCALES)
def test_nothing_is_judged_before_the_same_weekday_has_been_seen(scale: str) -> None:
    flow = _inflow(7)
    flow[4 * PER_DAY:] += 0.2 * 60  # an enormous excess from Friday, but no Friday to hold it against yet
    assert _run(_engine(scale=scale), flow) == []


@pytest.mark.parametrize("scale", SCALES)
def test_one_odd_week_in_the_profile_is_outvoted_by_the_others(scale: str) -> None:
    flow = _inflow(25, seed=6)
    flow[15 * PER_DAY:16 * PER_DAY] -= 3.0  # the third Tuesday a metered customer takes 3 m3/h less
    # the fourth Tuesday's profile is the median of three Tuesdays, so the odd one does not show as excess
    assert _raised(_run(_engine(scale=scale), flow)) == []


@pytest.mark.parametrize("scale", SCALES)
def test_a_zone_that_uses_less_for_good_is_still_judged(scale: str) -> None:
    flow = _inflow(50, seed=9)
    step = np.arange(len(flow))
    flow -= np.where(step >= 14 * PER_DAY, 0.04 * 60, 0.0)  # a big customer leaves for good
    flow += np.where(step >= 40 * PER_DAY, 0.10 * 60, 0.0)  # weeks later a leak appears
    raised = _raised(_run(_engine(scale=scale), flow))
    assert len(raised) == 1 and raised[0].time_ns >= MONDAY + 40 * PER_DAY * STEP


@pytest.mark.parametrize("scale", SCALES)
def test_a_profile_too_flat_to_tell_a_scale_from_a_leak_is_not_judged(scale: str) -> None:
    rng = np.random.default_rng(1)
    flow = 50.0 * (1 + rng.normal(0, 0.01, 21 * PER_DAY))  # an industrial zone: the same flow day and night
    flow[15 * PER_DAY:] += 3.0
    assert _run(_engine(scale=scale), flow) == []


@pytest.mark.parametrize("scale", SCALES)
def test_the_state_carried_between_workers_gives_the_same_answer(scale: str) -> None:
    from rules.snapshot import from_bytes, to_bytes

    flow = _inflow(21, seed=3)
    flow += 0.05 * 60 * np.clip((np.arange(len(flow)) - 15 * PER_DAY) / PER_DAY, 0, 1)
    eng = _engine(scale=scale)
    batch = series_batch(eng.catalog, {"FI": flow}, step_ns=STEP, t0=MONDAY)
    state, restored = eng.new_state(), eng.new_state()
    whole, handed_over = [], []
    for part in batch.split(2000):
        whole += eng.step(state, part).detections
        restored, _ = from_bytes(to_bytes(restored, engine=eng), eng)  # a new worker reads the table
        handed_over += eng.step(restored, part).detections
    assert len(_raised(whole)) == 1 and handed_over == whole


@pytest.mark.parametrize(("options", "error"), [
    ("weeks: 0", r"water.yaml:3: .*\(leak\) weeks: .*greater than or equal to 1"),
    ("every: 2d", r"\(leak\) every: .*less than or equal to 86400"),
    ("scale: weekly", r"\(leak\) scale: .*'daily' or 'drift'"),
    ("scale: drift, drift: 0", r"\(leak\) drift: .*greater than 0"),
    ("drift: 0.05, drift_time: 12h", r"\(leak\): `drift` and `drift_time` apply only with `scale: drift`"),
])
def test_rule_files_are_checked(options: str, error: str) -> None:
    doc = f"version: 1\nrules:\n  - {{id: leak, kind: inflow_excess, {options}}}\n"
    with pytest.raises(InputErrors, match=error):
        parse_rule_file(doc, "water.yaml")


def _wander(n: int, seed: int, sd: float = 0.03, days: float = 1.0) -> np.ndarray:
    """A demand scale drifting around 1 (Ornstein-Uhlenbeck: `sd`, correlation time `days`), per 5 minutes:
    weather does not keep to calendar days."""
    rng = np.random.default_rng(seed)
    keep = np.exp(-1.0 / (days * PER_DAY))
    kicks = rng.normal(0.0, sd * np.sqrt(1.0 - keep**2), n)
    out = np.empty(n)
    out[0] = rng.normal(0.0, sd)
    for i in range(1, n):
        out[i] = keep * out[i - 1] + kicks[i]
    return 1.0 + out


def test_a_drifting_demand_is_weighed_out_and_a_slow_leak_found_sooner_than_with_a_scale_a_day() -> None:
    hours: dict[str, list[float]] = {"daily": [], "drift": []}
    start = 15 * PER_DAY
    for seed in (1, 2, 3, 4):
        flow = _inflow(24, seed=seed, day_scale=dict.fromkeys(range(24), 1.0)) * _wander(24 * PER_DAY, seed + 100)
        leak = flow + 0.06 * 60 * np.clip((np.arange(len(flow)) - start) / (3 * PER_DAY), 0, 1)
        for scale in hours:
            engine = _engine(scale=scale, z={"yellow": 3, "orange": 8})
            assert _raised(_run(engine, flow)) == []  # the drift alone is no leak, at the lower limit too
            raised = _raised(_run(engine, leak))
            assert len(raised) == 1
            hours[scale].append((raised[0].time_ns - (MONDAY + start * STEP)) / (60 * MIN))
    sooner = np.subtract(hours["daily"], hours["drift"])
    assert (sooner >= 0).all() and sooner.sum() >= 12, hours


@pytest.mark.parametrize("flow", [np.zeros(21 * PER_DAY), np.full(21 * PER_DAY, 50.0)], ids=["silent", "constant"])
def test_a_silent_or_constant_zone_is_not_judged_and_does_not_stop_the_rule(flow: np.ndarray) -> None:
    engine = _engine(scale="drift")
    state = engine.new_state()
    batch = series_batch(engine.catalog, {"FI": flow}, step_ns=STEP, t0=MONDAY)
    detections = [d for part in batch.split(4000) for d in engine.step(state, part).detections]
    assert detections == [] and not state.failed
