"""The physics-based water simulator: EPANET hydraulics on LeakDB's Hanoi network, reproducible by seed,
with events whose signatures are physical (burst, incipient leak), faults that look as specified, a
catalog whose roles balance, replay files that parse back, and the default rules run over it."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from ingest.replay import read_replay
from rules.loader import load_rules
from sentinel.backtest import score
from sentinel.catalog import load_catalog
from sentinel.cli import main as sentinel_main
from sentinel.events import load_events
from sentinel.replay_run import replay
from simulators import water_wntr as wntr_sim
from simulators.files import write_replay
from simulators.water_wntr.events import plan_all
from simulators.water_wntr.labels import leak_series
from simulators.water_wntr.measure import readings as sensor_readings
from simulators.water_wntr.placement import length_graph
from simulators.water_wntr.site import build_site
from tests.servers import unavailable

NS = 1_000_000_000
ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "simulators" / "scenarios"

SCENARIO = {
    "engine": "wntr", "name": "hanoi-test", "seed": 5, "network": "Hanoi", "start": "2025-03-02T16:00:00Z",
    "duration": "2d", "hydraulic_step": "15m", "districts": {"auto": 3},
    "sensors": {"flow_interval": "5m", "pressure_interval": "5m", "missing_rate": 0.0},
    "anomalies": [{"kind": "hydrant_draw", "node": "12", "start": "9h", "duration": "2h", "flow_m3h": 45},
                  {"kind": "holiday", "date": "2025-03-04"}],
    "events": [
        {"kind": "burst", "zone": "DMA2", "start": "1d3h", "duration": "3h", "size": "large"},
        {"kind": "slow_leak", "zone": "DMA1", "start": "2h", "duration": "40h", "size": "large"},
        {"kind": "sensor_stuck", "sensor_id": "W-DMA3-P03", "start": "8h", "duration": "3h"},
        {"kind": "sensor_dropout", "sensor_id": "W-DMA3-P04", "start": "12h", "duration": "2h"},
        {"kind": "sensor_drift", "sensor_id": "W-DMA3-P02", "start": "16h", "duration": "6h", "magnitude": -20},
        {"kind": "sensor_offset", "sensor_id": "W-DMA3-FI01", "start": "1d", "duration": "4h", "magnitude": 60},
    ],
}


def scenario(**changes):
    return wntr_sim.WntrScenario.model_validate({**SCENARIO, **changes})


@pytest.fixture(scope="module")
def run():
    try:
        return wntr_sim.generate_wntr(scenario())
    except FileNotFoundError as exc:  # the shared reference data (networks, LeakDB demand model)
        unavailable(str(exc))


def canonical(r, sensor_id: str) -> tuple[np.ndarray, np.ndarray]:
    t, v = r.series(sensor_id)
    return t, r.sensor_catalog().to_canonical(np.full(len(v), r.index(sensor_id)), v)


def event(r, kind: str):
    return next(e for e in r.events if e.kind == kind)


def plan(r, kind: str):
    return next(p for p in r.plans if p.kind == kind)


def net_inflow(r, zone: str) -> tuple[np.ndarray, np.ndarray]:
    """Inlets minus outlets from the readings (canonical m3/h), at the meters' common timestamps."""
    total, times = None, None
    for s in r.catalog:
        if s.zone == zone and s.role in ("inlet", "outlet"):
            t, v = canonical(r, s.sensor_id)
            total = (0.0 if total is None else total) + (v if s.role == "inlet" else -v)
            times = t
    return times, total


def truth_at(r, t_ns: np.ndarray, series: np.ndarray) -> np.ndarray:
    """A per-hydraulic-step series at reading times (the state in force then)."""
    k = ((t_ns - int(r.scenario.start.timestamp()) * NS) // int(r.scenario.hydraulic_step * NS)).astype(int)
    return series[np.minimum(k, len(series) - 1)]


def clean_readings(r, sensor_id: str) -> tuple[np.ndarray, np.ndarray]:
    """What the sensor would have reported without its fault (same hydraulics, same noise)."""
    i = r.index(sensor_id)
    span = r.scenario.steps * r.scenario.hydraulic_step
    t, v = sensor_readings(r.scenario.seed, r.scenario.sensors, r.hydraulics, r.catalog[i], r.site.channels[i],
                            span, [])
    return (t + int(r.scenario.start.timestamp())) * NS, v


# -- reproducibility -------------------------------------------------------------------------------


def test_same_seed_reproduces_readings_and_labels_and_another_seed_does_not(run) -> None:
    again = wntr_sim.generate_wntr(scenario())
    assert again.catalog == run.catalog
    assert again.events == run.events and again.anomalies == run.anomalies
    for col in ("time_ns", "sensor", "value"):
        assert np.array_equal(getattr(again.readings, col), getattr(run.readings, col))
    other = wntr_sim.generate_wntr(scenario(seed=6))
    assert other.catalog == run.catalog  # the utility's instruments do not depend on the seed
    assert not np.array_equal(other.readings.value, run.readings.value)


# -- events ----------------------------------------------------------------------------------------


def test_a_burst_raises_the_dma_inflow_and_drops_nearby_pressures_at_the_labelled_time(run) -> None:
    ev, p = event(run, "burst"), plan(run, "burst")
    assert (ev.zone, ev.magnitude) == ("DMA2", 0.35)
    leak = run.zone_demand("DMA2") - run.zone_demand("DMA2", quiet=True)
    t, net = net_inflow(run, "DMA2")
    during = ev.covers(t)
    hour_before = (t >= ev.start_ns - 3600 * NS) & (t < ev.start_ns)
    rise = net[during].mean() - net[hour_before].mean()
    expected = truth_at(run, t[during], leak).mean()
    demand_m3h = run.site.mean_demand_m3h("DMA2")
    assert 0.25 * demand_m3h < expected < 0.5 * demand_m3h  # ~35 % of a ~2,000 m3/h DMA: hundreds of m3/h
    assert 100 < expected < 1500
    assert rise == pytest.approx(expected, rel=0.3)  # the diurnal trend adds to the step in the readings
    loggers = [s for s, c in zip(run.catalog, run.site.channels, strict=True)
               if s.zone == "DMA2" and c.kind == "pressure"]
    drops = {}
    for s in loggers:
        ts, kpa = canonical(run, s.sensor_id)
        before = kpa[(ts >= ev.start_ns - 30 * 60 * NS) & (ts < ev.start_ns)]
        first = kpa[(ts >= ev.start_ns) & (ts < ev.start_ns + 30 * 60 * NS)]
        drops[s.sensor_id] = before.mean() - first.mean()
        assert 100 < kpa.min() < kpa.max() < 1000  # service pressures of a city main: 10-100 m
    assert all(d > 2.0 for d in drops.values())  # every logger in the DMA sees it ...
    graph = length_graph(run.site.wn)
    distance = {s.sensor_id: nx.shortest_path_length(graph, p.node, c.element, weight="length")
                for s, c in zip(run.catalog, run.site.channels, strict=True) if s in loggers}
    nearest = min(distance, key=distance.__getitem__)
    assert drops[nearest] == max(drops.values())  # ... most at the logger nearest the burst:
    assert 20.0 < drops[nearest] < 300.0  # tens of kPa
    assert p.node in run.site.district("DMA2").nodes
    steps = int(run.scenario.start.timestamp()) * NS + np.arange(len(leak)) * int(run.scenario.hydraulic_step) * NS
    assert np.abs(leak[steps >= ev.end_ns]).max() < 1e-3  # repaired at the label's end


def test_a_slow_leak_grows_over_its_window_and_stops_at_its_end(run) -> None:
    ev, p = event(run, "slow_leak"), plan(run, "slow_leak")
    flow = leak_series(p, run.hydraulics)
    assert flow[0] < 0.05 * flow[-1]
    assert np.all(np.diff(flow) > -0.02 * flow[-1])  # grows (pressure swings aside)
    assert flow[-1] == pytest.approx(0.12 * run.site.mean_demand_m3h("DMA1"), rel=0.3)
    t, net = net_inflow(run, "DMA1")
    extra = net - truth_at(run, t, run.zone_demand("DMA1", quiet=True))  # readings minus leak-free demand
    inside = ev.covers(t)
    n = inside.sum()
    early, late = extra[inside][: n // 4].mean(), extra[inside][-n // 4:].mean()
    assert late - early > 0.5 * flow[-1]
    assert abs(extra[t >= ev.end_ns].mean()) < 0.1 * flow[-1]


def test_sensor_faults_look_as_specified(run) -> None:
    stuck = event(run, "sensor_stuck")
    t, v = run.series(stuck.sensor_id)
    inside = stuck.covers(t)
    assert np.all(v[inside] == v[np.flatnonzero(t < stuck.start_ns)[-1]]) and stuck.magnitude == v[inside][0]
    assert len(np.unique(v[(t >= stuck.end_ns) & (t < stuck.end_ns + 3600 * NS)])) > 3  # alive again

    drop = event(run, "sensor_dropout")
    t, _ = run.series(drop.sensor_id)
    assert not drop.covers(t).any()
    assert (t < drop.start_ns).any() and (t >= drop.end_ns).any()

    for kind in ("sensor_drift", "sensor_offset"):
        ev = event(run, kind)
        i = run.index(ev.sensor_id)
        t, faulty = run.series(ev.sensor_id)
        t0, clean = clean_readings(run, ev.sensor_id)
        assert np.array_equal(t, t0)
        scale = run.sensor_catalog().scale[i]
        error = (faulty - clean) * scale  # canonical units: kPa, m3/h
        inside = ev.covers(t)
        assert np.allclose(error[~inside], 0.0)
        if kind == "sensor_offset":
            assert np.allclose(error[inside], ev.magnitude, atol=scale * 10 ** -run.decimals[i] + 1e-9)
        else:
            grow = (t[inside] - ev.start_ns) / (ev.end_ns - ev.start_ns)
            assert np.allclose(error[inside], grow * ev.magnitude, atol=0.2)


def test_benign_anomalies_are_labelled_apart_and_really_happen(run) -> None:
    assert {a.kind for a in run.anomalies} == {"hydrant_draw", "holiday"}
    assert not {e.kind for e in run.events} & {"hydrant_draw", "holiday"}
    hydrant = next(a for a in run.anomalies if a.kind == "hydrant_draw")
    extra = run.zone_demand(hydrant.zone) - run.zone_demand(hydrant.zone, quiet=True)
    steps = np.arange(len(extra)) * 900 * NS + int(run.scenario.start.timestamp()) * NS
    assert np.allclose(extra[hydrant.covers(steps)], 0.0, atol=1e-3)  # demand, not an event: both runs have it
    k0 = (hydrant.start_ns - int(run.scenario.start.timestamp()) * NS) // (900 * NS)
    demand = run.hydraulics.demand[:, run.hydraulics.node("12")]
    assert demand[k0] - demand[k0 - 1] == pytest.approx(45.0, abs=15.0)
    holidays = [a for a in run.anomalies if a.kind == "holiday"]
    assert len(holidays) == len(run.site.districts)  # city-wide: one label per DMA


# -- catalog ---------------------------------------------------------------------------------------


def test_roles_make_each_zone_balance_inflow_against_demand_and_leaks(run) -> None:
    offset = event(run, "sensor_offset")
    for d in run.site.districts:
        roles = {s.role for s in run.catalog if s.zone == d.name and s.quantity == "flow"}
        assert "inlet" in roles
        t, net = net_inflow(run, d.name)
        truth = truth_at(run, t, run.zone_demand(d.name))  # consumption + hydrant + leaks
        ok = ~offset.covers(t) if d.name == offset.zone else np.ones(len(t), bool)
        assert abs((net - truth)[ok].mean()) < 0.01 * truth.mean()
        assert np.abs(net - truth)[ok].max() < 0.05 * truth.mean()
    shared = {}
    for s, c in zip(run.catalog, run.site.channels, strict=True):
        if c.kind == "flow":
            shared.setdefault(c.element, []).append(s)
    pairs = [entries for entries in shared.values() if len(entries) == 2]
    assert pairs
    for entries in pairs:  # a meter between two DMAs: one's outlet is the other's inlet, one reading
        assert {e.role for e in entries} == {"inlet", "outlet"}
        if offset.sensor_id not in {e.sensor_id for e in entries}:
            assert np.array_equal(*(run.series(e.sensor_id)[1] for e in entries))


def test_loggers_sit_at_the_inlet_the_critical_node_and_spread_out(run) -> None:
    design = run.site.design
    for d in run.site.districts:
        loggers = [(s, c) for s, c in zip(run.catalog, run.site.channels, strict=True)
                   if s.zone == d.name and c.kind == "pressure"]
        assert [s.sensor_id for s, _ in loggers][:2] == [f"W-{d.name}-P01", f"W-{d.name}-P02"]
        assert "inlet" in loggers[0][0].tags and "critical" in loggers[1][0].tags
        lowest = design.pressure[:, design.node_cols(d.nodes)].min(axis=0)
        assert loggers[1][1].element == d.nodes[int(np.argmin(lowest))]
        assert len({c.element for _, c in loggers}) == len(loggers)


def test_ltown_gets_its_pressure_areas_as_dmas_with_meters_on_the_prvs_pump_and_tank() -> None:
    try:
        site = build_site(scenario(network="L-TOWN", districts={"auto": 4}, duration="1h"))
    except FileNotFoundError as exc:
        unavailable(str(exc))
    by_zone = {d.name: d for d in site.districts}
    assert sorted(len(d.nodes) for d in site.districts) == [31, 92, 258, 399]
    area_b = next(d for d in site.districts if len(d.nodes) == 31)
    assert [(m.link, m.role) for m in area_b.meters] == [("PRV-3", "inlet")]
    area_c = next(d for d in site.districts if len(d.nodes) == 92)
    assert area_c.tanks == ["T1"] and [m.role for m in area_c.meters] == ["inlet"]
    meters = {(m.link, m.role) for d in by_zone.values() for m in d.meters}
    assert {("PRV-1", "inlet"), ("PRV-2", "inlet"), ("PUMP_1", "outlet")} <= meters
    assert all(d.inlets() for d in site.districts)


# -- files and the engine ----------------------------------------------------------------------------


def test_replay_files_round_trip_through_ingest(run, tmp_path: Path) -> None:
    paths = write_replay(run, tmp_path)
    paths.update(wntr_sim.write_anomalies(run, tmp_path))
    catalog = load_catalog(paths["catalog.csv"])
    assert [s.sensor_id for s in catalog.sensors] == [s.sensor_id for s in run.catalog]
    data = read_replay(paths["readings.csv"], catalog)
    assert not data.dead_letters
    expected = run.to_batch()
    for col in ("sensor", "time_ns", "value"):
        np.testing.assert_array_equal(getattr(data.batch, col), getattr(expected, col))
    assert load_events(paths["events.csv"]) == run.events
    assert load_events(paths["anomalies.csv"]) == run.anomalies
    again = wntr_sim.load_wntr_scenario(paths["scenario.yaml"])
    assert again == run.scenario


def test_sentinel_simulate_dispatches_engine_wntr(tmp_path: Path) -> None:
    try:
        code = sentinel_main(["simulate", "--scenario", str(SCENARIOS / "hanoi-week.yaml"), "--out",
                              str(tmp_path / "out")])
    except FileNotFoundError as exc:
        unavailable(str(exc))
    assert code == 0
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"catalog.csv", "readings.csv", "events.csv", "anomalies.csv", "scenario.yaml"} <= names
    assert {e.kind for e in load_events(tmp_path / "out" / "events.csv")} >= {"burst", "slow_leak"}


def test_the_default_water_rules_catch_the_large_burst(run, tmp_path: Path) -> None:
    paths = write_replay(run, tmp_path)
    catalog = load_catalog(paths["catalog.csv"])
    out = replay(catalog, paths["readings.csv"], load_rules([ROOT / "rules" / "defaults" / "water.yaml"]),
                 show_progress=False)
    report, outcomes = score(run.events, out.alert_spans(), zones=len(catalog.zones), span_s=out.span_s)
    for o in outcomes:  # what the untuned defaults catch and miss on physics-based data (see with -s)
        print(f"  {o.event.event_id} {o.event.kind:15s} {o.event.zone}: "
              + (f"{o.first_alert.rule_id} after {o.time_to_detect_s / 60:.0f} min" if o.detected else "missed"))
    print(f"  false alerts by rule: {report['false_alerts_by_rule']}")
    burst = next(o for o in outcomes if o.event.kind == "burst")
    assert burst.detected and burst.time_to_detect_s <= 15 * 60


@pytest.mark.parametrize("name", ["hanoi-week.yaml", "ltown-week.yaml"])
def test_shipped_scenarios_place_all_their_events(name: str) -> None:
    sc = wntr_sim.load_wntr_scenario(SCENARIOS / name)
    try:
        site = build_site(sc)
    except FileNotFoundError as exc:
        unavailable(str(exc))
    events, anomalies, holidays = plan_all(sc, site)
    assert len(events) == len(sc.events) and len(holidays) == 1
    assert {p.kind for p in events} == set(wntr_sim.WNTR_EVENT_KINDS)
    assert all(p.settings for p in events if p.kind in ("low_pressure", "pressure_surge"))
    assert {p.kind for p in anomalies} == {"hydrant_draw", "holiday"}


def test_dmas_given_as_node_lists_are_metered_where_the_unmetered_trunk_feeds_them() -> None:
    east, west = ["4", "5", "6", "7", "8", "9"], ["20", "21", "22", "23", "24", "25", "26", "27", "28", "29", "30",
                                                  "31", "32"]
    try:
        site = build_site(scenario(districts={"zones": {"EAST": east, "WEST": west}}))
    except FileNotFoundError as exc:
        unavailable(str(exc))
    meters = {d.name: {(m.link, m.role, m.other) for m in d.meters} for d in site.districts}
    assert meters == {"EAST": {("3", "inlet", None), ("9", "outlet", None)},
                      "WEST": {("20", "inlet", None), ("28", "inlet", None)}}
    assert {s.zone for s in site.sensors} == {"EAST", "WEST"}
    with pytest.raises(ValueError, match="junction 9 is in both"):
        build_site(scenario(districts={"zones": {"EAST": east, "WEST": [*west, "9"]}}))
