"""The physics-based gas simulator: pandapipes hydraulics on the Schutterwald grid cut into two regulator
districts, leaks as orifices, methane in nearby spaces. Reproducible by seed; a leak lowers downstream
pressure and raises the regulator's flow; methane rises past the default alarm levels in the space next
to it and not in a far one; faults look as specified; replay files round-trip; the default rules catch
the leaks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

import simulators.gas_pandapipes as gas
from ingest.replay import read_replay
from rules.loader import load_rules
from sentinel.backtest import score
from sentinel.catalog import load_catalog
from sentinel.events import load_events
from sentinel.replay_run import replay
from simulators.files import write_replay

NS = 1_000_000_000
ROOT = Path(__file__).resolve().parents[1]
SCENARIO = {
    "engine": "pandapipes-gas", "name": "gas-test", "seed": 3, "start": "2025-01-05T16:00:00Z",  # Monday 00:00
    "duration": "2d", "step": "10m", "districts": 2, "missing_rate": 0.0,
    "events": [
        {"kind": "sensor_stuck", "sensor_id": "G-GD2-P01", "start": "4h", "duration": "3h"},
        {"kind": "sensor_dropout", "sensor_id": "G-GD1-P02", "start": "9h", "duration": "2h"},
        {"kind": "sensor_drift", "sensor_id": "G-GD2-P03", "start": "14h", "duration": "6h", "magnitude": -8},
        {"kind": "gas_rise", "zone": "GD1", "start": "1d2h", "duration": "3h", "size": "small"},
        {"kind": "gas_rise", "zone": "GD2", "start": "1d10h", "duration": "2h", "size": "large"},
    ],
}
SHORT = {"engine": "pandapipes-gas", "name": "gas-short", "seed": 3, "start": "2025-01-06T02:00:00Z",
         "duration": "4h", "step": "15m", "events": [{"kind": "gas_rise", "start": "1h", "duration": "1h"}]}


def near_manhole(scenario: dict, zone: str, lo: float, hi: float) -> str:
    """A mains junction lo..hi m along the trench from the zone's first manhole (instruments do not
    depend on the seed, so the network can be built ahead of the run)."""
    from simulators.gas_pandapipes.network import build_network
    from simulators.pipes_common import distances_from

    gn = build_network(gas.GasScenario.model_validate(scenario))
    d = gn.district(zone)
    manhole = next(j for j, kind in zip(d.spaces, d.space_types, strict=True) if kind == "manhole")
    mains = [j for j in d.junctions if j in gn.mains]
    dist = distances_from(gn.trench, manhole, mains, cutoff=hi)
    return str(gn.net.junction.name[next(j for j, x in zip(mains, dist, strict=True) if lo <= x <= hi)])


@pytest.fixture(scope="module")
def run():
    events = [dict(e) for e in SCENARIO["events"]]
    events[3]["node"] = near_manhole(SCENARIO, "GD1", 10.0, 20.0)  # the small leak, next to a manhole
    return gas.generate({**SCENARIO, "events": events}, show_progress=False)


def event(r, kind: str, zone: str):
    return next(e for e in r.events if e.kind == kind and e.zone == zone)


def leak(r, zone: str):
    return next(leak for leak in r.leaks if leak.plan.zone == zone)


def steps_of(r, ev) -> np.ndarray:
    """Hydraulic steps inside the event's leak window."""
    t = r.scenario.start.timestamp() * NS + np.arange(r.scenario.steps) * r.scenario.step * NS
    return (t >= ev.start_ns) & (t < ev.start_ns + next(p for p in r.plans if p.kind == ev.kind and p.zone == ev.zone)
                                 .duration_s * NS)


def canonical(r, sensor_id: str) -> tuple[np.ndarray, np.ndarray]:
    t, v = r.series(sensor_id)
    return t, r.sensor_catalog().to_canonical(np.full(len(v), r.index(sensor_id)), v)


def test_same_seed_reproduces_readings_and_labels_and_another_seed_does_not() -> None:
    a, b = gas.generate(SHORT, show_progress=False), gas.generate(SHORT, show_progress=False)
    assert a.catalog == b.catalog and a.events == b.events
    for col in ("time_ns", "sensor", "value"):
        assert np.array_equal(getattr(a.readings, col), getattr(b.readings, col))
    other = gas.generate({**SHORT, "seed": 4}, show_progress=False)
    assert other.catalog == a.catalog  # instruments do not move with the seed
    assert not np.array_equal(other.readings.value, a.readings.value)


def test_districts_are_fed_only_through_their_regulators(run) -> None:
    h = run.hydraulics
    assert [d.name for d in run.network.districts] == ["GD1", "GD2"]
    assert run.network.closed_pipes  # the boundary valves are shut
    balance = h.inflow_m3h - h.demand_m3h
    for i, lk in enumerate(run.leaks):  # what a regulator passes is its houses plus its leak, nothing else
        balance[:, lk.zone] -= h.leak_m3h[:, i]
    assert np.abs(balance).max() < 1e-3 * h.inflow_m3h.max()
    assert 50 < h.demand_m3h.mean() < 1000  # Nm3/h per district: a few hundred houses in January
    assert np.all(h.outlet_kpa <= run.scenario.regulators.set_kpa + 2) and np.all(h.p_kpa > 80)


def test_a_leak_lowers_downstream_pressure_and_raises_inlet_flow(run) -> None:
    ev, lk = event(run, "gas_rise", "GD2"), leak(run, "GD2")
    h, on = run.hydraulics, steps_of(run, ev)
    q = h.leak_m3h[on, run.leaks.index(lk)]
    assert lk.plan.hole_mm == 25.0 and 300 < q.mean() < 700  # choked flow through a 25 mm hole at 1 bar
    assert np.all(h.leak_m3h[~on, run.leaks.index(lk)] == 0)
    drops = {j: (h.quiet_kpa[on, h.watch.index(j)] - h.p_kpa[on, h.watch.index(j)]).mean()
             for j in run.network.district("GD2").ends}
    assert all(d > 0.3 for d in drops.values()) and max(drops.values()) > 1.0  # kPa, at every end logger
    t, flow = canonical(run, "G-GD2-FI01")
    during = ev.covers(t) & (t < ev.start_ns + 2 * 3600 * NS)
    before = (t >= ev.start_ns - 3600 * NS) & (t < ev.start_ns)
    assert flow[during].mean() - flow[before].mean() == pytest.approx(q.mean(), rel=0.25)
    t, kpa = canonical(run, "G-GD2-P02")
    assert kpa[during].mean() < kpa[before].mean() - 0.3


def test_methane_rises_past_the_alarm_levels_next_to_a_leak_and_not_far_away(run) -> None:
    levels = next(r for r in yaml.safe_load((ROOT / "rules/defaults/gas.yaml").read_text())["rules"]
                  if r["id"] == "gas-lel")["high"]
    ev = event(run, "gas_rise", "GD1")
    spaces = [s.sensor_id for s in run.catalog if s.zone == "GD1" and s.quantity == "gas_concentration"]
    from simulators.pipes_common import distances_from

    d = distances_from(run.network.trench, leak(run, "GD1").junction, run.spaces.junctions, cutoff=1e6)
    dist = dict(zip(run.spaces.sensor_ids, d, strict=True))
    near, far = min(spaces, key=dist.__getitem__), max(spaces, key=dist.__getitem__)
    assert ev.sensor_id == near and dist[near] <= 20 < 300 < dist[far]
    t, lel = canonical(run, near)
    inside = ev.covers(t)
    assert lel[inside].max() > max(levels.values())  # past the red (high) alarm
    assert lel[t < ev.start_ns].max() < 3 and lel[t >= ev.end_ns].max() < 3  # clean air before, vented after
    assert ev.magnitude == pytest.approx(run.methane_lel[:, run.spaces.sensor_ids.index(near)].max(), abs=0.1)
    first = t[inside][np.argmax(lel[inside] > min(levels.values()))]
    assert first - ev.start_ns < 45 * 60 * NS  # the low alarm level within the first 45 minutes
    _, lel_far = canonical(run, far)
    assert lel_far.max() < 3


def test_methane_integration_matches_the_closed_form() -> None:
    from simulators.gas_pandapipes.methane import DT, integrate

    g = np.zeros((2000, 1))
    g[100:1100] = 0.6  # Nm3/h into a 3 m3 manhole with 3 m3/h of ventilation
    c = integrate(g, np.array([3.0]), np.array([3.0]))
    k = 3.6 / 3.0 / 3600.0  # (G + Q) / V per second
    tt = np.arange(1, 1001) * DT
    assert np.allclose(c[101:1101, 0], 0.6 / 3.6 * (1 - np.exp(-k * tt)), rtol=1e-9)
    tail = c[1100, 0] * np.exp(-(1.0 / 3600.0) * np.arange(0, 899) * DT)
    assert np.allclose(c[1100:1999, 0], tail, rtol=1e-9) and c[:101].max() == 0.0


def test_sensor_faults_look_as_specified(run) -> None:
    stuck = next(e for e in run.events if e.kind == "sensor_stuck")
    t, v = run.series(stuck.sensor_id)
    inside = stuck.covers(t)
    assert np.all(v[inside] == stuck.magnitude) and stuck.magnitude == v[np.flatnonzero(t < stuck.start_ns)[-1]]
    drop = next(e for e in run.events if e.kind == "sensor_dropout")
    t, _ = run.series(drop.sensor_id)
    assert not drop.covers(t).any() and (t < drop.start_ns).any() and (t >= drop.end_ns).any()
    drift = next(e for e in run.events if e.kind == "sensor_drift")
    t, kpa = canonical(run, drift.sensor_id)
    ch = run.channels[run.index(drift.sensor_id)]
    truth = run.hydraulics.pressure(ch.junction)[((t - t[0]) // (run.scenario.step * NS)).astype(int)]
    err, inside = kpa - truth, drift.covers(t)
    grow = (t[inside] - drift.start_ns) / (drift.end_ns - drift.start_ns)
    assert np.abs(err[inside] - grow * drift.magnitude).mean() < 0.3 and np.abs(err[~inside]).mean() < 0.3


def test_labels_use_existing_kinds_and_name_the_space(run) -> None:
    from simulators.scenario import EVENT_KINDS

    assert {e.kind for e in run.events} <= {*EVENT_KINDS, "sensor_drift"}
    for e in run.events:
        if e.kind == "gas_rise":
            s = run.catalog[run.index(e.sensor_id)]
            assert s.zone == e.zone and s.role == "space" and "Nm3/h" in e.description
            plan = next(p for p in run.plans if p.sensor_id == e.sensor_id and p.kind == "gas_rise")
            assert e.end_ns > e.start_ns + plan.duration_s * NS  # the label waits for the space to vent


def test_replay_files_round_trip(run, tmp_path: Path) -> None:
    paths = write_replay(run, tmp_path)
    cat = load_catalog(paths["catalog.csv"])
    data = read_replay(paths["readings.csv"], cat)
    mine = run.to_batch()
    assert not data.dead_letters and len(data.batch) == len(mine)
    assert np.array_equal(data.batch.time_ns, mine.time_ns) and np.array_equal(data.batch.sensor, mine.sensor)
    assert np.allclose(data.batch.value, mine.value, rtol=0, atol=1e-9)
    assert load_events(paths["events.csv"]) == run.events
    assert gas.load_scenario(paths["scenario.yaml"]) == run.scenario


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
    leaks = {o.event.zone: o for o in outcomes if o.event.kind == "gas_rise"}
    assert all(o.detected for o in leaks.values())
    assert leaks["GD1"].time_to_detect_s < 1800  # methane next to the small leak
    assert {"gas-lel", "gas-lel-rising"} <= set(caught[leaks["GD1"].event.event_id])
    assert "gas-zone-balance" in caught[leaks["GD2"].event.event_id]  # the large one unbalances its district
