"""District metered areas on a real network: which junctions form each DMA and where its meters sit.

Automatic DMAs follow how utilities cut networks. Pumps and valves already separate pressure areas
(L-Town: the PRV-fed area B, the tank-fed area C), so the network is first cut there; components
without demand (a reservoir's feed main) stay unmetered trunk. Areas that need more than one DMA are
split along weak links: Louvain communities of the pipe graph, merged smallest-first into the
neighbour they share most pipes with, which keeps every DMA connected and its boundary short.

Every link that crosses a DMA boundary and is not closed gets a meter. Its role follows the
direction water flows on the design day (into the DMA: inlet; out of it: outlet), and a meter between
two DMAs is catalogued in both, once as one's outlet and once as the other's inlet, with one reading.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import wntr
from networkx.algorithms.community import louvain_communities

from simulators.water_wntr.scenario import Districts


@dataclass(frozen=True)
class Meter:
    """A boundary flow meter as one zone sees it: reading = sign * (flow from start to end node)."""

    link: str
    zone: str
    role: str  # inlet | outlet
    sign: float
    other: str | None  # the zone on the far side; None for a source, a tank or unmetered trunk


@dataclass
class District:
    name: str
    nodes: list[str]
    meters: list[Meter] = field(default_factory=list)
    tanks: list[str] = field(default_factory=list)

    def inlets(self) -> list[Meter]:
        return [m for m in self.meters if m.role == "inlet"]


def base_demand(wn: wntr.network.WaterNetworkModel, junction: str) -> float:
    """Sum of a junction's base demands over its categories, m3/s."""
    return float(sum(d.base_value for d in wn.get_node(junction).demand_timeseries_list))


def pipe_graph(wn: wntr.network.WaterNetworkModel) -> nx.Graph:
    """Junctions joined by pipes: the graph DMAs are cut from (pumps and valves are boundaries)."""
    g = nx.Graph()
    g.add_nodes_from(wn.junction_name_list)
    for name in wn.pipe_name_list:
        p = wn.get_link(name)
        if p.start_node_name in g and p.end_node_name in g:
            g.add_edge(p.start_node_name, p.end_node_name, link=name)
    return g


def _split(g: nx.Graph, demand: dict[str, float], parts: int) -> list[set[str]]:
    """`parts` connected groups of a connected graph with short boundaries (Louvain, then merging)."""
    if parts <= 1:
        return [set(g.nodes)]
    resolution = 1.0
    comms = [set(c) for c in louvain_communities(g, seed=0, resolution=resolution)]
    while len(comms) < parts and resolution < 1e4:
        resolution *= 2
        comms = [set(c) for c in louvain_communities(g, seed=0, resolution=resolution)]
    if len(comms) < parts:
        raise ValueError(f"cannot cut an area of {g.number_of_nodes()} junctions into {parts} DMAs")
    weight = {n: demand[n] + 1e-9 for n in g.nodes}  # zero-demand groups merge first
    while len(comms) > parts:
        sizes = [sum(weight[n] for n in c) for c in comms]
        small = int(np.argmin(sizes))
        label = {n: i for i, c in enumerate(comms) for n in c}
        shared = Counter(label[v] if label[u] == small else label[u] for u, v in g.edges
                         if (label[u] == small) != (label[v] == small))
        other = max(shared, key=lambda i: (shared[i], -sizes[i]))
        comms[other] |= comms[small]
        del comms[small]
    return comms


def _allocate(areas: list[set[str]], demand: dict[str, float], total: int) -> list[int]:
    """DMAs per area: at least one each, the rest by demand share (largest remainder)."""
    counts = [1] * len(areas)
    extra = max(0, total - len(areas))
    if extra:
        share = np.array([sum(demand[n] for n in a) for a in areas])
        share = share / share.sum() * total
        room = np.array([len(a) for a in areas]) - 1
        for _ in range(extra):
            gap = np.where(room > 0, share - np.array(counts), -np.inf)
            i = int(np.argmax(gap))
            counts[i] += 1
            room[i] -= 1
    return counts


def auto_zones(wn: wntr.network.WaterNetworkModel, count: int) -> dict[str, list[str]]:
    """`count` DMAs (at least one per pressure area), named DMA1.. in the .inp's junction order."""
    g = pipe_graph(wn)
    demand = {n: base_demand(wn, n) for n in g.nodes}
    tiny = max(3, g.number_of_nodes() // 100)  # a valve chamber or a feed main, not a pressure area
    areas = [c for c in nx.connected_components(g) if len(c) >= tiny and sum(demand[n] for n in c) > 0]
    groups: list[set[str]] = []
    for area, parts in zip(areas, _allocate(areas, demand, count), strict=True):
        groups += _split(g.subgraph(area).copy(), demand, parts)
    order = {n: i for i, n in enumerate(wn.junction_name_list)}
    groups.sort(key=lambda c: min(order[n] for n in c))
    return {f"DMA{i}": sorted(c, key=order.__getitem__) for i, c in enumerate(groups, start=1)}


def check_zones(wn: wntr.network.WaterNetworkModel, zones: dict[str, list[str]]) -> None:
    seen: dict[str, str] = {}
    junctions = set(wn.junction_name_list)
    for name, nodes in zones.items():
        if not nodes:
            raise ValueError(f"district {name} has no junctions")
        for n in nodes:
            if n not in junctions:
                raise ValueError(f"district {name}: {n!r} is not a junction of the network")
            if n in seen:
                raise ValueError(f"junction {n} is in both {seen[n]} and {name}")
            seen[n] = name


def zone_nodes(wn: wntr.network.WaterNetworkModel, spec: Districts) -> dict[str, list[str]]:
    if spec.zones is not None:
        check_zones(wn, spec.zones)
        return {k: list(v) for k, v in spec.zones.items()}
    assert spec.auto is not None
    return auto_zones(wn, spec.auto)


def build_districts(wn: wntr.network.WaterNetworkModel, zones: dict[str, list[str]],
                    mean_flow: dict[str, float]) -> list[District]:
    """Districts with their boundary meters; `mean_flow` (start -> end, any unit) orients the roles."""
    zone_of = {n: z for z, nodes in zones.items() for n in nodes}
    out = {z: District(z, nodes) for z, nodes in zones.items()}
    for name, link in wn.links():
        a, b = link.start_node_name, link.end_node_name
        za, zb = zone_of.get(a), zone_of.get(b)
        if za == zb or str(link.initial_status).lower() == "closed":
            continue  # inside one DMA, trunk to trunk, or a closed boundary valve
        q = mean_flow.get(name, 0.0)
        if za is not None:  # water leaving za is +q
            role, sign = ("outlet", 1.0) if q >= 0 else ("inlet", -1.0)
            out[za].meters.append(Meter(name, za, role, sign, zb))
        if zb is not None:  # water entering zb is +q
            role, sign = ("inlet", 1.0) if q >= 0 else ("outlet", -1.0)
            out[zb].meters.append(Meter(name, zb, role, sign, za))
    for tank in wn.tank_name_list:  # a tank belongs to the DMA its pipes feed (a pump only fills it)
        links = sorted(wn.get_links_for_node(tank), key=lambda n: wn.get_link(n).link_type != "Pipe")
        for name in links:
            link = wn.get_link(name)
            zone = zone_of.get(link.end_node_name if link.start_node_name == tank else link.start_node_name)
            if zone is not None:
                out[zone].tanks.append(tank)
                break
    for d in out.values():
        d.meters.sort(key=lambda m: (m.role != "inlet", m.link))
        if not d.inlets():
            raise ValueError(f"district {d.name} has no inlet: no open link carries water into it")
    return list(out.values())
