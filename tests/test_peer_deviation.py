"""Peer deviation: a pressure logger parting from its zone's other loggers (a drifting transmitter),
judged against its usual difference to them by hour of day; the whole zone moving together is not it."""

from __future__ import annotations

import numpy as np
import pytest

from rules.engine import Engine
from tests.helpers import MIN, T0, catalog, ruleset, series_batch

LOGGERS = [{"sensor_id": f"P{i}", "network": "water", "zone": "DMA1", "quantity": "pressure", "unit": "kPa",
            "interval_s": 300} for i in (1, 2, 3, 4)]
INLET = {"sensor_id": "FI", "network": "water", "zone": "DMA1", "quantity": "flow", "unit": "m3/h",
         "role": "inlet", "interval_s": 300}
RULE = {"id": "drift", "kind": "peer_deviation", "z": 4, "min_shift": 10, "select": {"quantity": "pressure"}}
SETTINGS = {"zone_bucket": "5m", "zone_lateness": "5m"}
PER_DAY = 288
STEP = 5 * MIN


def _zone(days: int, seed: int = 2) -> dict[str, np.ndarray]:
    """Four loggers following demand together, each with its own elevation and a pump-shaped hourly offset."""
    rng = np.random.default_rng(seed)
    n = days * PER_DAY
    h = (np.arange(n) * 5 / 60) % 24
    demand = 1 + 0.5 * np.exp(-((h - 8) ** 2) / 3) + 0.4 * np.exp(-((h - 19) ** 2) / 4)
    pump = np.where((h >= 6) & (h < 22), 15.0, 0.0)  # a pump near P1 lifts it by day
    cols = {}
    for i, base in ((1, 430.0), (2, 410.0), (3, 395.0), (4, 380.0)):
        cols[f"P{i}"] = base - 40 * demand + (pump if i == 1 else 0.0) + rng.normal(0, 1.0, n)
    cols["FI"] = 100 * demand
    return cols


def _raised(cols: dict[str, np.ndarray], rule: dict | None = None) -> list:
    cat = catalog(*LOGGERS, INLET)
    eng = Engine(cat, ruleset(rule or RULE, settings=SETTINGS))
    state = eng.new_state()
    dets = eng.step(state, series_batch(cat, cols, step_ns=STEP)).detections
    return [d for d in dets if d.transition == "raised"]


def test_a_drifting_transmitter_is_flagged_with_its_own_name() -> None:
    cols = _zone(6)
    start = 4 * PER_DAY
    cols["P3"][start:] -= np.linspace(0, 30, 2 * PER_DAY)  # 30 kPa down over two days
    raised = _raised(cols)
    assert [(d.rule_id, d.sensor_id, d.subject, d.zone) for d in raised] == [("drift", "P3", "P3", "DMA1")]
    hours_in = (raised[0].time_ns - (T0 + start * STEP)) / 3.6e12
    assert 6 < hours_in < 36  # once it is clearly 10 kPa off, not at the first few kPa
    assert "-1" in raised[0].message and "kPa off its usual difference" in raised[0].message


def test_the_whole_zone_moving_together_is_not_a_drift() -> None:
    cols = _zone(6)
    for k in ("P1", "P2", "P3", "P4"):
        cols[k][4 * PER_DAY:] -= 40.0  # a PRV set lower: every logger drops together
    assert _raised(cols) == []


def test_the_daily_pump_shape_of_one_logger_is_learned_not_flagged() -> None:
    assert _raised(_zone(6)) == []


def test_selecting_anything_but_pressure_is_refused_with_the_rule_named() -> None:
    with pytest.raises(ValueError, match=r"'drift'.*compares pressure loggers; FI is not one"):
        _raised(_zone(1), {**RULE, "select": {"network": "water"}})


def test_a_zone_of_loggers_without_any_flow_meter_is_judged_too() -> None:
    """The zone grid then carries pressure only (net inflow unknown everywhere)."""
    cols = _zone(6)
    del cols["FI"]
    cols["P3"][4 * PER_DAY:] -= np.linspace(0, 30, 2 * PER_DAY)
    cat = catalog(*LOGGERS)
    eng = Engine(cat, ruleset(RULE, settings=SETTINGS))
    dets = eng.step(eng.new_state(), series_batch(cat, cols, step_ns=STEP)).detections
    assert [d.sensor_id for d in dets if d.transition == "raised"] == ["P3"]


SUBSTATIONS = [{"sensor_id": s, "network": "heat", "zone": "LOOP1", "quantity": "pressure", "unit": "kPa",
                "interval_s": 300} for s in ("PS1", "PR1", "PS2", "PR2")]
REGRESSION = {**RULE, "z": 5, "model": "regression",
              "baseline": {"halflife": "7d", "warmup": 24, "profile": "hour_of_day", "min_sigma": 1}}


def _loop(days: int, seed: int = 4) -> dict[str, np.ndarray]:
    """A heat loop: the plant's supply and return hold still; at the far substation the supply rises and
    the return falls with load, by as much, and the load's size changes from day to day (weather)."""
    rng = np.random.default_rng(seed)
    n = days * PER_DAY
    h = (np.arange(n) * 5 / 60) % 24
    amplitude = np.repeat(rng.uniform(10, 40, days), PER_DAY)
    load = amplitude * (np.exp(-((h - 8) ** 2) / 4) + np.exp(-((h - 19) ** 2) / 5))
    return {"PS1": 540 + rng.normal(0, 0.5, n), "PR1": 297 + rng.normal(0, 0.5, n),
            "PS2": 462 + load + rng.normal(0, 0.5, n), "PR2": 342 - load + rng.normal(0, 0.5, n)}


def _raised_in_loop(cols: dict[str, np.ndarray], rule: dict) -> list:
    cat = catalog(*SUBSTATIONS)
    eng = Engine(cat, ruleset(rule, settings=SETTINGS))
    dets = eng.step(eng.new_state(), series_batch(cat, cols, step_ns=STEP)).detections
    return [d for d in dets if d.transition == "raised"]


def _drifted(cols: dict[str, np.ndarray], day: int) -> tuple[dict[str, np.ndarray], int]:
    start = day * PER_DAY + 2 * 12  # 02:00, before the morning load
    cols["PR2"][start:start + 12 * 12] -= np.linspace(0, 30, 12 * 12)  # 30 kPa down over 12 hours, then fixed
    return cols, start


def test_regression_flags_a_return_transmitter_drifting_where_supply_and_return_move_apart_with_load() -> None:
    cols, start = _drifted(_loop(8), 6)
    raised = _raised_in_loop(cols, REGRESSION)
    assert {d.sensor_id for d in raised} >= {"PR2"}
    assert {d.sensor_id for d in raised} <= {"PR2", "PS2"}  # the supply it is tied to reads as far off
    first = min(d.time_ns for d in raised if d.sensor_id == "PR2")
    assert 0 < (first - (T0 + start * STEP)) / 3.6e12 < 12


def test_against_the_median_the_same_drift_hides_longer_in_the_days_changing_load() -> None:
    cols, _start = _drifted(_loop(8), 6)
    first = {model: min((d.time_ns for d in _raised_in_loop(cols, {**REGRESSION, "model": model})
                         if d.sensor_id == "PR2"), default=None) for model in ("median", "regression")}
    assert first["regression"] is not None
    assert first["median"] is None or first["median"] - first["regression"] >= 2 * 3_600_000_000_000


def test_regression_keeps_quiet_on_days_of_changing_load() -> None:
    assert _raised_in_loop(_loop(8), REGRESSION) == []


def test_a_silent_supply_transmitter_does_not_make_its_return_look_drifted() -> None:
    """Without its supply the return's prediction loses the day's load: its residual is shrunk to match."""
    cols = _loop(8)
    cols["PS2"][6 * PER_DAY:6 * PER_DAY + 10 * 12] = np.nan  # the substation's supply transmitter silent 10 h
    assert _raised_in_loop(cols, REGRESSION) == []


def test_a_peer_silent_for_good_does_not_stop_the_others_being_judged() -> None:
    cols, start = _drifted(_loop(8), 6)
    cols["PS1"][5 * PER_DAY:] = np.nan  # the plant's supply transmitter dies a day before the drift
    raised = [d for d in _raised_in_loop(cols, REGRESSION) if d.sensor_id == "PR2"]
    assert raised and 0 < (raised[0].time_ns - (T0 + start * STEP)) / 3.6e12 < 12


def test_a_zone_of_sixty_transmitters_keeps_one_moment_matrix_not_one_per_logger() -> None:
    from rules.snapshot import to_bytes

    many = [{**SUBSTATIONS[0], "sensor_id": f"P{i}"} for i in range(60)]
    eng = Engine(catalog(*many), ruleset(REGRESSION, settings=SETTINGS))
    assert len(to_bytes(eng.new_state(), engine=eng)) < 300_000  # 60 x 60 moments and pair counts


def test_an_unknown_model_is_refused_with_the_field_named() -> None:
    with pytest.raises(ValueError, match="model"):
        _raised_in_loop(_loop(1), {**REGRESSION, "model": "pca"})


def test_a_regression_fit_round_trips_through_a_snapshot() -> None:
    from rules.snapshot import from_bytes, to_bytes

    cat = catalog(*SUBSTATIONS)
    eng = Engine(cat, ruleset(REGRESSION, settings=SETTINGS))
    state = eng.new_state()
    eng.step(state, series_batch(cat, _loop(2), step_ns=STEP))
    restored, _extra = from_bytes(to_bytes(state, engine=eng), engine=eng)
    for key in ("moments", "pairs"):
        np.testing.assert_array_equal(restored.rules["drift"].detector[key], state.rules["drift"].detector[key])
    assert state.rules["drift"].detector["pairs"].min() > 0


def test_regression_answers_the_same_whatever_the_batch_size() -> None:
    cols, _start = _drifted(_loop(8), 6)
    cols["PS1"][3 * PER_DAY:4 * PER_DAY] = np.nan
    cat = catalog(*SUBSTATIONS)

    def detections(size: int | None) -> list:
        eng = Engine(cat, ruleset(REGRESSION, settings=SETTINGS))
        state = eng.new_state()
        batch = series_batch(cat, cols, step_ns=STEP)
        out = []
        for part in ([batch] if size is None else batch.split(size)):
            out.extend(eng.step(state, part).detections)
        return [(d.sensor_id, d.time_ns, d.transition, d.severity) for d in out]

    whole = detections(None)
    assert whole and detections(37) == whole
