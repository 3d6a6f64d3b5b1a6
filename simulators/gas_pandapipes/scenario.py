"""The scenario of a physics-based gas run: one YAML with `engine: pandapipes-gas` reproduces a data set.

Network (a shipped pandapipes example or a .json), districts (each fed by its own regulator station),
instruments, demand, regulator behaviour, the methane dispersion model and the events. Event kinds:
gas_rise (a leak: an orifice at a junction), low_pressure (a regulator's outlet set point sags),
sensor_stuck, sensor_dropout, sensor_drift.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from simulators.pipes_common import PipesScenario, Strict
from simulators.scenario import Duration, _check_units

GAS_KINDS = ("gas_rise", "low_pressure", "sensor_stuck", "sensor_dropout", "sensor_drift")
HOLE_MM = {"small": 5.0, "medium": 12.0, "large": 25.0}  # ~21, ~120, ~490 Nm3/h at 100 kPa gauge (choked)


class GasSensors(Strict):
    """Per district: the regulator station's outlet pressure and flow, loggers at the far ends, and
    methane detectors in underground spaces next to the mains."""

    end_loggers: int = Field(default=3, ge=1, le=20)
    spaces: int = Field(default=6, ge=1, le=50)
    station_interval: Duration = 60.0
    logger_interval: Duration = 60.0
    methane_interval: Duration = 60.0
    pressure_units: list[str] = Field(default_factory=lambda: ["kPa", "MPa"])  # cycled over a district's sensors
    station_pressure_noise_kpa: float = Field(default=0.08, ge=0)
    logger_pressure_noise_kpa: float = Field(default=0.15, ge=0)
    flow_noise_fraction: float = Field(default=0.005, ge=0)
    flow_noise_m3h: float = Field(default=0.3, ge=0)
    methane_noise_lel: float = Field(default=0.15, ge=0)

    @field_validator("pressure_units")
    @classmethod
    def _pressure(cls, v: list[str]) -> list[str]:
        return _check_units("pressure", v)


class Regulators(Strict):
    """Regulator stations: outlet held at `set_kpa` (gauge), minus a droop that grows with throughput
    (accuracy-class behaviour of spring/pilot regulators), plus a slow wander."""

    set_kpa: float = Field(default=100.0, gt=2, le=400)  # China medium pressure B is 10-200 kPa
    droop_kpa: float = Field(default=1.5, ge=0)  # outlet fall at twice the district's mean demand
    wobble_kpa: float = Field(default=0.3, ge=0)  # sd of the slow wander (pilot temperature, spring)


class GasDemand(Strict):
    """Per-house demand: the house's annual consumption as a mean, a daily/weekly cooking-and-heating
    pattern, a district-wide day-to-day factor (weather) and each house's own randomness per step."""

    multiplier: float = Field(default=1.6, gt=0)  # January: ~1.6x the annual mean (space heating)
    daily_sd: float = Field(default=0.06, ge=0)
    fine_sd: float = Field(default=0.03, ge=0)
    house_sd: float = Field(default=0.3, ge=0)  # lognormal sd of one house's use in one step


class SpaceType(Strict):
    volume_m3: float = Field(gt=0)
    air_changes_per_h: float = Field(gt=0)


class Dispersion(Strict):
    """Methane reaching underground spaces from a buried leak (see methane.py for the equations).

    Gas migrates mostly along the trench's permeable backfill, so distance is measured along the pipes.
    A space at trench distance d receives G = capture·exp(-d/decay_length)·q_leak(t - d/speed) (Nm3/h);
    its air is well mixed and exchanged `air_changes_per_h` times an hour.
    """

    capture_fraction: float = Field(default=0.05, gt=0, le=1)
    decay_length_m: float = Field(default=15.0, gt=0)
    migration_m_per_min: float = Field(default=2.0, gt=0)
    connectivity_sd: float = Field(default=0.3, ge=0)  # lognormal spread between spaces (cracks, seals)
    types: dict[str, SpaceType] = Field(default_factory=lambda: {
        "manhole": SpaceType(volume_m3=3.0, air_changes_per_h=1.0),
        "valve_chamber": SpaceType(volume_m3=8.0, air_changes_per_h=0.6),
        "utility_tunnel": SpaceType(volume_m3=60.0, air_changes_per_h=4.0),  # forced ventilation
    })
    background_lel: tuple[float, float] = (0.0, 0.8)  # per space: sewer/swamp gas in clean conditions


class GasScenario(PipesScenario):
    """A reproducible physics-based gas data set: same scenario (seed included) -> identical output."""

    KINDS: ClassVar[tuple[str, ...]] = GAS_KINDS

    engine: Literal["pandapipes-gas"]
    name: str = "gas"
    event_gap: Duration = 4 * 3600.0  # a leak's methane takes hours to vent
    districts: int | list[str] = 2  # a count (partitioned automatically) or the regulators' junction names
    house_connection_max_m: float = Field(default=50.0, gt=0)  # longer service lines are dropped
    gas_temperature_c: float = 10.0
    leak_min_distance_m: float = Field(default=5.0, ge=0)  # a drawn leak is no closer to a detector than this
    leak_visible_lel: float = Field(default=20.0, ge=0)  # ... and where one would settle above this (see engine)
    sensors: GasSensors = GasSensors()
    regulators: Regulators = Regulators()
    demand: GasDemand = GasDemand()
    dispersion: Dispersion = Dispersion()
