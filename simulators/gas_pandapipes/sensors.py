"""The gas catalog: per district G-<GDn>-PI01 (regulator outlet pressure, inlet), FI01 (regulator flow,
inlet, Nm3/h), P01.. (end-of-line pressure loggers) and M01.. (%LEL in a space, role `space`, tagged
with its kind). Positions are the network's own, moved to the scenario's centre."""

from __future__ import annotations

from dataclasses import dataclass

from sentinel.catalog import Sensor
from simulators.gas_pandapipes.network import GasNetwork
from simulators.gas_pandapipes.scenario import GasScenario
from simulators.pipes_common import to_latlon


@dataclass(frozen=True)
class Channel:
    """What a sensor measures: `kind` outlet|inflow|pressure|methane, its district and junction, and
    for methane its index among all spaces."""

    kind: str
    district: int
    junction: int
    space: int = -1


def build_catalog(sc: GasScenario, gn: GasNetwork) -> tuple[list[Sensor], list[Channel]]:
    geo = gn.net.junction_geodata
    lat, lon = to_latlon(geo.x.to_numpy(), geo.y.to_numpy(), sc.center_lat, sc.center_lon)
    where = {int(j): (float(a), float(b)) for j, a, b in zip(geo.index, lat, lon, strict=True)}
    s = sc.sensors
    sensors: list[Sensor] = []
    channels: list[Channel] = []
    n_space = 0

    def add(code: str, quantity: str, unit: str, role: str, interval: float, ch: Channel, tags: tuple = ()) -> None:
        la, lo = where[ch.junction]
        sensors.append(Sensor(sensor_id=f"G-{gn.districts[ch.district].name}-{code}", network="gas",
                              zone=gn.districts[ch.district].name, quantity=quantity, unit=unit, role=role,
                              interval_s=interval, lat=la, lon=lo, tags=tags))
        channels.append(ch)

    for i, d in enumerate(gn.districts):
        units = s.pressure_units
        add("PI01", "pressure", units[0], "inlet", s.station_interval, Channel("outlet", i, d.regulator))
        add("FI01", "flow", "m3/h", "inlet", s.station_interval, Channel("inflow", i, d.regulator))
        for k, j in enumerate(d.ends, start=1):
            add(f"P{k:02d}", "pressure", units[k % len(units)], "internal", s.logger_interval,
                Channel("pressure", i, j))
        for k, (j, kind) in enumerate(zip(d.spaces, d.space_types, strict=True), start=1):
            add(f"M{k:02d}", "gas_concentration", "%LEL", "space", s.methane_interval,
                Channel("methane", i, j, n_space), (kind,))
            n_space += 1
    return sensors, channels

