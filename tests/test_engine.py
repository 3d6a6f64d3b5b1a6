"""The engine: each detector kind does what its rule says, and batching never changes the answer."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.engine import Engine
from sentinel.pipeline import Pipeline
from sentinel.readings import QUALITY_BAD, Batch
from sentinel.severity import Severity
from tests.helpers import MIN, T0, catalog, ruleset, series_batch

WATER = [
    {"sensor_id": "P1", "network": "water", "zone": "DMA1", "quantity": "pressure", "unit": "kPa",
     "interval_s": 60},
    {"sensor_id": "P2", "network": "water", "zone": "DMA1", "quantity": "pressure", "unit": "m",
     "interval_s": 60},
    {"sensor_id": "F1", "network": "water", "zone": "DMA1", "quantity": "flow", "unit": "m3/h",
     "role": "inlet", "interval_s": 60},
    {"sensor_id": "F2", "network": "water", "zone": "DMA1", "quantity": "flow", "unit": "m3/h",
     "role": "outlet", "interval_s": 60},
]


def run(engine: Engine, batch: Batch, size: int) -> list:
    state = engine.new_state()
    out = []
    for part in batch.split(size):
        out.extend(engine.step(state, part).detections)
    return sorted(out, key=lambda d: (d.time_ns, d.rule_id, d.subject, d.transition))


def test_threshold_fires_after_hold_and_clears_with_hysteresis() -> None:
    cat = catalog(WATER[0])
    eng = Engine(cat, ruleset({"id": "low", "kind": "threshold", "low": 200, "hysteresis": 10, "for": "2m",
                               "severity": "orange"}))
    values = np.array([250, 195, 195, 195, 205, 209, 211, 250], dtype=float)
    dets = run(eng, series_batch(cat, {"P1": values}), 100)
    assert [(d.transition, (d.time_ns - T0) // MIN) for d in dets] == [("raised", 3), ("cleared", 6)]
    assert dets[0].severity is Severity.ORANGE
    assert "below 200" in dets[0].message


def test_threshold_grades_escalate_and_deescalate() -> None:
    cat = catalog({"sensor_id": "G1", "network": "gas", "zone": "GD1", "quantity": "gas_concentration",
                   "unit": "%LEL"})
    eng = Engine(cat, ruleset({"id": "lel", "kind": "threshold", "high": {"orange": 20, "red": 50},
                               "hysteresis": 5}))
    dets = run(eng, series_batch(cat, {"G1": np.array([1, 25, 60, 48, 30, 17, 14.0])}), 3)
    assert [(d.transition, d.severity) for d in dets] == [
        ("raised", Severity.ORANGE), ("escalated", Severity.RED), ("deescalated", Severity.ORANGE),
        ("cleared", None)]


def test_units_are_canonical_before_rules_see_them() -> None:
    cat = catalog(WATER[1])  # reports metres of head
    eng = Engine(cat, ruleset({"id": "low", "kind": "threshold", "low": 200}))
    head_m = np.array([30.0, 19.0])  # 294 kPa, then 186 kPa
    batch = series_batch(cat, {"P2": head_m})
    batch = Batch(batch.sensor, batch.time_ns, cat.to_canonical(batch.sensor, batch.value), batch.quality)
    dets = run(eng, batch, 10)
    assert [d.transition for d in dets] == ["raised"]
    assert abs(dets[0].value - 19.0 * 9.80665) < 1e-9


def test_rate_of_change_sees_a_burst_but_not_the_diurnal_sag() -> None:
    cat = catalog(WATER[0])
    eng = Engine(cat, ruleset({"id": "drop", "kind": "rate_of_change", "change": 30, "within": "10m",
                               "severity": "red"}))
    minutes = np.arange(24 * 60)
    pressure = 400 - 40 * np.sin(2 * np.pi * minutes / 1440)  # at most ~1.75 kPa per 10 min
    pressure[900:] -= 45  # burst
    dets = run(eng, series_batch(cat, {"P1": pressure}), 500)
    raised = [d for d in dets if d.transition == "raised"]
    assert [(d.time_ns - T0) // MIN for d in raised] == [900]
    assert raised[0].severity is Severity.RED


def test_ewma_learns_then_flags_a_step_and_does_not_learn_it() -> None:
    cat = catalog(WATER[0])
    eng = Engine(cat, ruleset({"id": "dev", "kind": "ewma", "z": 6, "min_deviation": 5,
                               "baseline": {"warmup": 30, "halflife": "1d", "min_sigma": 0.5}}))
    rng = np.random.default_rng(3)
    p = 300 + rng.normal(0, 1.0, 600)
    p[400:] -= 25
    dets = run(eng, series_batch(cat, {"P1": p}), 64)
    assert [(d.transition, (d.time_ns - T0) // MIN) for d in dets] == [("raised", 400)]


def test_cusum_accumulates_a_slow_drift_no_single_reading_shows() -> None:
    cat = catalog(WATER[2])
    eng = Engine(cat, ruleset({"id": "drift", "kind": "cusum", "k": 0.5, "h": 12,
                               "baseline": {"warmup": 50, "profile": "none", "halflife": "30d"}}))
    rng = np.random.default_rng(4)
    f = 100 + rng.normal(0, 2.0, 1500)
    f[1000:] += np.linspace(0, 4, 500)  # at most 2 sigma by the end
    dets = run(eng, series_batch(cat, {"F1": f}), 1500)
    raised = [d for d in dets if d.transition == "raised"]
    assert len(raised) == 1 and (raised[0].time_ns - T0) // MIN > 1000
    assert (f[1000:] - 100 < 3 * 2.0).mean() > 0.9  # the drift hides inside the noise reading by reading


def test_flatline_flags_a_stuck_sensor_and_clears_when_it_moves() -> None:
    cat = catalog(WATER[0])
    eng = Engine(cat, ruleset({"id": "stuck", "kind": "flatline", "duration": "30m", "min_readings": 5}))
    p = 300 + np.sin(np.arange(200) / 3.0)
    p[50:120] = 301.5
    dets = run(eng, series_batch(cat, {"P1": p}), 7)
    assert [(d.transition, (d.time_ns - T0) // MIN) for d in dets] == [("raised", 80), ("cleared", 120)]


def test_deadman_raises_when_overdue_on_event_time_and_clears_on_return() -> None:
    cat = catalog(WATER[0], WATER[2])
    eng = Engine(cat, ruleset({"id": "silent", "kind": "deadman", "missing": 3}))
    p = np.full(100, 300.0)
    f = np.full(100, 80.0)
    batch = series_batch(cat, {"P1": p, "F1": f})
    keep = ~((batch.sensor == cat.index["P1"]) & (batch.time_ns >= T0 + 40 * MIN) & (batch.time_ns < T0 + 60 * MIN))
    dets = run(eng, batch.take(keep), 13)
    assert [(d.subject, d.transition, (d.time_ns - T0) // MIN) for d in dets] == [
        ("P1", "raised", 42), ("P1", "cleared", 60)]


def test_deadman_counts_never_seen_sensors_from_the_first_reading() -> None:
    cat = catalog(WATER[0], WATER[2])
    eng = Engine(cat, ruleset({"id": "silent", "kind": "deadman", "after": "5m"}))
    dets = run(eng, series_batch(cat, {"F1": np.full(10, 80.0)}), 4)
    assert [(d.subject, d.transition, (d.time_ns - T0) // MIN) for d in dets] == [("P1", "raised", 5)]


def _zone_flows(days: int, leak_from_day: int, leak: float, seed: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    minutes = np.arange(days * 1440)
    local_h = ((minutes / 60) + 8) % 24
    demand = 60 + 40 * np.exp(-((local_h - 8) ** 2) / 4) + 30 * np.exp(-((local_h - 19) ** 2) / 6)
    demand[(local_h >= 1) & (local_h < 5)] = 25
    inflow = demand + rng.normal(0, 1.0, len(minutes)) + 10
    inflow[leak_from_day * 1440:] += leak
    outflow = 10 + rng.normal(0, 0.3, len(minutes))
    return {"F1": inflow, "F2": outflow}


def test_night_flow_flags_a_leak_at_the_end_of_the_night_window() -> None:
    cat = catalog(WATER[2], WATER[3])
    eng = Engine(cat, ruleset({"id": "mnf", "kind": "night_flow", "increase": 0.15, "warmup_nights": 2},
                              settings={"zone_bucket": "15m", "zone_lateness": "5m"}))
    dets = run(eng, series_batch(cat, _zone_flows(6, 4, 6.0)), 997)
    raised = [d for d in dets if d.transition == "raised"]
    assert len(raised) == 1 and raised[0].subject == "DMA1" and raised[0].sensor_id is None
    local = (raised[0].time_ns - T0) / 3.6e12 + 8
    assert local % 24 == 4.0 and local // 24 == 5  # 04:00 local, the first night after the leak began


def test_zone_balance_flags_a_burst_in_net_inflow() -> None:
    cat = catalog(WATER[2], WATER[3])
    eng = Engine(cat, ruleset({"id": "bal", "kind": "zone_balance", "z": 6, "min_ratio": 0.15, "for": "30m",
                               "baseline": {"warmup": 3, "profile": "hour_of_day", "min_sigma": 1}},
                              settings={"zone_bucket": "15m", "zone_lateness": "5m"}))
    flows = _zone_flows(5, 99, 0.0)
    flows["F1"][4 * 1440 + 600:] += 45  # burst on day 5
    dets = run(eng, series_batch(cat, flows), 1000)
    raised = [d for d in dets if d.transition == "raised"]
    assert len(raised) == 1
    assert 0 <= (raised[0].time_ns - (T0 + (4 * 1440 + 600) * MIN)) / MIN <= 60


def test_duplicates_and_out_of_order_readings_are_counted_not_evaluated() -> None:
    cat = catalog(WATER[0])
    eng = Engine(cat, ruleset({"id": "low", "kind": "threshold", "low": 200}))
    s = cat.index["P1"]
    batch = Batch.of([s] * 4, [T0 + 2 * MIN, T0 + 2 * MIN, T0 + MIN, T0 + 3 * MIN], [300, 100, 100, 300])
    state = eng.new_state()
    res = eng.step(state, batch)
    assert (res.accepted, res.duplicates, res.out_of_order) == (2, 1, 1)
    assert res.detections == []


def test_an_option_spelled_out_at_its_default_is_the_same_rule() -> None:
    implicit = ruleset({"id": "mnf", "kind": "night_flow"}).rules[0]
    explicit = ruleset({"id": "mnf", "kind": "night_flow", "reference": "day_type", "warmup_nights": 3}).rules[0]
    changed = ruleset({"id": "mnf", "kind": "night_flow", "reference": "weekday"}).rules[0]
    assert implicit.fingerprint() == explicit.fingerprint() != changed.fingerprint()


def test_hot_reload_keeps_learned_state_of_unchanged_rules_only() -> None:
    cat = catalog(WATER[0])
    keep = {"id": "dev", "kind": "ewma", "z": 6, "baseline": {"warmup": 10}}
    old = {"id": "low", "kind": "threshold", "low": 200}
    eng = Engine(cat, ruleset(keep, old))
    state = eng.new_state()
    eng.step(state, series_batch(cat, {"P1": 300 + np.sin(np.arange(50.0))}))
    learned = state.rules["dev"]
    eng2 = Engine(cat, ruleset(keep, {**old, "low": 250}))
    state2 = eng2.adopt(state)
    assert state2.rules["dev"] is learned
    assert state2.rules["low"].fingerprint != state.rules["low"].fingerprint


ALL_KINDS = ruleset(
    {"id": "thr", "kind": "threshold", "low": {"yellow": 280, "red": 260}, "hysteresis": 3, "for": "3m",
     "select": {"quantity": "pressure"}},
    {"id": "roc", "kind": "rate_of_change", "change": 8, "within": "5m", "select": {"quantity": "pressure"}},
    {"id": "ewma", "kind": "ewma", "z": 3, "baseline": {"warmup": 10, "halflife": "2h"}},
    {"id": "cusum", "kind": "cusum", "h": 5, "direction": "either", "baseline": {"warmup": 10}},
    {"id": "dead", "kind": "deadman", "missing": 3},
    {"id": "flat", "kind": "flatline", "duration": "10m", "min_readings": 3},
    {"id": "bal", "kind": "zone_balance", "z": 3, "min_ratio": 0.05, "baseline": {"warmup": 2}},
    {"id": "mnf", "kind": "night_flow", "increase": 0.05, "warmup_nights": 1},
    {"id": "burst", "kind": "burst_fingerprint", "z": 3, "min_ratio": 0.02, "history": "2d", "min_days": 1,
     "scale": {"warmup": 2}},
    {"id": "peers", "kind": "peer_deviation", "z": 2, "min_shift": 1, "select": {"quantity": "pressure"},
     "baseline": {"warmup": 2}},
    {"id": "excess", "kind": "inflow_excess", "z": 2, "min_ratio": 0.01, "weeks": 1, "baseline_fits": 2},
    settings={"zone_bucket": "10m", "zone_lateness": "10m"},
)


@st.composite
def streams(draw: st.DrawFn) -> Batch:
    """A messy stream: random gaps, repeats, stragglers, steps, stuck runs and arbitrary order."""
    n = draw(st.integers(50, 400))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    sensor = rng.integers(0, 4, n)
    jitter = rng.integers(-8, 3, n) * MIN
    t = T0 + np.cumsum(rng.integers(0, 3, n)) * MIN + jitter
    base = np.where(sensor < 2, 300.0, 60.0)
    value = base + rng.normal(0, 3, n) + np.where(rng.random(n) < 0.05, -40.0, 0.0)
    value = np.where(rng.random(n) < 0.1, np.round(value, -1), value)
    return Batch.of(sensor, t, value)


@settings(max_examples=40, deadline=None)
@given(streams(), st.integers(1, 97))
def test_detections_do_not_depend_on_batch_size(batch: Batch, size: int) -> None:
    eng = Engine(catalog(*WATER), ALL_KINDS)
    assert run(eng, batch, 1) == run(eng, batch, 1000) == run(eng, batch, size)


def test_batch_size_invariance_on_a_long_realistic_stream() -> None:
    cat = catalog(*WATER)
    flows = _zone_flows(3, 2, 8.0)
    rng = np.random.default_rng(9)
    p = 300 + rng.normal(0, 1, len(flows["F1"]))
    p[3000:3100] -= 60
    batch = series_batch(cat, {"P1": p, "P2": p / 9.80665, **flows})
    drop = rng.random(len(batch)) < 0.02
    eng = Engine(cat, ALL_KINDS)
    one = run(eng, batch.take(~drop), 1)
    assert len(one) > 5
    assert one == run(eng, batch.take(~drop), 1000)


def test_flatline_above_ignores_a_gas_detector_resting_at_zero() -> None:
    cat = catalog({"sensor_id": "M1", "network": "gas", "zone": "GD1", "quantity": "gas_concentration",
                   "unit": "%LEL"})
    eng = Engine(cat, ruleset({"id": "stuck", "kind": "flatline", "duration": "30m", "above": 0.5}))
    lel = np.zeros(200)
    lel[100:] = 0.9  # frozen transmitter
    dets = run(eng, series_batch(cat, {"M1": lel}), 50)
    assert [(d.transition, (d.time_ns - T0) // MIN) for d in dets] == [("raised", 130)]


def test_a_restored_snapshot_continues_exactly_like_an_uninterrupted_run(tmp_path) -> None:
    from rules import snapshot

    cat = catalog(*WATER)
    flows = _zone_flows(3, 2, 8.0)
    rng = np.random.default_rng(11)
    p = 300 + rng.normal(0, 1, len(flows["F1"]))
    p[3000:3100] -= 60
    batch = series_batch(cat, {"P1": p, "P2": p / 9.80665, **flows})
    eng = Engine(cat, ALL_KINDS)
    whole = run(eng, batch, 5000)
    state = eng.new_state()
    first, second = batch.take(slice(0, 9000)), batch.take(slice(9000, None))
    out = list(eng.step(state, first).detections)
    snapshot.save(tmp_path / "state.npz", state)
    restored, _ = snapshot.load(tmp_path / "state.npz", Engine(cat, ALL_KINDS))
    for part in second.split(5000):
        out.extend(eng.step(restored, part).detections)
    assert sorted(out, key=lambda d: (d.time_ns, d.rule_id, d.subject, d.transition)) == whole


def test_rate_of_change_does_not_flap_on_a_change_hovering_at_the_limit() -> None:
    cat = catalog(WATER[0])
    eng = Engine(cat, ruleset({"id": "drop", "kind": "rate_of_change", "change": 30, "within": "3m"}))
    # without hysteresis minute 4 (29.5 kPa below minute 1) would clear and minute 5 raise again
    p = np.array([400, 400, 400, 369, 370.5, 368.6, 370, 369, 369, 369, 369, 369], dtype=float)
    dets = run(eng, series_batch(cat, {"P1": p}), 5)
    assert [(d.transition, (d.time_ns - T0) // MIN) for d in dets] == [("raised", 3), ("cleared", 6)]


TWO_ZONES = [*WATER, {"sensor_id": "F3", "network": "water", "zone": "DMA2", "quantity": "flow", "unit": "m3/h",
                      "role": "inlet", "interval_s": 60},
             {"sensor_id": "P3", "network": "water", "zone": "DMA2", "quantity": "pressure", "unit": "kPa",
              "interval_s": 60}]
PROFILED = ruleset(
    *ALL_KINDS.rules,
    {"id": "ewma-hod", "kind": "ewma", "z": 3, "select": {"quantity": "pressure"},
     "baseline": {"warmup": 2, "profile": "weekday_weekend_hour", "halflife": "1h"}},
    settings={"zone_bucket": "10m", "zone_lateness": "10m"},
)


@st.composite
def rough_streams(draw: st.DrawFn) -> Batch:
    """Two zones, bad-quality readings, duplicates, stragglers and data gaps longer than the bucket ring."""
    n = draw(st.integers(50, 300))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    sensor = rng.integers(0, len(TWO_ZONES), n)
    steps = rng.integers(0, 3, n) * MIN
    steps[rng.random(n) < 0.03] = rng.integers(1, 8) * 3_600_000_000_000  # gaps of hours
    t = T0 + np.cumsum(steps) + rng.integers(-8, 3, n) * MIN
    value = np.where(np.isin(sensor, [2, 3, 4]), 60.0, 300.0) + rng.normal(0, 3, n)
    value = np.where(rng.random(n) < 0.05, value - 40, value)
    quality = np.where(rng.random(n) < 0.08, QUALITY_BAD, 0)
    return Batch.of(sensor, t, value, quality)


def _alert_changes(batch: Batch, size: int) -> list[tuple]:
    pipeline = Pipeline(catalog(*TWO_ZONES), PROFILED, resolve_after_s=600)
    out = []
    for part in batch.split(size):
        out.extend((c.alert.alert_id, c.change, c.time_ns) for c in pipeline.process(part).changes)
    return out


@settings(max_examples=30, deadline=None)
@given(rough_streams(), st.integers(2, 97))
def test_detections_and_alerts_do_not_depend_on_batch_size_on_rough_streams(batch: Batch, size: int) -> None:
    eng = Engine(catalog(*TWO_ZONES), PROFILED)
    assert run(eng, batch, 1) == run(eng, batch, size) == run(eng, batch, 10_000)
    assert sorted(_alert_changes(batch, 1)) == sorted(_alert_changes(batch, size))
