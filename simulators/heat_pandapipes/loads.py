"""Weather, heating curve and substation loads per hydraulic step.

Outdoor temperature: January mean + a daily cycle (warmest 14:30 local) + day-to-day weather + hourly
wander. Load factor phi = (heating_limit - T_out) / (heating_limit - T_design). The plant follows a
linear heating curve, supply = min + (design - min)·phi, and substations keep their supply-return
difference at dt_design·(0.55 + 0.45·phi) (smaller at part load); each draws
Q_i = Q_design_i·phi·(1 + dhw_share·(water pattern - 1))·(1 + wander), so its flow-control valve passes
m_i = Q_i / (cp·dT). Flows are set from the plant's supply temperature, so hydraulics need no thermal
solution; the thermal model then delivers exactly Q_i at whatever temperature reaches the substation.

Thermal contraction: as the network's mean temperature falls, its water shrinks by V·beta·dT and the
make-up system tops it up; as it warms, the expansion vessel takes the surplus (no make-up). This is the
temperature-driven confounder of make-up flow the domain notes mention.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulators.heat_pandapipes.network import CP, HeatNetwork
from simulators.heat_pandapipes.scenario import HeatScenario
from simulators.physics import DAY, LocalClock, SmoothNoise, rng_for, water_pattern

BETA = 5.8e-4  # 1/K, volumetric expansion of water at ~70 degC


@dataclass(frozen=True)
class Loads:
    outdoor_c: np.ndarray  # (steps,)
    phi: np.ndarray  # (steps,)
    supply_c: np.ndarray  # (steps, circuits): each circuit's supply temperature set by its plant
    dt_k: np.ndarray  # (steps,) target supply-return difference at substations
    heat_w: np.ndarray  # (steps, consumers) in heat_consumer row order
    mdot: np.ndarray  # (steps, consumers) kg/s
    contraction_m3h: np.ndarray  # (steps, circuits)


def outdoor(sc: HeatScenario, t: np.ndarray, clock: LocalClock) -> np.ndarray:
    w = sc.weather
    rng = rng_for(sc.seed, "weather")
    span = sc.span_s + sc.step
    cycle = w.daily_swing_k * np.cos(2 * np.pi * (clock.hour(t) - 14.5) / 24)
    return (w.outdoor_mean_c + cycle + SmoothNoise.draw(rng, span, DAY, w.day_to_day_sd_k)(t)
            + SmoothNoise.draw(rng, span, 3600.0, 0.5)(t))


def loads(sc: HeatScenario, hn: HeatNetwork) -> Loads:
    t = (np.arange(sc.steps) + 0.5) * sc.step
    clock = LocalClock(float(sc.start.timestamp()), sc.utc_offset_h)
    w, p, subs = sc.weather, sc.plant, sc.substations
    t_out = outdoor(sc, t, clock)
    phi = np.clip((w.heating_limit_c - t_out) / (w.heating_limit_c - w.outdoor_design_c), 0.1, 1.3)
    span = sc.span_s + sc.step
    supply = np.stack([p.supply_min_c + (p.supply_design_c - p.supply_min_c) * phi
                       + SmoothNoise.draw(rng_for(sc.seed, "plant", c.name), span, 1800.0, 0.4)(t)
                       for c in hn.circuits], axis=1)
    dt = p.dt_design_k * (0.55 + 0.45 * phi)
    dhw = 1 + subs.dhw_share * (water_pattern(clock.hour(t), clock.weekend(t)) - 1)
    rows = list(hn.net.heat_consumer.index)
    design = np.array([hn.design_w[int(i)] for i in rows])
    wander = np.stack([SmoothNoise.draw(rng_for(sc.seed, "substation", str(i)), span, 1800.0, subs.noise_sd)(t)
                       for i in rows], axis=1)
    heat = design[None, :] * (phi * dhw)[:, None] * (1 + wander)
    mdot = heat / (CP * dt[:, None])
    mean_t = supply - dt[:, None] / 2
    cooling = np.maximum(-np.gradient(mean_t, sc.step, axis=0), 0.0) if sc.steps > 1 else 0 * mean_t  # K/s
    volume = np.array([c.volume_m3 for c in hn.circuits])
    return Loads(t_out, phi, supply, dt, heat, mdot, volume[None, :] * BETA * cooling * 3600.0)
