"""Instruments per DMA, placed the way a utility would place them.

- a flow meter on every open boundary link (role inlet/outlet, see districts.py);
- pressure loggers: P01 next to the main inlet (the zone's reference pressure), P02 at the critical
  node (lowest design-day pressure: the first customer to lose service), the rest spread over the
  DMA by farthest-point sampling on pipe length, so every part of the zone has a logger nearby;
- a level sensor on every tank that feeds the DMA.

Ids follow the synthetic simulator: W-<zone>-FI01 (inlet), FO01 (outlet), P01 (pressure), L01 (level);
tags say which node or link the instrument sits on (`node:n123`, `link:p45`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import networkx as nx
import numpy as np
import wntr

from sentinel.catalog import Sensor
from simulators.water_wntr.districts import District
from simulators.water_wntr.hydraulics import Hydraulics
from simulators.water_wntr.scenario import WntrScenario


@dataclass(frozen=True)
class Channel:
    """What a catalog entry reads: `sign` * flow of a link, pressure of a node, or a tank's level."""

    kind: Literal["flow", "pressure", "level"]
    element: str
    sign: float = 1.0

    @property
    def instrument(self) -> str:
        """The physical instrument; a meter shared by two DMAs is one instrument with one noise."""
        return f"{self.kind}:{self.element}"


class _Geo:
    """Network coordinates (metres times coord_scale_m) to lat/lon around the scenario's centre."""

    def __init__(self, sc: WntrScenario, wn: wntr.network.WaterNetworkModel) -> None:
        xy = np.array([n.coordinates for _, n in wn.nodes()], dtype=np.float64)
        self.cx, self.cy = xy.mean(axis=0) if len(xy) else (0.0, 0.0)
        self.sc, self.wn = sc, wn

    def at(self, *nodes: str) -> tuple[float, float]:
        x, y = np.mean([self.wn.get_node(n).coordinates for n in nodes], axis=0)
        dx, dy = (x - self.cx) * self.sc.coord_scale_m, (y - self.cy) * self.sc.coord_scale_m
        lat = self.sc.center_lat + dy / 111_320.0
        lon = self.sc.center_lon + dx / (111_320.0 * math.cos(math.radians(self.sc.center_lat)))
        return round(lat, 6), round(lon, 6)


def length_graph(wn: wntr.network.WaterNetworkModel) -> nx.Graph:
    g = nx.Graph()
    for name, link in wn.links():
        length = float(getattr(link, "length", 1.0) or 1.0)
        g.add_edge(link.start_node_name, link.end_node_name, length=length, link=name)
    return g


def logger_nodes(d: District, wn: wntr.network.WaterNetworkModel, design: Hydraulics, count: int,
                 graph: nx.Graph) -> list[tuple[str, str]]:
    """(node, why) for the zone's pressure loggers: inlet, critical node, then spread out."""
    members = set(d.nodes)
    chosen: list[tuple[str, str]] = []
    main = max(d.inlets(), key=lambda m: abs(float(design.flow[:, design.link(m.link)].mean())))
    link = wn.get_link(main.link)
    inlet = link.end_node_name if link.end_node_name in members else link.start_node_name
    chosen.append((inlet, "inlet"))
    low = design.pressure[:, design.node_cols(d.nodes)].min(axis=0)
    critical = d.nodes[int(np.argmin(low))]
    if critical != inlet:
        chosen.append((critical, "critical"))
    dist = {n: math.inf for n in d.nodes}
    for node, _ in chosen:
        reach = nx.single_source_dijkstra_path_length(graph, node, weight="length")
        dist = {n: min(dist[n], reach.get(n, math.inf)) for n in dist}
    while len(chosen) < min(count, len(d.nodes)):
        node = max(d.nodes, key=lambda n: (dist[n] if dist[n] < math.inf else 1e12, n))
        if dist[node] == 0:
            break
        chosen.append((node, "spread"))
        reach = nx.single_source_dijkstra_path_length(graph, node, weight="length")
        dist = {n: min(dist[n], reach.get(n, math.inf)) for n in dist}
    return chosen[:count]


def place_sensors(sc: WntrScenario, wn: wntr.network.WaterNetworkModel, districts: list[District],
                  design: Hydraulics) -> tuple[list[Sensor], list[Channel]]:
    """The catalog (zone by zone: inlets, outlets, loggers, levels) and what each entry reads."""
    geo, graph, plan = _Geo(sc, wn), length_graph(wn), sc.sensors
    sensors: list[Sensor] = []
    channels: list[Channel] = []
    meter_unit: dict[str, str] = {}

    def add(sensor_id: str, zone: str, quantity: str, unit: str, role: str, interval: float,
            where: tuple[str, ...], tags: tuple[str, ...], channel: Channel) -> None:
        lat, lon = geo.at(*where)
        sensors.append(Sensor(sensor_id=sensor_id, network="water", zone=zone, quantity=quantity, unit=unit,
                              role=role, interval_s=interval, lat=lat, lon=lon, tags=tags))
        channels.append(channel)

    for d in districts:
        n_in = n_out = 0
        for m in d.meters:
            unit = meter_unit.setdefault(m.link, plan.flow_units[len(meter_unit) % len(plan.flow_units)])
            link = wn.get_link(m.link)
            if m.role == "inlet":
                n_in += 1
                code = f"FI{n_in:02d}"
            else:
                n_out += 1
                code = f"FO{n_out:02d}"
            tags = (f"link:{m.link}",) + ((f"shared:{m.other}",) if m.other else ())
            add(f"W-{d.name}-{code}", d.name, "flow", unit, m.role, plan.flow_interval,
                (link.start_node_name, link.end_node_name), tags, Channel("flow", m.link, m.sign))
        for i, (node, why) in enumerate(logger_nodes(d, wn, design, plan.loggers_per_zone, graph)):
            unit = plan.pressure_units[i % len(plan.pressure_units)]
            add(f"W-{d.name}-P{i + 1:02d}", d.name, "pressure", unit, "internal", plan.pressure_interval,
                (node,), (f"node:{node}", why), Channel("pressure", node))
        for i, tank in enumerate(d.tanks):
            add(f"W-{d.name}-L{i + 1:02d}", d.name, "level", "m", "internal", plan.level_interval, (tank,),
                (f"node:{tank}", "tank"), Channel("level", tank))
    return sensors, channels
