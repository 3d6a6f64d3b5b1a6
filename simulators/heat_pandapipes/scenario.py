"""The scenario of a physics-based district-heating run: one YAML with `engine: pandapipes-heat`.

Network (a shipped pandapipes example or a .json with a circulation pump and heat consumers), how it is
split into circuits, the plant (heating curve, pressure holding, make-up), substations, pipes, weather,
instruments and events. Event kinds: makeup_rise (a leak: an orifice at a supply or return junction),
low_pressure (the pressure-holding set point sags), sensor_stuck, sensor_dropout, sensor_drift.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from simulators.pipes_common import PipesScenario, Strict
from simulators.scenario import Duration, _check_units

HEAT_KINDS = ("makeup_rise", "low_pressure", "sensor_stuck", "sensor_dropout", "sensor_drift")
HOLE_MM = {"small": 2.5, "medium": 5.0, "large": 8.0}  # ~0.25, ~1.4, ~3.5 m3/h at 3-5 bar


class Plant(Strict):
    """The heat station: supply temperature from a heating curve, a circulation pump holding a constant
    differential pressure, and a pressure-holding make-up system on the return header."""

    supply_design_c: float = Field(default=90.0, gt=40, lt=150)  # at the design outdoor temperature
    supply_min_c: float = Field(default=60.0, gt=30, lt=150)  # at the heating limit
    dt_design_k: float = Field(default=25.0, gt=5, lt=60)  # substations' supply-return difference at design
    hold_kpa: float = Field(default=300.0, gt=50, le=1600)  # return-header pressure the make-up holds (gauge)
    lift_margin_kpa: float = Field(default=100.0, gt=0)  # differential left at the worst substation at design
    band_kpa: float = Field(default=40.0, ge=0)  # holding pressure fall at the rated make-up flow
    makeup_rated_per_h: float = Field(default=0.04, gt=0)  # rated make-up, as a share of the water volume per h
    makeup_min_m3h: float = Field(default=2.0, gt=0)  # ... but no make-up pump is smaller than this
    seepage_per_h: float = Field(default=0.003, ge=0)  # everyday losses (vents, glands, sampling), share of volume
    makeup_temperature_c: float = 10.0  # treated cold water; what the make-up meter measures


class Weather(Strict):
    outdoor_mean_c: float = -2.0  # January mean (Hefei: ~3, Beijing: ~-3)
    outdoor_design_c: float = -9.0
    daily_swing_k: float = Field(default=4.5, ge=0)  # amplitude of the day's cycle, warmest at 14:30
    day_to_day_sd_k: float = Field(default=2.5, ge=0)
    heating_limit_c: float = 18.0


class Substations(Strict):
    design_kw: float = Field(default=150.0, gt=0)  # mean design load (apartment blocks)
    spread: float = Field(default=0.4, ge=0, lt=1)  # design loads spread +-40 %, fixed per network
    dhw_share: float = Field(default=0.08, ge=0, lt=1)  # hot-water swing on top of space heating
    noise_sd: float = Field(default=0.05, ge=0)  # half-hourly load wander per substation


class Pipes(Strict):
    max_velocity_m_s: float = Field(default=1.2, gt=0)  # pipes are sized once at design load
    soil_c: float = 8.0  # undisturbed ground at pipe depth in winter
    loss_base_w_mk: float = Field(default=0.15, ge=0)  # linear heat-loss coefficient: base + per_mm x DN
    loss_per_mm_w_mk: float = Field(default=0.001, ge=0)


class HeatSensors(Strict):
    """Per circuit: plant supply/return pressure and temperature, circulation and make-up flow, and
    supply/return pressure and temperature at the `end_substations` farthest substations."""

    end_substations: int = Field(default=1, ge=0, le=10)
    interval: Duration = 300.0
    pressure_units: list[str] = Field(default_factory=lambda: ["MPa", "bar"])  # cycled over circuits
    makeup_units: list[str] = Field(default_factory=lambda: ["m3/h", "L/s"])  # cycled over circuits
    pressure_noise_kpa: float = Field(default=1.0, ge=0)
    temperature_noise_k: float = Field(default=0.1, ge=0)
    flow_noise_fraction: float = Field(default=0.005, ge=0)
    makeup_noise_fraction: float = Field(default=0.02, ge=0)
    makeup_noise_m3h: float = Field(default=0.01, ge=0)

    @field_validator("pressure_units")
    @classmethod
    def _pressure(cls, v: list[str]) -> list[str]:
        return _check_units("pressure", v)

    @field_validator("makeup_units")
    @classmethod
    def _flow(cls, v: list[str]) -> list[str]:
        return _check_units("flow", v)


class HeatScenario(PipesScenario):
    """A reproducible physics-based district-heating data set: same scenario (seed included) -> same output."""

    KINDS: ClassVar[tuple[str, ...]] = HEAT_KINDS

    engine: Literal["pandapipes-heat"]
    name: str = "heat"
    circuits: Literal["per_feeder", "single"] = "per_feeder"  # each feeder its own pump and make-up, or one
    plant: Plant = Plant()
    weather: Weather = Weather()
    substations: Substations = Substations()
    pipes: Pipes = Pipes()
    sensors: HeatSensors = HeatSensors()
