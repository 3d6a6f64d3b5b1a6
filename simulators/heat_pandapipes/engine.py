"""generate(scenario) -> HeatSimResult: a SimResult (catalog, readings, labels) from pandapipes
hydraulics of a heating network and our thermal model on its flows.

Steps: network (circuits, sized pipes, pump lift) -> catalog -> events placed from the seed -> leak
sites and holes (refused when larger than the circuit's make-up) -> weather and loads -> one steady
state per step (leaks settled against their own pressure, plus the same step without leaks) ->
readings -> labels. A leak is labelled makeup_rise: from the step the hole opens to the step it is
repaired; magnitude = mean make-up flow in that window as a multiple of the baseline make-up
(seepage + contraction) in the same steps, the meaning the synthetic generator gives it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simulators.heat_pandapipes.hydraulics import HeatHydraulics, orifice_m3h, rated_makeup_m3h, simulate
from simulators.heat_pandapipes.loads import Loads, loads
from simulators.heat_pandapipes.network import HeatNetwork, build_network
from simulators.heat_pandapipes.scenario import HOLE_MM, HeatScenario
from simulators.heat_pandapipes.sensors import Channel, build_catalog
from simulators.heat_pandapipes.thermal import audit_pandapipes, closed_loop_check
from simulators.physics import rng_for
from simulators.pipes_common import (
    FAULT_KINDS,
    Instrument,
    Laps,
    Leak,
    Planned,
    coerce_scenario,
    fault_description,
    held,
    label,
    measure,
    place_events,
    print_summary,
    sag_magnitude,
    zones_from_nodes,
)
from simulators.synthetic import SimResult


@dataclass(frozen=True)
class HeatSimResult(SimResult):
    """A SimResult plus the physical truth behind it and the audit of pandapipes' thermal solution."""

    network: HeatNetwork | None = None
    channels: list[Channel] = field(default_factory=list)
    plans: list[Planned] = field(default_factory=list)
    leaks: list[Leak] = field(default_factory=list)
    hydraulics: HeatHydraulics | None = None
    loads: Loads | None = None
    audit: dict[str, dict] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def _hole(sc: HeatScenario, hn: HeatNetwork, p: Planned, n: int) -> float:
    """The given hole, else the given or a drawn size among those the circuit's make-up can replace."""
    c = hn.circuit(p.zone)
    worst = sc.plant.hold_kpa + c.lift_kpa  # the highest pressure anywhere in the circuit
    rated = rated_makeup_m3h(sc, c.volume_m3)

    def flow(mm: float) -> float:  # at the highest pressure, with the lightest (hottest, ~95 degC) water
        return float(orifice_m3h(np.array([worst]), np.array([np.pi * (mm / 2000.0) ** 2]), np.array([962.0]))[0])

    if p.hole_mm is not None or p.info.get("size"):
        mm = p.hole_mm if p.hole_mm is not None else HOLE_MM[p.info["size"]]
        if flow(mm) > rated:
            raise ValueError(f"a {mm:g} mm hole in {c.name} loses up to {flow(mm):.1f} m3/h, more than its make-up "
                             f"can replace ({rated:.1f} m3/h rated): the circuit would empty; use a smaller hole")
        return mm
    fits = [mm for mm in HOLE_MM.values() if flow(mm) <= rated] or [min(HOLE_MM.values())]
    return fits[int(rng_for(sc.seed, "size", str(n)).integers(len(fits)))]


def _resolve(sc: HeatScenario, hn: HeatNetwork, plans: list[Planned]) -> list[Leak]:
    names = [c.name for c in hn.circuits]
    leaks = []
    for n, p in enumerate(plans):
        if p.kind == "makeup_rise":
            c = hn.circuit(p.zone)
            if p.node is not None:
                j = hn.junction(p.node)
            else:
                pool = [j for j in c.junctions if j not in (c.supply_plant, c.return_plant)]
                j = pool[int(rng_for(sc.seed, "leak", str(n)).integers(len(pool)))]
            p.node = str(hn.net.junction.name[j])
            p.hole_mm = _hole(sc, hn, p, n)
            leaks.append(Leak.of(p, j, names.index(p.zone)))
        sag_magnitude(sc, p, n)
    return leaks


def _instruments(sc: HeatScenario, sensors: list, channels: list[Channel], hyd: HeatHydraulics, ld: Loads,
                 hn: HeatNetwork) -> list[Instrument]:
    s, out = sc.sensors, []
    rows = list(hn.net.heat_consumer.index)
    for sensor, ch in zip(sensors, channels, strict=True):
        rel, lo = 0.0, None
        if ch.kind == "pressure":
            series, noise = hyd.at(ch.junction), s.pressure_noise_kpa
        elif ch.kind == "supply_t":
            series, noise = ld.supply_c[:, ch.circuit], s.temperature_noise_k
        elif ch.kind == "temperature":
            series, noise = hyd.temperature(ch.junction), s.temperature_noise_k
        elif ch.kind == "return_out":
            series, noise = hyd.end_return_c[:, rows.index(ch.consumer)], s.temperature_noise_k
        elif ch.kind == "circulation":
            series, noise, rel, lo = hyd.circulation_m3h[:, ch.circuit], 0.0, s.flow_noise_fraction, 0.0
        else:
            series, noise, rel, lo = hyd.makeup_m3h[:, ch.circuit], s.makeup_noise_m3h, s.makeup_noise_fraction, 0.0
        out.append(Instrument(sensor, held(series, sc.step), noise, rel, lo=lo))
    return out


def _leak_text(sc: HeatScenario, hn: HeatNetwork, hyd: HeatHydraulics, leak: Leak, i: int, base: np.ndarray) -> str:
    p, c = leak.plan, hn.circuits[leak.zone]
    on = hyd.leak_m3h[:, i] > 0
    side = "supply" if leak.junction in c.supply_side else "return"
    total = hyd.makeup_m3h[on, leak.zone].mean()
    hold_drop = float((sc.plant.hold_kpa - hyd.hold_kpa[on, leak.zone]).mean())
    far = int(hn.net.heat_consumer.from_junction[c.ends[0]]) if c.ends else c.supply_plant
    far_drop = float((hyd.at(far, quiet=True)[on] - hyd.at(far)[on]).mean())
    return (f"leak through a {p.hole_mm:g} mm hole ({p.growth}) on the {side} side at junction {p.node}: "
            f"{hyd.leak_m3h[on, i].mean():.2f} m3/h of network water lost; make-up {base[on].mean():.2f} -> "
            f"{total:.2f} m3/h ({p.magnitude:g}x); holding pressure {hold_drop:.0f} kPa below set point, "
            f"supply pressure at the far substation {-far_drop:+.0f} kPa; repaired at end")


def _labels(sc: HeatScenario, hn: HeatNetwork, plans: list[Planned], leaks: list[Leak], hyd: HeatHydraulics,
            units: dict[str, str]) -> list:
    start_s = int(sc.start.timestamp())
    by_plan = {id(leak.plan): i for i, leak in enumerate(leaks)}
    events = []
    for n, p in enumerate(plans, start=1):
        if p.kind == "makeup_rise":
            i = by_plan[id(p)]
            leak = leaks[i]
            base = hyd.makeup_m3h[:, leak.zone] - hyd.leak_cold_m3h[:, i]
            on = hyd.leak_m3h[:, i] > 0
            p.magnitude = round(float(hyd.makeup_m3h[on, leak.zone].mean() / max(base[on].mean(), 1e-9)), 2)
            text = _leak_text(sc, hn, hyd, leak, i, base)
        elif p.kind == "low_pressure":
            text = (f"pressure holding of {p.zone} sags by {p.magnitude:.0%} "
                    f"({p.magnitude * sc.plant.hold_kpa:.0f} kPa; make-up pump trip / expansion vessel fault), "
                    "then recovers")
        else:
            text = fault_description(p, units[p.sensor_id or ""])
        events.append(label(p, f"EV{n:03d}", "heat", start_s, text))
    return events


def generate(source: str | Path | HeatScenario | dict, *, show_progress: bool = True) -> HeatSimResult:
    """Simulate a heating scenario (object, mapping or YAML path); same scenario and seed -> same output."""
    sc = coerce_scenario(source, HeatScenario)
    laps = Laps()
    hn = build_network(sc)
    sensors, channels = build_catalog(sc, hn)
    zone_sensors = {c.name: [s.sensor_id for s in sensors if s.zone == c.name] for c in hn.circuits}
    owner = {j: c.name for c in hn.circuits for j in c.junctions}
    placing = zones_from_nodes(sc, "makeup_rise", lambda name: owner[hn.junction(name)])
    plans = place_events(placing, zone_sensors, ("makeup_rise", "low_pressure"))
    leaks = _resolve(sc, hn, plans)
    ld = loads(sc, hn)
    laps.lap("network")
    hyd, stepper = simulate(sc, hn, ld, leaks, [p for p in plans if p.kind == "low_pressure"], show_progress)
    laps.lap("hydraulics")
    audit = {}
    checks = [("no leak", 0)]
    if leaks:
        checks.append(("leak", int((leaks[0].plan.start_s + leaks[0].plan.end_s) / 2 // sc.step)))
    for name, k in checks:
        stepper.step(k)
        state, _, _ = stepper.thermal(k)
        if name == "no leak":
            audit["closed loop"] = {"step": k, **closed_loop_check(stepper.net, hn, stepper.model, state,
                                                                   ld.supply_c[k])}
        audit[name] = {"step": k, **audit_pandapipes(stepper.net, hn, stepper.model, state, ld.supply_c[k])}
    laps.lap("audit")
    faults = [p for p in plans if p.kind in FAULT_KINDS]
    readings, places = measure(sc, _instruments(sc, sensors, channels, hyd, ld, hn), faults)
    units = {s.sensor_id: s.unit for s in sensors}
    events = _labels(sc, hn, plans, leaks, hyd, units)
    laps.lap("readings")
    if show_progress:
        print_summary(sc, int(hyd.runs.sum()), len(readings), len(events), laps)
    return HeatSimResult(sc, sensors, readings, events, places, network=hn,  # type: ignore[arg-type]
                         channels=channels, plans=plans, leaks=leaks, hydraulics=hyd, loads=ld, audit=audit,
                         timings=dict(laps.timings))
