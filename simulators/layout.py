"""Which sensors exist: ids, zones, roles, units, intervals and positions, derived from a scenario.

Naming: zones are DMA<n> (water), LOOP<n> (heat), GD<n> (gas); sensor ids are
<W|H|G>-<zone>-<code><nn>, e.g. W-DMA1-P01. Codes: FI inlet flow, FO outlet flow, P pressure logger
(water); PS/PR supply/return pressure, TS/TR supply/return temperature, FS circulation flow, MU make-up
flow (heat); PI station pressure, FI station flow, M methane %LEL in a manhole (gas).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sentinel.catalog import Sensor
from simulators.physics import rng_for
from simulators.scenario import Scenario

# Reporting resolution (decimal places) per unit: values are quantised to this, and files print exactly it.
_DECIMALS: dict[tuple[str, str], int] = {
    ("pressure", "m"): 2, ("pressure", "mh2o"): 2, ("pressure", "m_head"): 2, ("pressure", "kpa"): 1,
    ("pressure", "mpa"): 4, ("pressure", "bar"): 3, ("pressure", "mbar"): 0, ("pressure", "pa"): 0,
    ("pressure", "psi"): 2,
    ("flow", "m3/h"): 2, ("flow", "l/s"): 3, ("flow", "l/min"): 1, ("flow", "m3/d"): 1, ("flow", "m3/s"): 5,
    ("temperature", "degc"): 2, ("temperature", "c"): 2, ("temperature", "°c"): 2, ("temperature", "k"): 2,
    ("temperature", "degf"): 2,
    ("gas_concentration", "%lel"): 1, ("gas_concentration", "lel%"): 1, ("gas_concentration", "%vol"): 3,
    ("gas_concentration", "ppm"): 0,
}
PRESSURE_CHANNELS = ("pressure", "supply_p", "return_p", "station_p")


def decimals_for(quantity: str, unit: str) -> int:
    """Decimal places a sensor of this unit reports (6 for units we have no convention for)."""
    return _DECIMALS.get((quantity, unit.strip().lower()), 6)


@dataclass
class ZoneLayout:
    """The sensors of one zone; `channels[i]` says what sensors[i] measures in the zone model."""

    network: str
    zone: str
    sensors: list[Sensor] = field(default_factory=list)
    channels: list[tuple[str, int]] = field(default_factory=list)  # (channel, number within channel)
    xy_m: list[tuple[float, float]] = field(default_factory=list)  # metres east/north of the zone centre

    def add(self, sensor: Sensor, channel: str, number: int, xy: tuple[float, float]) -> None:
        self.sensors.append(sensor)
        self.channels.append((channel, number))
        self.xy_m.append(xy)

    def ids(self, *channels: str) -> list[str]:
        return [s.sensor_id for s, (c, _) in zip(self.sensors, self.channels, strict=True)
                if not channels or c in channels]

    def interval_of(self, *channels: str) -> float:
        """Longest reporting interval among the given channels (0 if none)."""
        return max((s.interval_s for s, (c, _) in zip(self.sensors, self.channels, strict=True)
                    if c in channels), default=0.0)


def _position(rng: np.random.Generator, radius_m: float = 1000.0) -> tuple[float, float]:
    r = radius_m * math.sqrt(rng.uniform())
    a = rng.uniform(0, 2 * math.pi)
    return r * math.cos(a), r * math.sin(a)


@dataclass
class _Builder:
    """Adds sensors to one zone, scattering them within ~1 km of the zone centre."""

    sc: Scenario
    lay: ZoneLayout
    rng: np.random.Generator
    cx: float
    cy: float

    def add(self, code: str, n: int, channel: str, number: int, quantity: str, unit: str, role: str,
            interval: float) -> None:
        x, y = _position(self.rng)
        lat = self.sc.center_lat + (self.cy + y) / 111_320.0
        lon = self.sc.center_lon + (self.cx + x) / (111_320.0 * math.cos(math.radians(self.sc.center_lat)))
        net, zone = self.lay.network, self.lay.zone
        sensor = Sensor.model_validate({
            "sensor_id": f"{net[0].upper()}-{zone}-{code}{n:02d}", "network": net, "zone": zone,
            "quantity": quantity, "unit": unit, "role": role, "interval_s": interval,
            "lat": round(lat, 6), "lon": round(lon, 6)})
        self.lay.add(sensor, channel, number, (x, y))


def build_layout(sc: Scenario) -> list[ZoneLayout]:
    """All zones and their sensors in catalog order (water, heat, gas; zones in number order)."""
    iv = sc.intervals
    layouts: list[ZoneLayout] = []
    row = {"water": 0.0, "heat": 4000.0, "gas": -4000.0}
    zones = sc.zones()
    for net, zone in zones:
        n_net = sum(1 for n, _ in zones if n == net)
        z = int("".join(ch for ch in zone if ch.isdigit()))
        lay = ZoneLayout(net, zone)
        b = _Builder(sc, lay, rng_for(sc.seed, "layout", zone), (z - (n_net + 1) / 2) * 3000.0, row[net])
        if net == "water" and sc.water is not None:
            w = sc.water
            for j in range(w.inlets):
                b.add("FI", j + 1, "inlet", j, "flow", w.flow_units[j % len(w.flow_units)], "inlet",
                      iv.water_flow)
            for j in range(w.outlets):
                b.add("FO", j + 1, "outlet", j, "flow", w.flow_units[(w.inlets + j) % len(w.flow_units)],
                      "outlet", iv.water_flow)
            for i in range(w.pressure_loggers):
                b.add("P", i + 1, "pressure", i, "pressure", w.pressure_units[i % len(w.pressure_units)],
                      "internal", iv.water_pressure)
        elif net == "heat" and sc.heat is not None:
            h, k = sc.heat, z - 1
            pu, fu, mu = (h.pressure_units[k % len(h.pressure_units)], h.flow_units[k % len(h.flow_units)],
                          h.makeup_units[k % len(h.makeup_units)])
            b.add("PS", 1, "supply_p", 0, "pressure", pu, "supply", iv.heat)
            b.add("PR", 1, "return_p", 0, "pressure", pu, "return", iv.heat)
            b.add("TS", 1, "supply_t", 0, "temperature", "degC", "supply", iv.heat)
            b.add("TR", 1, "return_t", 0, "temperature", "degC", "return", iv.heat)
            b.add("FS", 1, "flow", 0, "flow", fu, "supply", iv.heat)
            b.add("MU", 1, "makeup", 0, "flow", mu, "makeup", iv.heat)
        elif net == "gas" and sc.gas is not None:
            g, k = sc.gas, z - 1
            b.add("PI", 1, "station_p", 0, "pressure", g.pressure_units[k % len(g.pressure_units)], "inlet",
                  iv.gas_station)
            b.add("FI", 1, "station_f", 0, "flow", "m3/h", "inlet", iv.gas_station)
            for i in range(g.manholes):
                b.add("M", i + 1, "methane", i, "gas_concentration",
                      g.methane_units[i % len(g.methane_units)], "space", iv.gas_methane)
        layouts.append(lay)
    return layouts
