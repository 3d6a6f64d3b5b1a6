"""The heating catalog, per circuit H-<LOOPn>-: PS01/PR01 plant supply/return pressure, TS01/TR01 plant
supply/return temperature, FS01 circulation flow, MU01 make-up flow (role makeup), and PS/PR/TS/TR 02..
at the farthest substations (their supply inlet and return outlet)."""

from __future__ import annotations

from dataclasses import dataclass

from sentinel.catalog import Sensor
from simulators.heat_pandapipes.network import HeatNetwork
from simulators.heat_pandapipes.scenario import HeatScenario
from simulators.pipes_common import to_latlon


@dataclass(frozen=True)
class Channel:
    """kind: pressure|supply_t|temperature|return_out|circulation|makeup; `consumer` is the heat_consumer
    row for a substation's return outlet."""

    kind: str
    circuit: int
    junction: int
    consumer: int = -1


def build_catalog(sc: HeatScenario, hn: HeatNetwork) -> tuple[list[Sensor], list[Channel]]:
    net = hn.net
    geo = net.junction_geodata
    lat, lon = to_latlon(geo.x.to_numpy(), geo.y.to_numpy(), sc.center_lat, sc.center_lon)
    where = {int(j): (float(a), float(b)) for j, a, b in zip(geo.index, lat, lon, strict=True)}
    s = sc.sensors
    sensors: list[Sensor] = []
    channels: list[Channel] = []

    def add(code: str, quantity: str, unit: str, role: str, ch: Channel) -> None:
        la, lo = where[ch.junction]
        zone = hn.circuits[ch.circuit].name
        sensors.append(Sensor(sensor_id=f"H-{zone}-{code}", network="heat", zone=zone, quantity=quantity, unit=unit,
                              role=role, interval_s=s.interval, lat=la, lon=lo))
        channels.append(ch)

    for i, c in enumerate(hn.circuits):
        pu, mu = s.pressure_units[i % len(s.pressure_units)], s.makeup_units[i % len(s.makeup_units)]
        add("PS01", "pressure", pu, "supply", Channel("pressure", i, c.supply_plant))
        add("PR01", "pressure", pu, "return", Channel("pressure", i, c.return_plant))
        add("TS01", "temperature", "degC", "supply", Channel("supply_t", i, c.supply_plant))
        add("TR01", "temperature", "degC", "return", Channel("temperature", i, c.return_plant))
        add("FS01", "flow", "m3/h", "supply", Channel("circulation", i, c.supply_plant))
        add("MU01", "flow", mu, "makeup", Channel("makeup", i, c.return_plant))
        for k, row in enumerate(c.ends, start=2):
            js, jr = int(net.heat_consumer.from_junction[row]), int(net.heat_consumer.to_junction[row])
            add(f"PS{k:02d}", "pressure", pu, "supply", Channel("pressure", i, js))
            add(f"PR{k:02d}", "pressure", pu, "return", Channel("pressure", i, jr))
            add(f"TS{k:02d}", "temperature", "degC", "supply", Channel("temperature", i, js))
            add(f"TR{k:02d}", "temperature", "degC", "return", Channel("return_out", i, jr, row))
    return sensors, channels
