"""The physics-based district-heating simulator: pandapipes hydraulics of the Schutterwald heat network
split into two circuits, leaks as orifices replaced by the make-up system, temperatures from our own
thermal model. Reproducible by seed; a leak shows as make-up flow and pressure loss; temperatures stay
physical and the energy balance closes; faults look as specified; replay files round-trip; the default
rules catch the leaks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import simulators.heat_pandapipes as heat
from ingest.replay import read_replay
from rules.loader import load_rules
from sentinel.backtest import score
from sentinel.catalog import load_catalog
from sentinel.events import load_events
from sentinel.replay_run import replay
from simulators.files import write_replay

NS = 1_000_000_000
SCENARIO = {
    "engine": "pandapipes-heat", "name": "heat-test", "seed": 2, "start": "2025-01-05T16:00:00Z",  # Monday 00:00
    "duration": "2d", "step": "15m", "missing_rate": 0.0, "sensors": {"interval": "5m"},
    "events": [
        {"kind": "sensor_stuck", "sensor_id": "H-LOOP1-PS02", "start": "4h", "duration": "3h"},
        {"kind": "sensor_dropout", "sensor_id": "H-LOOP2-MU01", "start": "9h", "duration": "2h"},
        {"kind": "sensor_drift", "sensor_id": "H-LOOP1-TR02", "start": "14h", "duration": "6h", "magnitude": -3},
        {"kind": "makeup_rise", "zone": "LOOP1", "start": "1d4h", "duration": "6h", "size": "medium"},
        {"kind": "makeup_rise", "zone": "LOOP2", "start": "1d6h", "duration": "10h", "size": "small",
         "growth": "ramp"},
        {"kind": "low_pressure", "zone": "LOOP1", "start": "1d14h", "duration": "1h", "magnitude": 0.3},
    ],
}
SHORT = {"engine": "pandapipes-heat", "name": "heat-short", "seed": 2, "start": "2025-01-06T02:00:00Z",
         "duration": "4h", "step": "15m", "events": [{"kind": "makeup_rise", "start": "1h", "duration": "1h"}]}


@pytest.fixture(scope="module")
def run():
    return heat.generate(SCENARIO, show_progress=False)


def canonical(r, sensor_id: str) -> tuple[np.ndarray, np.ndarray]:
    t, v = r.series(sensor_id)
    return t, r.sensor_catalog().to_canonical(np.full(len(v), r.index(sensor_id)), v)


def leak_event(r, zone: str):
    ev = next(e for e in r.events if e.kind == "makeup_rise" and e.zone == zone)
    i = next(i for i, lk in enumerate(r.leaks) if lk.plan.zone == zone)
    return ev, r.leaks[i], i


def step_times(r) -> np.ndarray:
    return int(r.scenario.start.timestamp()) * NS + np.arange(r.scenario.steps) * int(r.scenario.step) * NS


def test_same_seed_reproduces_readings_and_labels_and_another_seed_does_not() -> None:
    a, b = heat.generate(SHORT, show_progress=False), heat.generate(SHORT, show_progress=False)
    assert a.catalog == b.catalog and a.events == b.events
    for col in ("time_ns", "sensor", "value"):
        assert np.array_equal(getattr(a.readings, col), getattr(b.readings, col))
    other = heat.generate({**SHORT, "seed": 3}, show_progress=False)
    assert other.catalog == a.catalog
    assert not np.array_equal(other.readings.value, a.readings.value)


def test_a_leak_shows_as_make_up_flow_and_pressure_loss(run) -> None:
    ev, lk, i = leak_event(run, "LOOP1")
    h, c = run.hydraulics, lk.zone
    t = step_times(run)
    on = ev.covers(t)
    before = (t >= ev.start_ns - 3 * 3600 * NS) & (t < ev.start_ns)
    q = h.leak_cold_m3h[on, i]
    assert 0.8 < q.mean() < 2.0  # a 5 mm hole at 3-5 bar: ~1.3 m3/h
    # make-up = what pandapipes' plant headers lose (seepage + leak) + thermal contraction, nothing invented
    lost_m3h = h.lost_kg_s[:, c] * 3600.0 / 999.7
    assert np.allclose(h.makeup_m3h[:, c], lost_m3h + run.loads.contraction_m3h[:, c], rtol=1e-6, atol=1e-9)
    assert (lost_m3h[on] - q).mean() == pytest.approx(lost_m3h[before].mean(), rel=0.2)  # the rest is seepage
    # the pressure-holding system droops with the make-up flow, and the far end loses friction head too
    rated = max(0.04 * run.network.circuits[c].volume_m3, 2.0)
    drop = h.hold_kpa[before, c].mean() - h.hold_kpa[on, c].mean()
    assert drop == pytest.approx(40.0 * q.mean() / rated, rel=0.15) and drop > 10
    far = int(run.network.net.heat_consumer.from_junction[run.network.circuits[c].ends[0]])
    assert np.all(h.at(far, quiet=True)[on] - h.at(far)[on] > drop * 0.8)
    assert np.all(h.at(far, quiet=True)[~on] == h.at(far)[~on])
    # and the instruments show it
    tm, mu = canonical(run, "H-LOOP1-MU01")
    inside, pre = ev.covers(tm), (tm >= ev.start_ns - 3 * 3600 * NS) & (tm < ev.start_ns)
    assert mu[inside].mean() - mu[pre].mean() == pytest.approx(q.mean(), rel=0.3)
    tp, pr = canonical(run, "H-LOOP1-PR01")
    assert pr[ev.covers(tp)].mean() < pr[(tp >= ev.start_ns - 3600 * NS) & (tp < ev.start_ns)].mean() - 10
    assert ev.magnitude > 2 and "m3/h" in ev.description


def test_temperatures_stay_physical_and_the_energy_balance_closes(run) -> None:
    h, ld, sc = run.hydraulics, run.loads, run.scenario
    soil, top = sc.pipes.soil_c, ld.supply_c.max()
    assert np.all(h.t_c >= soil - 1e-9) and np.all(h.t_c <= top + 1e-9)
    assert ld.supply_c.min() > 55 and ld.supply_c.max() < 95
    net = run.network.net
    for c in run.network.circuits:
        for row in c.ends:
            ts = h.temperature(int(net.heat_consumer.from_junction[row]))
            tr = h.end_return_c[:, list(net.heat_consumer.index).index(row)]
            assert np.all(tr < ts - 5) and np.all(tr > soil)  # a substation cools its water, not below ground
        ret = h.temperature(c.return_plant)
        assert np.all(ret > soil) and np.all(ret < ld.supply_c[:, run.network.circuits.index(c)])
    plant, delivered, losses, lost_water = h.energy_w.T
    assert np.abs(plant - delivered - losses - lost_water).max() < 1e-9 * plant.max()
    assert 0.005 < (losses / plant).mean() < 0.1  # pipe losses: a few per cent of the winter output
    audit = run.audit
    print("pandapipes thermal audit:", audit)  # what we found; thermal.py says what follows from it
    assert {"closed loop", "no leak", "leak"} <= set(audit)
    closed = audit["closed loop"]  # pandapipes where its thermal solution is sound agrees with ours
    assert np.allclose(closed["return_header_c"], closed["our_return_header_c"], atol=0.5)
    assert closed["substation_return_max_abs_diff_k"] < 1.0
    assert closed["pipe_loss_share"] == pytest.approx(closed["our_pipe_loss_share"], abs=0.002)


def test_a_leak_larger_than_the_make_up_is_refused() -> None:
    bad = {**SHORT, "events": [{"kind": "makeup_rise", "zone": "LOOP2", "start": "1h", "duration": "1h",
                                "hole_mm": 12}]}
    with pytest.raises(ValueError, match="more than its make-up"):
        heat.generate(bad, show_progress=False)


def test_sensor_faults_look_as_specified(run) -> None:
    stuck = next(e for e in run.events if e.kind == "sensor_stuck")
    t, v = run.series(stuck.sensor_id)
    inside = stuck.covers(t)
    assert np.all(v[inside] == stuck.magnitude) and stuck.magnitude == v[np.flatnonzero(t < stuck.start_ns)[-1]]
    drop = next(e for e in run.events if e.kind == "sensor_dropout")
    t, _ = run.series(drop.sensor_id)
    assert not drop.covers(t).any() and (t < drop.start_ns).any() and (t >= drop.end_ns).any()
    drift = next(e for e in run.events if e.kind == "sensor_drift")
    t, deg = canonical(run, drift.sensor_id)
    row = run.channels[run.index(drift.sensor_id)].consumer
    truth = run.hydraulics.end_return_c[:, list(run.network.net.heat_consumer.index).index(row)]
    err = deg - truth[((t - t[0]) // (run.scenario.step * NS)).astype(int)]
    inside = drift.covers(t)
    grow = (t[inside] - drift.start_ns) / (drift.end_ns - drift.start_ns)
    assert np.abs(err[inside] - grow * drift.magnitude).mean() < 0.1 and np.abs(err[~inside]).mean() < 0.1


def test_replay_files_round_trip(run, tmp_path: Path) -> None:
    paths = write_replay(run, tmp_path)
    cat = load_catalog(paths["catalog.csv"])
    data = read_replay(paths["readings.csv"], cat)
    mine = run.to_batch()
    assert not data.dead_letters and len(data.batch) == len(mine)
    assert np.array_equal(data.batch.time_ns, mine.time_ns) and np.array_equal(data.batch.sensor, mine.sensor)
    assert np.allclose(data.batch.value, mine.value, rtol=0, atol=1e-9)
    assert load_events(paths["events.csv"]) == run.events
    assert heat.load_scenario(paths["scenario.yaml"]) == run.scenario


def test_default_rules_detect_the_labelled_leaks(run, tmp_path: Path) -> None:
    paths = write_replay(run, tmp_path)
    out = replay(load_catalog(paths["catalog.csv"]), paths["readings.csv"], load_rules(), show_progress=False)
    report, outcomes = score(run.events, out.alert_spans(), zones=2, span_s=out.span_s)
    caught = {o.event.event_id: sorted({a.rule_id for a in out.alert_spans()
                                        if a.zone == o.event.zone and o.event.start_ns <= a.start_ns <= o.event.end_ns
                                        + 3600 * NS}) for o in outcomes}
    for o in outcomes:  # shown with -s: what the default rules see and miss
        print(f"{o.event.event_id} {o.event.kind:14s} {o.event.zone} detected={o.detected} "
              f"ttd={o.time_to_detect_s} rules={caught[o.event.event_id]}")
    print("false alerts:", report["false_alerts"], report["false_alerts_by_rule"])
    leaks = {o.event.zone: o for o in outcomes if o.event.kind == "makeup_rise"}
    assert all(o.detected for o in leaks.values())
    assert leaks["LOOP1"].time_to_detect_s <= 1800
    assert {"heat-makeup-rise", "heat-makeup-drift"} <= set(caught[leaks["LOOP1"].event.event_id])
