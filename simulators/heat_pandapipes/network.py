"""The heating network as its operator runs it: circuits, each with a plant supply/return header pair, a
constant-differential-pressure circulation pump and a pressure-holding make-up system, feeding
flow-controlled substations.

pandapipes' circulation pump cannot exchange mass with the outside (its docstring: a pressure anchor
with no genuine external connection), so a leak makes its hydraulics diverge. The plant is therefore
modelled as two external grids per circuit: the supply header at (holding pressure + pump lift) and
temperature, the return header at the holding pressure. Their mass imbalance is exactly the water the
circuit loses, i.e. what the make-up system must replace.

The shipped Schutterwald heat network gives every pipe an 800 mm bore (its loader sets a `diameter_m`
column pandapipes 0.16 no longer reads), so pipes are sized here once, at design load, to the
smallest standard bore that keeps the velocity under `pipes.max_velocity_m_s`. Design loads, sizes,
pump lift and instrument sites depend on the network and the scenario's plant settings, never on the
seed.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
import numpy as np
import pandapipes as pp
import pandapipes.networks as ppn

from simulators.heat_pandapipes.scenario import HeatScenario
from simulators.physics import rng_for
from simulators.pipes_common import farthest_first, pipe_graph

CP = 4190.0  # J/(kg K), water; the thermal model uses one constant cp so its energy balance closes exactly
STANDARD_BORES_MM = np.array([25, 32, 40, 50, 65, 80, 100, 125, 150, 200, 250, 300, 350, 400, 500, 600], float)

logging.getLogger("pandapipes").setLevel(logging.ERROR)


def _schutterwald() -> pp.pandapipesNet:
    """Schutterwald heat (pandapipes example derived from its gas grid): 44 substations on two feeders."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ppn.schutterwald_heat()


NETWORKS = {"schutterwald": _schutterwald}


@dataclass
class Circuit:
    name: str
    supply_plant: int  # junction of the supply header
    return_plant: int  # junction of the return header (pressure-holding point)
    supply_side: set[int]
    return_side: set[int]
    consumers: list[int]  # heat_consumer row labels
    ends: list[int] = field(default_factory=list)  # consumer rows of the farthest substations
    volume_m3: float = 0.0
    lift_kpa: float = 0.0
    supply_ext: int = -1  # ext_grid row labels
    return_ext: int = -1

    @property
    def junctions(self) -> list[int]:
        return sorted(self.supply_side | self.return_side)


@dataclass
class HeatNetwork:
    net: pp.pandapipesNet
    circuits: list[Circuit]
    design_w: dict[int, float]  # heat_consumer row -> design load (W)
    graph: nx.Graph  # pipes and valves (no substations), edge length in m

    def circuit(self, name: str) -> Circuit:
        return next(c for c in self.circuits if c.name == name)

    def junction(self, name: str) -> int:
        hits = self.net.junction.index[self.net.junction.name.astype(str) == name]
        if not len(hits):
            raise ValueError(f"no junction named {name!r} in the heating network")
        return int(hits[0])


def _load(sc: HeatScenario) -> pp.pandapipesNet:
    if sc.network.lower().endswith(".json"):
        if not Path(sc.network).is_file():
            raise FileNotFoundError(f"heating network file {sc.network} not found")
        net = pp.from_json(sc.network)
    elif sc.network.lower() in NETWORKS:
        net = NETWORKS[sc.network.lower()]()
    else:
        raise ValueError(f"unknown heating network {sc.network!r}; use {', '.join(NETWORKS)} or a pandapipes .json")
    if len(net.circ_pump_pressure) != 1 or not len(net.heat_consumer):
        raise ValueError(f"network {sc.network!r} needs one circulation pump (circ_pump_pressure) and heat consumers")
    return net


def _with_consumers(net: pp.pandapipesNet, g: nx.Graph) -> nx.Graph:
    full = g.copy()
    full.add_edges_from((int(f), int(t)) for f, t in zip(net.heat_consumer.from_junction,
                                                          net.heat_consumer.to_junction, strict=True))
    return full


def _split(sc: HeatScenario, net: pp.pandapipesNet) -> list[tuple[int, int]]:
    """Plant header pairs: the pump's own (single), or a new pair per feeder with the feeder's valves and
    pipes moved onto it (per_feeder). The pump itself is removed either way."""
    pump = net.circ_pump_pressure.iloc[0]
    s, r = int(pump.flow_junction), int(pump.return_junction)
    net.circ_pump_pressure.drop(net.circ_pump_pressure.index, inplace=True)
    if sc.circuits == "single":
        return [(s, r)]
    full = _with_consumers(net, pipe_graph(net))
    full.remove_nodes_from([s, r])
    parts = [c for c in nx.connected_components(full)
             if any(int(j) in c for j in net.heat_consumer.from_junction)]
    parts.sort(key=lambda c: (-sum(int(j) in c for j in net.heat_consumer.from_junction), min(c)))
    pairs = []
    for part in parts:
        new = []
        for old in (s, r):
            j = pp.create_junction(net, net.junction.pn_bar[old], net.junction.tfluid_k[old],
                                   height_m=net.junction.height_m[old], name=f"{net.junction.name[old]}#{len(pairs)}",
                                   geodata=tuple(net.junction_geodata.loc[old, ["x", "y"]]))
            for table, cols in (("valve", ("junction", "element")), ("pipe", ("from_junction", "to_junction"))):
                for col in cols:
                    other = next(c for c in cols if c != col)
                    hit = (net[table][col] == old) & net[table][other].isin(part)
                    net[table].loc[hit, col] = j
            new.append(j)
        pairs.append((new[0], new[1]))
    net.junction.loc[[s, r], "in_service"] = False
    return pairs


def _fill_geodata(net: pp.pandapipesNet) -> None:
    """Return-side junctions often have no coordinates: the return pipe lies in the supply pipe's
    trench, so each takes those of the nearest located junction (through pipes and substations)."""
    geo = net.junction_geodata.reindex(net.junction.index)
    known = geo.x.notna() & geo.y.notna()
    if known.all():
        return
    full = _with_consumers(net, pipe_graph(net, closed_too=True))
    sources = [int(j) for j in geo.index[known] if int(j) in full]
    _, paths = nx.multi_source_dijkstra(full, sources, weight=lambda u, v, d: 1)
    for j in geo.index[~known]:
        if int(j) in paths:
            geo.loc[j, ["x", "y"]] = geo.loc[paths[int(j)][0], ["x", "y"]].to_numpy()
    net.junction_geodata = geo


def _size_pipes(sc: HeatScenario, net: pp.pandapipesNet) -> None:
    """Smallest standard bore under the velocity limit at design flow (twice: flows in meshes move)."""
    net.pipe["inner_diameter_mm"] = 800.0
    for _ in range(2):
        pp.pipeflow(net, mode="hydraulics")
        q = np.abs(net.res_pipe.vdot_m3_per_s.to_numpy())
        need = np.sqrt(4 * q / (np.pi * sc.pipes.max_velocity_m_s)) * 1000.0
        pick = np.minimum(np.searchsorted(STANDARD_BORES_MM, need), len(STANDARD_BORES_MM) - 1)
        net.pipe["inner_diameter_mm"] = STANDARD_BORES_MM[pick]
    loss = sc.pipes.loss_base_w_mk + sc.pipes.loss_per_mm_w_mk * net.pipe.inner_diameter_mm
    net.pipe["u_w_per_m2k"] = loss / (np.pi * net.pipe.inner_diameter_mm / 1000.0)  # for pandapipes' thermal audit
    net.pipe["text_k"] = 273.15 + sc.pipes.soil_c


def design_loads(sc: HeatScenario, net: pp.pandapipesNet) -> dict[int, float]:
    """Design load per substation (W): the scenario's mean, spread by a draw fixed per network."""
    rng = rng_for(0, "design", sc.network)
    spread = sc.substations.spread
    f = rng.uniform(1 - spread, 1 + spread, len(net.heat_consumer))
    kw = sc.substations.design_kw
    return {int(i): kw * 1000.0 * float(x) for i, x in zip(net.heat_consumer.index, f, strict=True)}


def build_network(sc: HeatScenario) -> HeatNetwork:
    net = _load(sc)
    pairs = _split(sc, net)
    _fill_geodata(net)
    g = pipe_graph(net)
    design = design_loads(sc, net)
    p = sc.plant
    net.heat_consumer["qext_w"] = [design[int(i)] for i in net.heat_consumer.index]
    net.heat_consumer["controlled_mdot_kg_per_s"] = net.heat_consumer.qext_w / (CP * p.dt_design_k)
    net.heat_consumer["treturn_k"] = np.nan
    net.heat_consumer["deltat_k"] = np.nan
    circuits = []
    for n, (s, r) in enumerate(pairs, start=1):
        sup, ret = nx.node_connected_component(g, s), nx.node_connected_component(g, r)
        cons = [int(i) for i, f in zip(net.heat_consumer.index, net.heat_consumer.from_junction, strict=True)
                if int(f) in sup]
        c = Circuit(f"LOOP{n}", s, r, {int(j) for j in sup}, {int(j) for j in ret}, cons)
        c.supply_ext = pp.create_ext_grid(net, s, (p.hold_kpa + 500.0) / 100.0, 273.15 + p.supply_design_c, type="pt")
        c.return_ext = pp.create_ext_grid(net, r, p.hold_kpa / 100.0, 273.15 + p.supply_design_c - p.dt_design_k,
                                          type="p")
        net.junction.loc[list(c.supply_side), "tfluid_k"] = 273.15 + p.supply_design_c
        net.junction.loc[list(c.return_side), "tfluid_k"] = 273.15 + p.supply_design_c - p.dt_design_k
        circuits.append(c)
    _size_pipes(sc, net)
    pp.pipeflow(net, mode="hydraulics")
    hc = net.res_heat_consumer
    bore = net.pipe.inner_diameter_mm / 1000.0
    volume = np.pi * bore**2 / 4 * net.pipe.length_km * 1000.0
    for c in circuits:
        dp = ((hc.p_from_bar - hc.p_to_bar) * 100.0).loc[c.consumers]
        c.lift_kpa = 500.0 - float(dp.min()) + p.lift_margin_kpa
        net.ext_grid.loc[c.supply_ext, "p_bar"] = (p.hold_kpa + c.lift_kpa) / 100.0
        c.volume_m3 = float(volume[net.pipe.from_junction.isin(c.junctions)].sum())
        supply_of = {int(net.heat_consumer.from_junction[i]): i for i in c.consumers}
        far = farthest_first(g, [c.supply_plant], sorted(supply_of), sc.sensors.end_substations)
        c.ends = [int(supply_of[j]) for j in far]
    return HeatNetwork(net, circuits, design, g)
