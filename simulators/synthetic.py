"""generate(scenario) -> SimResult: catalog, columnar readings in each sensor's own unit, event labels.

Per sensor: timestamps on its reporting grid (plus optional jitter) -> zone physics at those times ->
measurement noise -> conversion to the sensor's unit -> quantisation to its resolution -> sensor faults
(stuck, dropout) -> random loss. All numpy, one vector per sensor; every random draw comes from a
generator keyed by (seed, purpose, name), so output is bit-for-bit reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sentinel.catalog import Catalog, Sensor
from sentinel.readings import Batch
from sentinel.units import conversion
from simulators.events import NS, EventPlan, LabelledEvent, plan_events
from simulators.layout import ZoneLayout, build_layout, decimals_for
from simulators.networks import GasZone, HeatZone, WaterZone, ZoneModel
from simulators.physics import LocalClock, inside, rng_for
from simulators.scenario import Scenario


@dataclass(frozen=True)
class Readings:
    """Columnar readings sorted by time, then catalog index; values in each sensor's own unit."""

    time_ns: np.ndarray  # int64, UTC ns since epoch, whole seconds
    sensor: np.ndarray  # int32 index into SimResult.catalog
    value: np.ndarray  # float64, quantised to the sensor's resolution

    def __len__(self) -> int:
        return len(self.time_ns)

    @property
    def sensor_id(self) -> np.ndarray:
        """Alias of `sensor` (the catalog index), for readers who think of it as the sensor id column."""
        return self.sensor


@dataclass(frozen=True)
class SimResult:
    scenario: Scenario
    catalog: list[Sensor]
    readings: Readings
    events: list[LabelledEvent]
    decimals: tuple[int, ...]  # per catalog index: decimal places the sensor reports

    def sensor_catalog(self) -> Catalog:
        return Catalog.from_sensors(self.catalog)

    def index(self, sensor_id: str) -> int:
        return next(i for i, s in enumerate(self.catalog) if s.sensor_id == sensor_id)

    def series(self, sensor_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(time_ns, value) of one sensor, time-ordered."""
        sel = self.readings.sensor == self.index(sensor_id)
        return self.readings.time_ns[sel], self.readings.value[sel]

    def to_batch(self) -> Batch:
        """The readings as the engine sees them after ingest: canonical units, good quality."""
        cat = self.sensor_catalog()
        r = self.readings
        return Batch.of(r.sensor, r.time_ns, cat.to_canonical(r.sensor, r.value))


def _zone_model(sc: Scenario, lay: ZoneLayout, plans: list[EventPlan], clock: LocalClock) -> ZoneModel:
    rng = rng_for(sc.seed, "zone", lay.zone)
    if lay.network == "water" and sc.water is not None:
        return WaterZone(lay, plans, clock, sc.water, rng, sc.duration)
    if lay.network == "heat" and sc.heat is not None:
        return HeatZone(lay, plans, clock, sc.heat, rng, sc.duration)
    if sc.gas is None:
        raise AssertionError(f"zone {lay.zone} has no network spec")
    return GasZone(lay, plans, clock, sc.gas, rng, sc.duration)


def _timestamps(sc: Scenario, sensor: Sensor) -> np.ndarray:
    """Whole seconds from the start: the reporting grid, each reading late by 0..jitter_s seconds."""
    t = np.round(np.arange(0.0, sc.duration, sensor.interval_s)).astype(np.int64)
    if sc.jitter_s:
        t = t + rng_for(sc.seed, "jitter", sensor.sensor_id).integers(0, sc.jitter_s + 1, len(t))
        t = t[t < sc.duration]
    return t


def _quantise(raw: np.ndarray, decimals: int) -> np.ndarray:
    """Round to the sensor's resolution so that printing `decimals` places and parsing back is exact."""
    f = 10.0**decimals
    return np.rint(raw * f) / f


def _apply_faults(t: np.ndarray, value: np.ndarray, keep: np.ndarray, faults: list[EventPlan]) -> None:
    """Stuck: every reading in the window repeats the last value reported before it. Dropout: none sent."""
    for p in faults:
        assert p.start_s is not None
        win = inside(t, p.start_s, p.end_s)
        if p.kind == "sensor_stuck":
            before = np.flatnonzero(keep & (t < p.start_s))
            src = before[-1] if len(before) else np.flatnonzero(win)[0]
            value[win] = value[src]
            p.magnitude = float(value[src])
        elif p.kind == "sensor_dropout":
            keep &= ~win


def generate(scenario: Scenario) -> SimResult:
    """Simulate the scenario; same scenario (seed included) -> identical arrays and labels."""
    sc = scenario
    layouts = build_layout(sc)
    plans = plan_events(sc, layouts)
    start_s = int(sc.start.timestamp())
    clock = LocalClock(float(start_s), sc.utc_offset_h)
    catalog: list[Sensor] = []
    decimals: list[int] = []
    times, sensors, values = [], [], []
    models: dict[str, ZoneModel] = {}
    for lay in layouts:
        zone_plans = [p for p in plans if p.zone == lay.zone]
        model = models[lay.zone] = _zone_model(sc, lay, zone_plans, clock)
        for sensor, (channel, number) in zip(lay.sensors, lay.channels, strict=True):
            idx = len(catalog)
            catalog.append(sensor)
            dec = decimals_for(sensor.quantity, sensor.unit)
            decimals.append(dec)
            t = _timestamps(sc, sensor)
            z = rng_for(sc.seed, "noise", sensor.sensor_id).standard_normal(len(t))
            canonical = model.measure(channel, number, t.astype(np.float64), z)
            scale, offset = conversion(sensor.quantity, sensor.unit)
            value = _quantise((canonical - offset) / scale, dec)
            keep = rng_for(sc.seed, "loss", sensor.sensor_id).random(len(t)) >= sc.missing_rate
            _apply_faults(t, value, keep, [p for p in zone_plans if p.sensor_id == sensor.sensor_id
                                           and p.kind in ("sensor_stuck", "sensor_dropout")])
            times.append(t[keep])
            values.append(value[keep])
            sensors.append(np.full(int(keep.sum()), idx, dtype=np.int32))
    t_all = np.concatenate(times)
    s_all = np.concatenate(sensors)
    order = np.lexsort((s_all, t_all))
    readings = Readings((t_all[order] + start_s) * NS, s_all[order], np.concatenate(values)[order])
    events = []
    for n, p in enumerate(plans, start=1):
        if p.kind == "sensor_stuck":
            unit = catalog[next(i for i, s in enumerate(catalog) if s.sensor_id == p.sensor_id)].unit
            p.description = f"{p.sensor_id} repeats {p.magnitude:g} {unit} (frozen transmitter)"
        elif p.kind == "sensor_dropout":
            p.description = f"{p.sensor_id} sends nothing (battery / comms failure)"
        else:
            p.description = models[p.zone].describe(p)
        events.append(p.label(f"EV{n:03d}", start_s))
    return SimResult(sc, catalog, readings, events, tuple(decimals))
