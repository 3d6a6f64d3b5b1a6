"""The gas grid as a utility runs it: a pandapipes network cut into districts, each fed through its own
regulator station, with loggers at the far ends and methane detectors in spaces next to the mains.

Placement is a pure function of the network and the scenario's counts (never of the seed): a utility's
instruments do not move between runs, so two seeds give the same catalog.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
import numpy as np
import pandapipes as pp
import pandapipes.networks as ppn

from simulators.gas_pandapipes.scenario import GasScenario
from simulators.pipes_common import farthest_first, pipe_graph, voronoi


def _schutterwald(sc: GasScenario) -> pp.pandapipesNet:
    """Schutterwald (Baden, DE): ~10 km of PE mains at 1 bar, ~1,500 houses on service lines (pandapipes
    example, Kisse et al. 2020); service lines longer than the scenario's limit are taken out."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ppn.schutterwald_gas(include_houses=True, max_length_house_conn_m=sc.house_connection_max_m)


NETWORKS = {"schutterwald": _schutterwald}


def load_network(sc: GasScenario) -> pp.pandapipesNet:
    """The network by name or .json path, reduced to the part connected to its infeed."""
    if sc.network.lower().endswith(".json"):
        if not Path(sc.network).is_file():
            raise FileNotFoundError(f"gas network file {sc.network} not found")
        net = pp.from_json(sc.network)
    elif sc.network.lower() in NETWORKS:
        net = NETWORKS[sc.network.lower()](sc)
    else:
        raise ValueError(f"unknown gas network {sc.network!r}; use {', '.join(NETWORKS)} or a pandapipes .json")
    if not net.fluid.is_gas:
        raise ValueError(f"network {sc.network!r} carries {net.fluid.name}, not a gas")
    if not len(net.ext_grid) or not len(net.sink):
        raise ValueError(f"network {sc.network!r} needs an infeed (ext_grid) and consumers (sinks)")
    g = pipe_graph(net)
    infeed = int(net.ext_grid.junction.iloc[0])
    keep = nx.node_connected_component(g, infeed)
    cut = [j for j in net.junction.index if j not in keep]
    if cut:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pp.toolbox.drop_junctions(net, cut)
    net.junction["tfluid_k"] = 273.15 + sc.gas_temperature_c
    return net


@dataclass
class District:
    """One district: every junction in it, the houses (sink rows) it feeds, and its instruments."""

    name: str
    regulator: int  # junction where the regulator station's outlet feeds the district
    junctions: list[int]
    sinks: np.ndarray  # row labels of net.sink
    ends: list[int] = field(default_factory=list)  # end-of-line logger junctions
    spaces: list[int] = field(default_factory=list)  # junctions next to methane-monitored spaces
    space_types: list[str] = field(default_factory=list)


@dataclass
class GasNetwork:
    net: pp.pandapipesNet  # boundary pipes closed, no ext_grid yet (hydraulics adds the regulators)
    districts: list[District]
    graph: nx.Graph  # operational: in-service pipes only
    trench: nx.Graph  # physical: every pipe, for gas migration distances
    mains: set[int]  # junctions without a house on them
    closed_pipes: list[int]

    def district(self, name: str) -> District:
        return next(d for d in self.districts if d.name == name)

    def junction(self, name: str) -> int:
        hits = self.net.junction.index[self.net.junction.name.astype(str) == name]
        if not len(hits):
            raise ValueError(f"no junction named {name!r} in the gas network")
        return int(hits[0])


def _seeds(g: nx.Graph, net: pp.pandapipesNet, mains: list[int], n: int, infeed: int) -> list[int]:
    """Regulator sites: the network's own infeed plus n-1 spread out, then each moved (a few Lloyd rounds)
    to the mains junction nearest its cell's demand-weighted centre, so districts come out balanced."""
    seeds = [infeed, *farthest_first(g, [infeed], [m for m in mains if m != infeed], n - 1)]
    xy = net.junction_geodata[["x", "y"]]
    weight = net.sink.groupby("junction").mdot_kg_per_s.sum()
    main_set = set(mains)
    for _ in range(6):
        owner = voronoi(g, seeds)
        moved = []
        for s in seeds:
            cell = [j for j, o in owner.items() if o == s]
            w = np.array([weight.get(j, 0.0) for j in cell]) + 1e-9
            cx, cy = np.average(xy.loc[cell].to_numpy(), axis=0, weights=w)
            cands = [j for j in cell if j in main_set]
            d2 = ((xy.loc[cands].x - cx) ** 2 + (xy.loc[cands].y - cy) ** 2).to_numpy()
            moved.append(int(cands[int(np.argmin(d2))]))
        if moved == seeds:
            break
        seeds = moved
    return seeds


def build_network(sc: GasScenario) -> GasNetwork:
    net = load_network(sc)
    trench = pipe_graph(net, closed_too=True)
    g = pipe_graph(net)
    houses = set(net.sink.junction.astype(int).tolist())
    mains = sorted(j for j in g.nodes if j not in houses)
    infeed = int(net.ext_grid.junction.iloc[0])
    if isinstance(sc.districts, int):
        seeds = _seeds(g, net, mains, sc.districts, infeed)
    else:
        seeds = [GasNetwork(net, [], g, trench, set(mains), []).junction(n) for n in sc.districts]
    owner = voronoi(g, seeds)
    pipes = net.pipe[net.pipe.in_service.astype(bool)]
    closed = [int(i) for i, f, t in zip(pipes.index, pipes.from_junction, pipes.to_junction, strict=True)
              if owner.get(int(f)) != owner.get(int(t))]
    net.pipe.loc[closed, "in_service"] = False  # district valves on the boundary, kept shut
    net.ext_grid.drop(net.ext_grid.index, inplace=True)
    g = pipe_graph(net)
    districts = []
    type_names = list(sc.dispersion.types)
    for i, seed in enumerate(seeds, start=1):
        cell = sorted(j for j, o in owner.items() if o == seed)
        cell_mains = [j for j in cell if j not in houses]
        d = District(f"GD{i}", seed, cell, net.sink.index[net.sink.junction.isin(cell)].to_numpy())
        d.ends = farthest_first(g, [seed], [j for j in cell_mains if j != seed], sc.sensors.end_loggers)
        d.spaces = farthest_first(g, [seed, *d.ends], [j for j in cell_mains if j != seed and j not in d.ends],
                                  sc.sensors.spaces)
        d.space_types = [type_names[k % len(type_names)] for k in range(len(d.spaces))]
        if not len(d.sinks):
            raise ValueError(f"district {d.name} has no consumers; use fewer districts")
        districts.append(d)
    return GasNetwork(net, districts, g, trench, set(mains), closed)
