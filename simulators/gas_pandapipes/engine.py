"""generate(scenario) -> GasSimResult: a SimResult (catalog, readings, labels) from pandapipes gas
hydraulics and the methane dispersion model.

Steps: network and districts -> catalog -> events placed from the seed -> leak sites and holes -> house
demand -> one steady state per step (leaks settled against their own pressure drop, and the same step
without leaks as the counterfactual) -> methane in the spaces -> readings -> labels. A leak is labelled
gas_rise: its window runs from the step the hole opens until the methane it put into the district's
spaces has vented (< 0.5 %LEL; cut short if the zone's next event starts first), its sensor is the
space that saw the most, its magnitude that space's peak %LEL (true concentration; the detector itself
saturates at 100).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simulators.gas_pandapipes import demand as demand_model
from simulators.gas_pandapipes.hydraulics import GasHydraulics, GasProps, orifice_m3h, simulate
from simulators.gas_pandapipes.methane import Spaces, concentrations, vented_s
from simulators.gas_pandapipes.network import GasNetwork, build_network
from simulators.gas_pandapipes.scenario import HOLE_MM, GasScenario
from simulators.gas_pandapipes.sensors import Channel, build_catalog
from simulators.physics import SmoothNoise, rng_for
from simulators.pipes_common import (
    FAULT_KINDS,
    Instrument,
    Laps,
    Leak,
    Planned,
    coerce_scenario,
    distances_from,
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
class GasSimResult(SimResult):
    """A SimResult plus the physical truth behind it, for tests and reports."""

    network: GasNetwork | None = None
    channels: list[Channel] = field(default_factory=list)
    plans: list[Planned] = field(default_factory=list)
    leaks: list[Leak] = field(default_factory=list)
    hydraulics: GasHydraulics | None = None
    spaces: Spaces | None = None
    methane_t: np.ndarray | None = None  # s from start, 10 s grid
    methane_lel: np.ndarray | None = None  # (grid, spaces): from leaks, without background
    timings: dict[str, float] = field(default_factory=dict)


def _visible_lel(sc: GasScenario, gn: GasNetwork, junction: int, q_m3h: float, spaces: list[int],
                 kinds: list[str]) -> float:
    """The steady %LEL the most exposed space would settle at for a leak of q_m3h at this junction
    (the dispersion model's steady state, c = G / (G + Q), without the per-space connectivity draw)."""
    disp = sc.dispersion
    d = distances_from(gn.trench, junction, spaces, cutoff=10 * disp.decay_length_m)
    g = disp.capture_fraction * np.exp(-d / disp.decay_length_m) * q_m3h
    vent = np.array([disp.types[k].volume_m3 * disp.types[k].air_changes_per_h for k in kinds])
    return float(np.max(2000.0 * g / (g + vent)))


def _leak_site(sc: GasScenario, gn: GasNetwork, plan: Planned, n: int) -> int:
    """The named junction, else one drawn among the district's mains at least leak_min_distance_m from
    every detector where the leak would settle above leak_visible_lel in one of them: a leak nobody
    can smell tests nothing (an explicit `node` can put one anywhere). Else anywhere on its mains."""
    if plan.node is not None:
        return gn.junction(plan.node)
    d = gn.district(plan.zone)
    assert plan.hole_mm is not None
    gas = GasProps(0.0165, 0.73, 273.15 + sc.gas_temperature_c)  # natural gas, for the estimate only
    q = float(orifice_m3h(np.array([sc.regulators.set_kpa]), np.array([101.3]),
                          np.array([np.pi * (plan.hole_mm / 2000.0) ** 2]), gas)[0])
    mains = [j for j in d.junctions if j in gn.mains]
    pool = [j for j in mains if min(distances_from(gn.trench, j, d.spaces, cutoff=sc.leak_min_distance_m))
            >= sc.leak_min_distance_m and _visible_lel(sc, gn, j, q, d.spaces, d.space_types) >= sc.leak_visible_lel]
    pool = pool or mains
    return int(pool[int(rng_for(sc.seed, "leak", str(n)).integers(len(pool)))])


def _resolve(sc: GasScenario, gn: GasNetwork, plans: list[Planned]) -> list[Leak]:
    names = [d.name for d in gn.districts]
    leaks = []
    for n, p in enumerate(plans):
        rng = rng_for(sc.seed, "size", str(n))
        if p.kind == "gas_rise":
            if p.hole_mm is None:
                size = p.info.get("size") or list(HOLE_MM)[int(rng.integers(len(HOLE_MM)))]
                p.hole_mm = HOLE_MM[size]
            j = _leak_site(sc, gn, p, n)
            p.node = str(gn.net.junction.name[j])
            leaks.append(Leak.of(p, j, names.index(p.zone)))
        sag_magnitude(sc, p, n)
    return leaks


def _spaces(sc: GasScenario, gn: GasNetwork, sensors: list, channels: list[Channel]) -> Spaces:
    idx = [i for i, c in enumerate(channels) if c.kind == "methane"]
    ids = [sensors[i].sensor_id for i in idx]
    types = [sc.dispersion.types[sensors[i].tags[0]] for i in idx]
    volume = np.array([t.volume_m3 for t in types])
    sd = sc.dispersion.connectivity_sd
    conn = np.array([float(np.exp(sd * rng_for(sc.seed, "space", s).standard_normal() - sd * sd / 2)) for s in ids])
    return Spaces(ids, [sensors[i].zone for i in idx], [channels[i].junction for i in idx], volume,
                  volume * np.array([t.air_changes_per_h for t in types]), conn)


def _instruments(sc: GasScenario, sensors: list, channels: list[Channel], hyd: GasHydraulics,
                 t_grid: np.ndarray, lel: np.ndarray) -> list[Instrument]:
    s, out = sc.sensors, []
    lo_bg, hi_bg = sc.dispersion.background_lel
    for sensor, ch in zip(sensors, channels, strict=True):
        if ch.kind == "outlet":
            out.append(Instrument(sensor, held(hyd.outlet_kpa[:, ch.district], sc.step), s.station_pressure_noise_kpa))
        elif ch.kind == "inflow":
            out.append(Instrument(sensor, held(hyd.inflow_m3h[:, ch.district], sc.step), s.flow_noise_m3h,
                                  s.flow_noise_fraction, lo=0.0))
        elif ch.kind == "pressure":
            out.append(Instrument(sensor, held(hyd.pressure(ch.junction), sc.step), s.logger_pressure_noise_kpa))
        else:
            rng = rng_for(sc.seed, "background", sensor.sensor_id)
            base = float(rng.uniform(lo_bg, hi_bg))
            wander = SmoothNoise.draw(rng, sc.span_s + sc.step, 1800.0, 0.15)
            col = lel[:, ch.space]

            def truth(t: np.ndarray, col: np.ndarray = col, base: float = base,
                      wander: SmoothNoise = wander) -> np.ndarray:
                return np.maximum(base + wander(t), 0.0) + np.interp(t, t_grid, col)

            out.append(Instrument(sensor, truth, s.methane_noise_lel, lo=0.0, hi=100.0))
    return out


def _leak_description(gn: GasNetwork, hyd: GasHydraulics, leak: Leak, i: int, dist_m: float, peak: float,
                      others: list[str]) -> str:
    p = leak.plan
    on = hyd.leak_m3h[:, i] > 0
    q = float(hyd.leak_m3h[on, i].mean()) if on.any() else 0.0
    share = q / float(hyd.inflow_m3h[on, leak.zone].mean()) if on.any() else 0.0
    d = gn.districts[leak.zone]
    drop = max(float((hyd.quiet_kpa[on, hyd.watch.index(j)] - hyd.p_kpa[on, hyd.watch.index(j)]).max())
               for j in d.ends) if on.any() else 0.0
    text = (f"leak through a {p.hole_mm:g} mm hole ({p.growth}) at junction {p.node}, {dist_m:.0f} m along the "
            f"trench from {p.sensor_id}: {q:.1f} Nm3/h, {share:.0%} of {d.name}'s inflow; end loggers drop up to "
            f"{drop:.2f} kPa; {p.sensor_id} peaks at {peak:.1f} %LEL; repaired at +{p.end_s / 3600:.2f} h, "
            "label ends when the spaces have vented")
    return text + (f"; also reaches {', '.join(others)} in other districts" if others else "")


def _labels(sc: GasScenario, gn: GasNetwork, plans: list[Planned], leaks: list[Leak], hyd: GasHydraulics,
            spaces: Spaces, t_grid: np.ndarray, alone: list[np.ndarray], dists: list[np.ndarray],
            units: dict[str, str]) -> list:
    start_s = int(sc.start.timestamp())
    events = []
    by_plan = {id(leak.plan): i for i, leak in enumerate(leaks)}
    for n, p in enumerate(plans, start=1):
        end = None
        if p.kind == "gas_rise":
            i = by_plan[id(p)]
            own = np.array([k for k, z in enumerate(spaces.districts) if z == p.zone])
            peaks = alone[i][:, own].max(axis=0)
            best = int(own[int(np.argmax(peaks))])
            p.sensor_id, p.magnitude = spaces.sensor_ids[best], round(float(peaks.max()), 1)
            end = min(vented_s(t_grid, alone[i][:, own], p.end_s), sc.span_s)
            others = [spaces.sensor_ids[k] for k in range(len(spaces.sensor_ids))
                      if spaces.districts[k] != p.zone and alone[i][:, k].max() >= 1.0]
            text = _leak_description(gn, hyd, leaks[i], i, float(dists[i][best]), float(peaks.max()), others)
            nxt = min((o.start_s for o in plans if o.zone == p.zone and p.end_s <= o.start_s < end), default=None)
            if nxt is not None:  # windows of one zone never overlap: cut the venting tail at the next event
                end = nxt
                text += f"; still venting when the next event starts at +{nxt / 3600:g} h"
        elif p.kind == "low_pressure":
            text = (f"regulator of {p.zone} lets its outlet sag by {p.magnitude:.0%} "
                    f"({p.magnitude * sc.regulators.set_kpa:.0f} kPa) below its set point, then recovers")
        else:
            text = fault_description(p, units[p.sensor_id or ""])
        events.append(label(p, f"EV{n:03d}", "gas", start_s, text, end))
    return events


def generate(source: str | Path | GasScenario | dict, *, show_progress: bool = True) -> GasSimResult:
    """Simulate a gas scenario (object, mapping or YAML path); same scenario and seed -> same output."""
    sc = coerce_scenario(source, GasScenario)
    laps = Laps()
    gn = build_network(sc)
    sensors, channels = build_catalog(sc, gn)
    zone_sensors = {d.name: [s.sensor_id for s in sensors if s.zone == d.name] for d in gn.districts}
    owner = {j: d.name for d in gn.districts for j in d.junctions}
    placing = zones_from_nodes(sc, "gas_rise", lambda name: owner[gn.junction(name)])
    plans = place_events(placing, zone_sensors, ("gas_rise", "low_pressure"))
    leaks = _resolve(sc, gn, plans)
    gas = GasProps.of(gn.net, sc.gas_temperature_c)
    demand = demand_model.house_demand(sc, gn, gas.normal_density)
    laps.lap("network")
    hyd = simulate(sc, gn, demand, leaks, [p for p in plans if p.kind == "low_pressure"], gas, show_progress)
    laps.lap("hydraulics")
    spaces = _spaces(sc, gn, sensors, channels)
    dists = [distances_from(gn.trench, leak.junction, spaces.junctions) for leak in leaks]
    t_grid, lel, alone = concentrations(sc.span_s, sc.step, [(hyd.leak_m3h[:, i], d) for i, d in enumerate(dists)],
                                        spaces, sc.dispersion)
    laps.lap("methane")
    faults = [p for p in plans if p.kind in FAULT_KINDS]
    readings, places = measure(sc, _instruments(sc, sensors, channels, hyd, t_grid, lel), faults)
    units = {s.sensor_id: s.unit for s in sensors}
    events = _labels(sc, gn, plans, leaks, hyd, spaces, t_grid, alone, dists, units)
    laps.lap("readings")
    if show_progress:
        print_summary(sc, int(hyd.runs.sum()), len(readings), len(events), laps)
    return GasSimResult(sc, sensors, readings, events, places, network=gn,  # type: ignore[arg-type]
                        channels=channels, plans=plans, leaks=leaks, hydraulics=hyd, spaces=spaces,
                        methane_t=t_grid, methane_lel=lel, timings=dict(laps.timings))
