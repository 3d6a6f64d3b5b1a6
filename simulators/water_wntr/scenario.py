"""The scenario of a physics-based water run: one YAML with `engine: wntr` reproduces a data set.

Everything the hydraulics depend on is here: the network (.inp path or a known name), time grid,
DMAs, sensors, the demand model, benign anomalies and the events. Fields an event leaves out (zone,
node, start, duration, size) are drawn from the seed, like the synthetic scenarios do.
"""

from __future__ import annotations

import datetime as _dt
from datetime import datetime
from pathlib import Path
from typing import Annotated, Final, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from simulators.scenario import Duration, UtcStart, _check_units, _start_or_offset

WntrEventKind = Literal["burst", "slow_leak", "pressure_surge", "low_pressure", "sensor_stuck", "sensor_dropout",
                        "sensor_drift", "sensor_offset"]
WNTR_EVENT_KINDS: Final = ("burst", "slow_leak", "pressure_surge", "low_pressure", "sensor_stuck",
                           "sensor_dropout", "sensor_drift", "sensor_offset")
FAULT_KINDS: Final = ("sensor_stuck", "sensor_dropout", "sensor_drift", "sensor_offset")
LEAK_KINDS: Final = ("burst", "slow_leak")
Size = Literal["small", "medium", "large"]
Start = Annotated[float | datetime | None, BeforeValidator(_start_or_offset)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Districts(_Strict):
    """DMAs: `auto: N` partitions the network, `zones: {name: [junction ids]}` takes them as given.

    Junctions outside every listed zone are unmetered trunk mains; pipes from them into a zone get inlet
    (or outlet) meters like any other zone boundary.
    """

    auto: int | None = Field(default=None, ge=1, le=50)
    zones: dict[str, list[str]] | None = None

    @model_validator(mode="after")
    def _one(self) -> Districts:
        if (self.auto is None) == (self.zones is None):
            raise ValueError("districts: give either auto: N or zones: {name: [junction ids]}")
        return self


class SensorPlan(_Strict):
    """What a utility installs per DMA and how its instruments behave."""

    loggers_per_zone: int = Field(default=4, ge=1, le=50)
    flow_interval: Duration = 300.0
    pressure_interval: Duration = 300.0
    level_interval: Duration = 300.0
    flow_units: list[str] = ["m3/h", "L/s"]  # cycled over boundary links
    pressure_units: list[str] = ["m", "kPa"]  # cycled over loggers
    pressure_noise_m: float = Field(default=0.05, ge=0)
    flow_noise_fraction: float = Field(default=0.005, ge=0)  # of the reading, plus flow_noise_m3h
    flow_noise_m3h: float = Field(default=0.05, ge=0)
    level_noise_m: float = Field(default=0.005, ge=0)
    missing_rate: float = Field(default=0.001, ge=0.0, lt=0.5)

    @field_validator("flow_units")
    @classmethod
    def _flow(cls, v: list[str]) -> list[str]:
        return _check_units("flow", v)

    @field_validator("pressure_units")
    @classmethod
    def _pressure(cls, v: list[str]) -> list[str]:
        return _check_units("pressure", v)


class DemandModel(_Strict):
    """LeakDB's demand model: weekly and yearly Fourier series, per-node variation, daily and step noise."""

    multiplier: float = Field(default=1.0, gt=0)  # scales every base demand of the network
    variation: float = Field(default=0.75, ge=0, le=1.5)  # amplitude of the weekly pattern (LeakDB Net1)
    variation_sd: float = Field(default=0.07, ge=0)  # node-to-node spread of that amplitude
    coefficient_spread: float = Field(default=0.10, ge=0, lt=1)  # +-10 % on each Fourier coefficient, per node
    seasonal: bool = True  # the yearly component (about +-13 %, peak in July)
    daily_sd: float = Field(default=0.03, ge=0)  # day-to-day factor per DMA (weather, events)
    step_noise: float = Field(default=0.05, ge=0)  # per node and step (LeakDB: 5 %)
    required_pressure_m: float = Field(default=10.0, gt=0)  # pressure-dependent demand: full demand above
    minimum_pressure_m: float = Field(default=0.0, ge=0)  # ... and none below this


class EventSpec(_Strict):
    """One event; `size` or `magnitude` sets its strength (see MAGNITUDES in events.py)."""

    kind: WntrEventKind
    zone: str | None = None
    node: str | None = None  # leaks: the junction that leaks
    sensor_id: str | None = None  # sensor faults
    quantity: Literal["pressure", "flow"] | None = None  # sensor faults without a sensor_id
    start: Start = None
    duration: Duration | None = None
    size: Size | None = None
    magnitude: float | None = None


class AnomalySpec(_Strict):
    """Benign anomalies: real, unusual, not leaks. Labelled in anomalies.csv, never in events.csv."""

    kind: Literal["hydrant_draw", "holiday"]
    zone: str | None = None
    node: str | None = None  # hydrant_draw: where the hydrant is
    start: Start = None  # hydrant_draw
    duration: Duration | None = None  # hydrant_draw: 1-3 h if not given
    flow_m3h: float | None = Field(default=None, gt=0)  # hydrant_draw: 36-54 m3/h (10-15 L/s) if not given
    date: _dt.date | None = None  # holiday: the local date that runs on a Sunday pattern

    @model_validator(mode="after")
    def _fields(self) -> AnomalySpec:
        if self.kind == "holiday" and (self.node or self.start is not None or self.flow_m3h or self.duration):
            raise ValueError("a holiday takes only `date` (and optionally `zone`, ignored: it is city-wide)")
        if self.kind == "hydrant_draw" and self.date is not None:
            raise ValueError("a hydrant_draw takes start/duration, not date")
        return self


class WntrScenario(_Strict):
    """A reproducible physics-based water data set: same scenario (seed included) -> identical output."""

    engine: Literal["wntr"]
    name: str = "wntr"
    seed: int = Field(default=0, ge=0)
    network: str  # an .inp path (relative to the YAML) or a name: L-TOWN, Hanoi, Net1, Net3, ky4, ...
    start: UtcStart  # UTC; naive means UTC
    duration: Duration
    hydraulic_step: Duration = 300.0
    utc_offset_h: float = Field(default=8.0, ge=-14, le=14)
    center_lat: float = Field(default=31.82, ge=-90, le=90)
    center_lon: float = Field(default=117.23, ge=-180, le=180)
    coord_scale_m: float = Field(default=1.0, gt=0)  # metres per unit of the .inp coordinates
    districts: Districts = Districts(auto=3)
    sensors: SensorPlan = SensorPlan()
    demand: DemandModel = DemandModel()
    warmup: Duration | None = None  # event-free lead-in for drawn starts; default min(1 day, 20 %)
    anomalies: list[AnomalySpec] = []
    events: list[EventSpec] = []

    @model_validator(mode="after")
    def _grid(self) -> WntrScenario:
        step = self.hydraulic_step
        if step != int(step) or step < 60:
            raise ValueError("hydraulic_step must be whole seconds, at least 1 minute")
        if self.duration < step:
            raise ValueError("duration must cover at least one hydraulic step")
        return self

    @property
    def steps(self) -> int:
        """Hydraulic states simulated: one per step from 0 up to (excluding) the end."""
        return int(self.duration // self.hydraulic_step)


def load_wntr_scenario(path: str | Path) -> WntrScenario:
    """Read a scenario; a relative network path is taken relative to the YAML file."""
    path = Path(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping with engine: wntr, network, start, duration")
    net = data.get("network")
    if isinstance(net, str) and net.lower().endswith(".inp") and not Path(net).is_absolute():
        data["network"] = str((path.parent / net).resolve())
    return WntrScenario.model_validate(data)
