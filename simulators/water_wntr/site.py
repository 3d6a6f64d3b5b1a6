"""The utility's site: network, DMAs, instruments and the design day, all independent of the seed.

The design day (an average Monday from LeakDB's pattern, hourly, no noise, no events) tells which
way water crosses each DMA boundary, which node is critical and what pressures and flows are normal,
so the catalog stays the same whatever seed, duration or events a run uses.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import wntr

from sentinel.catalog import Sensor
from simulators.water_wntr import hydraulics
from simulators.water_wntr.demands import leakdb_model
from simulators.water_wntr.districts import District, base_demand, build_districts, zone_nodes
from simulators.water_wntr.hydraulics import Hydraulics
from simulators.water_wntr.network import resolve_network
from simulators.water_wntr.placement import Channel, place_sensors
from simulators.water_wntr.scenario import WntrScenario


@dataclass
class Site:
    inp: Path
    wn: wntr.network.WaterNetworkModel  # as loaded; runs work on fresh copies
    districts: list[District]
    design: Hydraulics
    sensors: list[Sensor]
    channels: list[Channel]

    def district(self, zone: str) -> District:
        for d in self.districts:
            if d.name == zone:
                return d
        raise ValueError(f"unknown zone {zone!r}; zones are {', '.join(d.name for d in self.districts)}")

    def zone_of(self, node: str) -> str | None:
        return next((d.name for d in self.districts if node in d.nodes), None)

    def fresh_model(self) -> wntr.network.WaterNetworkModel:
        return wntr.network.WaterNetworkModel(str(self.inp))

    def mean_demand_m3h(self, zone: str, multiplier: float = 1.0) -> float:
        """The zone's mean consumption: base demands (the pattern averages about 1)."""
        return 3600.0 * multiplier * sum(base_demand(self.wn, n) for n in self.district(zone).nodes)

    def mean_pressure(self, nodes: list[str]) -> float:
        return float(self.design.pressure[:, self.design.node_cols(nodes)].mean())

    def sensor_ids(self, zone: str, quantity: str | None = None) -> list[str]:
        return [s.sensor_id for s in self.sensors if s.zone == zone and quantity in (None, s.quantity)]


def design_day(inp: Path, sc: WntrScenario) -> Hydraulics:
    """24 hourly states of an average Monday (LeakDB's mean weekly shape, no randomness)."""
    wn = wntr.network.WaterNetworkModel(str(inp))
    week, _ = leakdb_model()
    hours = np.arange(24) * 3600.0
    mult = np.clip(1.0 + sc.demand.variation * week(hours), 0.0, None) * sc.demand.multiplier
    wn.add_pattern("DESIGN", mult.tolist())
    for _, j in wn.junctions():
        for d in j.demand_timeseries_list:
            d.pattern_name = "DESIGN"
    hydraulics.configure(wn, 24, 3600.0, sc.demand.required_pressure_m, sc.demand.minimum_pressure_m)
    with tempfile.TemporaryDirectory(prefix="sentinel-wntr-") as tmp:
        path = Path(tmp) / "design.inp"
        hydraulics.write_inp(wn, path)
        return hydraulics.run(path, label="design day")


def build_site(sc: WntrScenario) -> Site:
    inp = resolve_network(sc.network)
    wn = wntr.network.WaterNetworkModel(str(inp))
    zones = zone_nodes(wn, sc.districts)
    design = design_day(inp, sc)
    mean_flow = {name: float(design.flow[:, i].mean()) for i, name in enumerate(design.links)}
    districts = build_districts(wn, zones, mean_flow)
    sensors, channels = place_sensors(sc, wn, districts, design)
    return Site(inp, wn, districts, design, sensors, channels)
