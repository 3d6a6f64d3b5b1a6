"""generate_wntr(scenario) -> WntrSimResult: a SimResult (catalog, readings, events) from EPANET hydraulics.

Steps: the site (DMAs, instruments, design day) -> events and anomalies placed from the seed ->
the .inp with per-node LeakDB demands and hydrant draws -> EPANET with the events' settings switched
at their steps, and once more without them as the counterfactual the labels are measured against ->
readings per instrument. The result is a SimResult, so write_replay, publish and backtest take it
unchanged; benign anomalies ride along in `anomalies` (write_anomalies -> anomalies.csv).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import wntr

from sentinel.events import LabelledEvent
from simulators.files import write_events
from simulators.synthetic import Readings, SimResult
from simulators.water_wntr import hydraulics, labels, measure
from simulators.water_wntr.demands import LocalCalendar, multipliers
from simulators.water_wntr.districts import base_demand
from simulators.water_wntr.events import Plan, plan_all
from simulators.water_wntr.hydraulics import Action, Hydraulics
from simulators.water_wntr.operations import leak_actions, setting_actions
from simulators.water_wntr.scenario import FAULT_KINDS, LEAK_KINDS, WntrScenario
from simulators.water_wntr.site import Site, build_site

NS = 1_000_000_000


@dataclass(frozen=True)
class WntrSimResult(SimResult):
    """A SimResult plus what only a physics run knows: benign anomalies and the hydraulic truth."""

    anomalies: list[LabelledEvent] = field(default_factory=list)
    plans: list[Plan] = field(default_factory=list, compare=False)  # events as simulated (node, emitter, ...)
    site: Site | None = field(default=None, compare=False)
    hydraulics: Hydraulics | None = field(default=None, compare=False)  # one state per hydraulic step
    quiet: Hydraulics | None = field(default=None, compare=False)  # the same run without events
    timings: dict[str, float] = field(default_factory=dict, compare=False)  # seconds per stage

    def zone_demand(self, zone: str, quiet: bool = False) -> np.ndarray:
        """What the DMA's junctions draw per hydraulic step (m3/h): consumption, hydrants and leaks."""
        assert self.site is not None and self.hydraulics is not None and self.quiet is not None
        h = self.quiet if quiet else self.hydraulics
        return h.demand[:, h.node_cols(self.site.district(zone).nodes)].sum(axis=1)


def build_model(sc: WntrScenario, site: Site, hydrants: list[Plan], holidays: list[date]
                ) -> tuple[wntr.network.WaterNetworkModel, dict[str, np.ndarray]]:
    """The network with this run's time grid, PDD and hydrant draws, each demand on its own pattern
    (a placeholder in the model; the values, one LeakDB series per node, come separately)."""
    wn = site.fresh_model()
    patterns: dict[str, np.ndarray] = {}
    hydraulics.configure(wn, sc.steps, sc.hydraulic_step, sc.demand.required_pressure_m,
                         sc.demand.minimum_pressure_m)
    zone_index = {n: i for i, d in enumerate(site.districts) for n in d.nodes}
    nodes = [n for n in wn.junction_name_list if base_demand(wn, n) > 0]
    t = np.arange(sc.steps) * sc.hydraulic_step
    cal = LocalCalendar.of(int(sc.start.timestamp()), sc.utc_offset_h, t, holidays)
    mult = multipliers(sc.demand, cal, [zone_index.get(n, len(site.districts)) for n in nodes], sc.seed)
    for i, name in enumerate(nodes):
        wn.add_pattern(f"D{i}", [1.0])
        patterns[f"D{i}"] = mult[:, i]
        for d in wn.get_node(name).demand_timeseries_list:
            d.base_value *= sc.demand.multiplier
            d.pattern_name = f"D{i}"
    for n, p in enumerate(hydrants, start=1):
        on = np.zeros(sc.steps)
        on[int(p.start_s // sc.hydraulic_step):int(p.end_s // sc.hydraulic_step)] = 1.0
        wn.add_pattern(f"HYD{n}", [0.0])
        patterns[f"HYD{n}"] = on
        wn.get_node(p.node).add_demand(p.flow_m3h / 3600.0, f"HYD{n}", category="hydrant")
    return wn, patterns


def actions_for(events: list[Plan], steps: int, step_s: float) -> list[Action]:
    out: list[Action] = []
    for p in events:
        k0, k1 = int(p.start_s // step_s), int(p.end_s // step_s)
        if p.kind in LEAK_KINDS:
            out += leak_actions(p.node or "", p.emitter, k0, k1, steps, ramp=p.kind == "slow_leak")
        elif p.settings:
            out += setting_actions(p.settings, k0, k1, steps)
    return out


def _readings(sc: WntrScenario, site: Site, h: Hydraulics, events: list[Plan]) -> tuple[Readings, tuple[int, ...]]:
    times, sensors, values, places = [], [], [], []
    span = sc.steps * sc.hydraulic_step
    for idx, (sensor, channel) in enumerate(zip(site.sensors, site.channels, strict=True)):
        faults = [p for p in events if p.sensor_id == sensor.sensor_id and p.kind in FAULT_KINDS]
        t, v = measure.readings(sc.seed, sc.sensors, h, sensor, channel, span, faults)
        times.append(t)
        values.append(v)
        sensors.append(np.full(len(t), idx, dtype=np.int32))
        places.append(measure.decimals(sensor))
    t_all, s_all = np.concatenate(times), np.concatenate(sensors)
    order = np.lexsort((s_all, t_all))
    start_s = int(sc.start.timestamp())
    return Readings((t_all[order] + start_s) * NS, s_all[order], np.concatenate(values)[order]), tuple(places)


def generate_wntr(sc: WntrScenario, *, show_progress: bool = False) -> WntrSimResult:
    """Simulate the scenario; the same scenario (seed included) gives identical readings and labels."""
    clock = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = now - clock
        clock = now

    site = build_site(sc)
    events, anomalies, holidays = plan_all(sc, site)
    lap("site")
    wn, patterns = build_model(sc, site, [p for p in anomalies if p.kind == "hydrant_draw"], holidays)
    acts = actions_for(events, sc.steps, sc.hydraulic_step)
    with tempfile.TemporaryDirectory(prefix="sentinel-wntr-") as tmp:
        inp = Path(tmp) / "scenario.inp"
        hydraulics.write_inp(wn, inp)
        lap("inp")
        h = hydraulics.run(inp, acts, patterns=patterns, label="hydraulics", show_progress=show_progress)
        lap("hydraulics")
        quiet = hydraulics.run(inp, patterns=patterns, label="hydraulics without events",
                               show_progress=show_progress) if acts else h
        lap("counterfactual")
    h.fix_demands(site.wn, [a.name for a in acts if a.element == "node" and a.code == hydraulics.EN_EMITTER])
    readings, places = _readings(sc, site, h, events)
    start_s = int(sc.start.timestamp())
    result = WntrSimResult(sc, list(site.sensors), readings,  # type: ignore[arg-type]
                           labels.event_labels(site, events, h, quiet, start_s), places,
                           anomalies=labels.anomaly_labels(anomalies, start_s), plans=events, site=site,
                           hydraulics=h,
                           quiet=quiet, timings=timings)
    lap("readings")
    return result


def write_anomalies(result: SimResult, directory: str | Path) -> dict[str, Path]:
    """anomalies.csv (same columns as events.csv) beside the replay set; {} for a result without any."""
    anomalies = getattr(result, "anomalies", None)
    if anomalies is None:
        return {}
    path = Path(directory) / "anomalies.csv"
    write_events(anomalies, path)
    return {"anomalies.csv": path}
