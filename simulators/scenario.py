"""Scenarios: everything a synthetic run depends on, so one YAML file (or one seed) reproduces a data set.

A scenario names the networks and their zone/sensor counts, the reporting interval of each sensor
kind, and the events to inject. Events are either explicit (kind, zone, start, duration, ...) or
`random: k` per kind, drawn from the seed; any field an explicit event leaves out is drawn too.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Final, Literal

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from sentinel.units import UnitError, conversion

EventKind = Literal["burst", "slow_leak", "pressure_surge", "low_pressure", "sensor_stuck",
                    "sensor_dropout", "gas_rise", "makeup_rise"]
EVENT_KINDS: Final[tuple[str, ...]] = ("burst", "slow_leak", "pressure_surge", "low_pressure",
                                       "sensor_stuck", "sensor_dropout", "gas_rise", "makeup_rise")

# Which networks an event kind can happen on (a burst is a water-main event, %LEL only exists on gas).
KIND_NETWORKS: Final[dict[str, tuple[str, ...]]] = {
    "burst": ("water",),
    "slow_leak": ("water",),
    "pressure_surge": ("water", "heat"),
    "low_pressure": ("water", "heat", "gas"),
    "sensor_stuck": ("water", "heat", "gas"),
    "sensor_dropout": ("water", "heat", "gas"),
    "gas_rise": ("gas",),
    "makeup_rise": ("heat",),
}

# What an event's `magnitude` means, per kind (the label carries the same number).
MAGNITUDE_MEANING: Final[dict[str, str]] = {
    "burst": "burst flow as a fraction of the zone's mean net inflow (0.10-0.40)",
    "slow_leak": "leak flow reached at the end, as a fraction of the zone's mean net inflow (0.02-0.05)",
    "pressure_surge": "peak pressure rise as a fraction of the sensor's normal pressure (0.3-0.8)",
    "low_pressure": "fraction by which the zone's pressures sag (0.20-0.40)",
    "sensor_stuck": "the value repeated, in the sensor's own unit (set by the generator)",
    "sensor_dropout": "none",
    "gas_rise": "plateau %LEL reached in the manhole (20-65)",
    "makeup_rise": "make-up flow as a multiple of its baseline (3-6)",
}

_DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(d|h|min|m|s)", re.IGNORECASE)
_UNIT_S = {"d": 86400.0, "h": 3600.0, "min": 60.0, "m": 60.0, "s": 1.0}


def parse_duration(value: object) -> float:
    """Seconds from a number, a timedelta or text like "3d", "1d6h", "90m", "45s" ("m" is minutes)."""
    if isinstance(value, bool):
        raise ValueError("a duration must be a number of seconds or text like '3d', '6h', '90m'")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        try:
            return float(text)
        except ValueError:
            pass
        parts = _DURATION_RE.findall(text)
        if parts and "".join(n + u for n, u in parts).lower() == text.lower():
            return sum(float(n) * _UNIT_S[u.lower()] for n, u in parts)
    raise ValueError(f"cannot read duration {value!r}; use seconds or text like '3d', '1d6h', '90m', '45s'")


Duration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]


def _utc_second(v: datetime) -> datetime:
    """A scenario's start in UTC, whole seconds (a naive time is taken as UTC)."""
    v = v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)
    return v.replace(microsecond=0)


UtcStart = Annotated[datetime, AfterValidator(_utc_second)]


def _check_units(quantity: str, units: list[str]) -> list[str]:
    if not units:
        raise ValueError(f"give at least one {quantity} unit")
    for u in units:
        try:
            conversion(quantity, u)
        except UnitError as exc:
            raise ValueError(str(exc)) from None
    return units


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WaterSpec(_Strict):
    """Water DMAs: each fed through `inlets` metered inlets, optionally passing water on via `outlets`."""

    zones: int = Field(default=2, ge=1, le=50)
    inlets: int = Field(default=1, ge=1, le=4)
    outlets: int = Field(default=0, ge=0, le=3)
    pressure_loggers: int = Field(default=4, ge=1, le=50)
    mean_flow_m3h: tuple[float, float] = (80.0, 250.0)  # per-zone mean net inflow drawn from this range
    leakage_fraction: float = Field(default=0.12, ge=0.0, lt=0.8)  # background leakage share of inflow
    source_head_m: tuple[float, float] = (40.0, 55.0)
    flow_units: list[str] = ["m3/h", "L/s"]  # cycled over the zone's flow meters
    pressure_units: list[str] = ["m", "kPa"]  # cycled over the zone's pressure loggers

    @field_validator("flow_units")
    @classmethod
    def _flow_units(cls, v: list[str]) -> list[str]:
        return _check_units("flow", v)

    @field_validator("pressure_units")
    @classmethod
    def _pressure_units(cls, v: list[str]) -> list[str]:
        return _check_units("pressure", v)


class HeatSpec(_Strict):
    """District-heating loops: supply/return pressure and temperature, circulation flow, make-up flow."""

    zones: int = Field(default=2, ge=1, le=50)
    circulation_m3h: tuple[float, float] = (250.0, 600.0)
    makeup_m3h: tuple[float, float] = (0.3, 1.5)  # baseline make-up (refill) flow
    outdoor_mean_c: float = -2.0  # winter; drives the supply-temperature heating curve
    pressure_units: list[str] = ["MPa", "bar"]  # cycled over zones
    flow_units: list[str] = ["m3/h"]
    makeup_units: list[str] = ["m3/h", "L/s"]  # cycled over zones

    @field_validator("pressure_units")
    @classmethod
    def _pressure_units(cls, v: list[str]) -> list[str]:
        return _check_units("pressure", v)

    @field_validator("flow_units", "makeup_units")
    @classmethod
    def _flow_units(cls, v: list[str]) -> list[str]:
        return _check_units("flow", v)


class GasSpec(_Strict):
    """Gas districts: a regulator station (pressure, flow) and methane detectors in nearby manholes."""

    zones: int = Field(default=2, ge=1, le=50)
    manholes: int = Field(default=4, ge=1, le=50)
    station_pressure_kpa: tuple[float, float] = (200.0, 400.0)  # medium pressure, 0.2-0.4 MPa
    station_flow_m3h: tuple[float, float] = (400.0, 1500.0)
    pressure_units: list[str] = ["MPa", "kPa"]  # cycled over zones
    methane_units: list[str] = ["%LEL"]

    @field_validator("pressure_units")
    @classmethod
    def _pressure_units(cls, v: list[str]) -> list[str]:
        return _check_units("pressure", v)

    @field_validator("methane_units")
    @classmethod
    def _methane_units(cls, v: list[str]) -> list[str]:
        return _check_units("gas_concentration", v)


class Intervals(_Strict):
    """Reporting interval (seconds, or text like "5m") per sensor kind."""

    water_flow: Duration = 60.0
    water_pressure: Duration = 300.0
    heat: Duration = 300.0
    gas_station: Duration = 60.0
    gas_methane: Duration = 60.0


def _start_or_offset(value: object) -> object:
    """Event starts are an offset from the scenario start ("1d6h", seconds) or an absolute time."""
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError:
            return value
    return value


class EventSpec(_Strict):
    """One event to inject; fields left out are drawn from the seed."""

    kind: EventKind
    zone: str | None = None
    start: Annotated[float | datetime | None, BeforeValidator(_start_or_offset)] = None
    duration: Duration | None = None
    sensor_id: str | None = None
    magnitude: float | None = None


class RandomEvents(_Strict):
    """`random: 2` draws two events of every kind; `random: {burst: 3}` draws three bursts."""

    random: int | dict[EventKind, int]

    def counts(self) -> dict[str, int]:
        if isinstance(self.random, int):
            return dict.fromkeys(EVENT_KINDS, self.random)
        return {k: self.random[k] for k in EVENT_KINDS if k in self.random}


class Scenario(_Strict):
    """A reproducible synthetic data set: same scenario (incl. seed) -> bit-identical output."""

    name: str = "custom"
    seed: int = Field(default=0, ge=0)
    start: UtcStart  # UTC; naive means UTC; truncated to whole seconds like every timestamp we write
    duration: Duration
    utc_offset_h: float = Field(default=8.0, ge=-14, le=14)  # local time for demand patterns (Asia/Shanghai)
    center_lat: float = Field(default=31.82, ge=-90, le=90)  # sensors are scattered around this point
    center_lon: float = Field(default=117.23, ge=-180, le=180)
    water: WaterSpec | None = None
    heat: HeatSpec | None = None
    gas: GasSpec | None = None
    intervals: Intervals = Intervals()
    missing_rate: float = Field(default=0.001, ge=0.0, lt=0.5)  # readings lost at random, per sensor
    jitter_s: int = Field(default=0, ge=0)  # each reading is late by 0..jitter_s whole seconds
    warmup: Duration | None = None  # event-free lead-in for random events; default min(1 day, 20 %)
    event_gap: Duration = 3600.0  # minimum quiet time between two events of one zone
    events: list[EventSpec | RandomEvents] = []

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if not (self.water or self.heat or self.gas):
            raise ValueError("a scenario needs at least one of water, heat, gas")
        if self.jitter_s >= min(self.intervals.model_dump().values()):
            raise ValueError("jitter_s must be shorter than the shortest reporting interval")
        return self

    def zones(self) -> list[tuple[str, str]]:
        """(network, zone) of every zone, in catalog order."""
        out: list[tuple[str, str]] = []
        for net, spec, prefix in (("water", self.water, "DMA"), ("heat", self.heat, "LOOP"),
                                  ("gas", self.gas, "GD")):
            if spec is not None:
                out += [(net, f"{prefix}{i}") for i in range(1, spec.zones + 1)]
        return out


# The default starts at local (UTC+8) midnight on a Monday, in winter so district heating is running.
DEFAULT_START: Final = datetime(2025, 1, 5, 16, 0, 0, tzinfo=UTC)


def default_scenario(seed: int = 0, days: float = 7.0, start: datetime | None = None) -> Scenario:
    """All three networks, two zones each, and at least one event of every kind (more for >= 5 days)."""
    if days < 1:
        raise ValueError("the default scenario needs at least one day; use demo_scenario() for short runs")
    counts: dict[str, int] = dict.fromkeys(EVENT_KINDS, 1)
    if days >= 5:
        counts.update(burst=2, pressure_surge=2, low_pressure=2, sensor_stuck=2, sensor_dropout=2, gas_rise=2)
    return Scenario(
        name="default", seed=seed, start=start or DEFAULT_START, duration=days * 86400.0,
        water=WaterSpec(zones=2, inlets=2, outlets=1, pressure_loggers=6),
        heat=HeatSpec(zones=2),
        gas=GasSpec(zones=2, manholes=5),
        events=[RandomEvents(random=counts)],
    )


def demo_scenario(seed: int = 0) -> Scenario:
    """A 40-minute night in one DMA with a burst 10 minutes in, for demos that must show an alarm fast."""
    return Scenario(
        name="demo", seed=seed, start=datetime(2025, 1, 6, 18, 0, 0, tzinfo=UTC),  # 02:00 local
        duration=40 * 60.0,
        water=WaterSpec(zones=1, inlets=1, pressure_loggers=3),
        intervals=Intervals(water_flow=60, water_pressure=60),
        missing_rate=0.0,
        events=[EventSpec(kind="burst", zone="DMA1", start=600.0, duration=20 * 60.0, magnitude=0.3)],
    )


PRESETS: Final = {"default": default_scenario, "demo": demo_scenario}


def preset(name: str, seed: int = 0) -> Scenario:
    """A built-in scenario by name ("default" or "demo")."""
    try:
        return PRESETS[name](seed=seed)
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario from YAML (see simulators/scenarios/example.yaml)."""
    path = Path(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping with start, duration, networks and events")
    return Scenario.model_validate(data)


def dump_scenario(scenario: Scenario) -> str:
    """YAML that load_scenario() reads back into an equal scenario."""
    return yaml.safe_dump(scenario.model_dump(mode="json", exclude_none=True), sort_keys=False,
                          allow_unicode=True)
