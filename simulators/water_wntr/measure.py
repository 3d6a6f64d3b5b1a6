"""From hydraulic states to what instruments report: sampling, noise, units, resolution, faults, loss.

A reading between two hydraulic states sees the earlier one (EPANET holds a state for its step).
Noise is drawn per physical instrument, so a meter catalogued in two DMAs reports one number.
Faults act on the reported values, after quantisation, as a broken transmitter would:
stuck (repeats its last good value), dropout (sends nothing), drift (error growing linearly to the
magnitude), offset (constant error); values are re-quantised to the sensor's resolution.
"""

from __future__ import annotations

import numpy as np

from sentinel.catalog import Sensor
from sentinel.units import conversion
from simulators.layout import decimals_for
from simulators.physics import inside, rng_for
from simulators.water_wntr.events import Plan
from simulators.water_wntr.hydraulics import Hydraulics
from simulators.water_wntr.placement import Channel
from simulators.water_wntr.scenario import SensorPlan

KPA_PER_M = 9.80665


def decimals(sensor: Sensor) -> int:
    return 3 if sensor.quantity == "level" else decimals_for(sensor.quantity, sensor.unit)


def quantise(raw: np.ndarray, places: int) -> np.ndarray:
    f = 10.0**places
    return np.rint(raw * f) / f


def true_value(h: Hydraulics, channel: Channel, t_s: np.ndarray) -> np.ndarray:
    """Canonical value (m3/h, kPa, m) of the state in force at each time."""
    k = np.minimum((t_s // h.step_s).astype(np.int64), h.steps - 1)
    if channel.kind == "flow":
        return channel.sign * h.flow[k, h.link(channel.element)]
    p = h.pressure[k, h.node(channel.element)]
    return p * KPA_PER_M if channel.kind == "pressure" else p


def noise_sd(plan: SensorPlan, channel: Channel, value: np.ndarray) -> np.ndarray | float:
    if channel.kind == "flow":
        return np.hypot(plan.flow_noise_fraction * value, plan.flow_noise_m3h)
    if channel.kind == "pressure":
        return plan.pressure_noise_m * KPA_PER_M
    return plan.level_noise_m


def apply_faults(t: np.ndarray, value: np.ndarray, keep: np.ndarray, faults: list[Plan], scale: float,
                 places: int) -> None:
    """In place, on values in the sensor's unit (`scale`: canonical units per unit)."""
    for p in faults:
        win = inside(t, p.start_s, p.end_s)
        if not win.any():
            continue
        if p.kind == "sensor_stuck":
            before = np.flatnonzero(keep & (t < p.start_s))
            src = before[-1] if len(before) else np.flatnonzero(win)[0]
            value[win] = value[src]
            p.magnitude = float(value[src])
        elif p.kind == "sensor_dropout":
            keep &= ~win
        elif p.kind == "sensor_drift":
            grow = (t[win] - p.start_s) / p.duration_s
            value[win] = quantise(value[win] + grow * (p.magnitude or 0.0) / scale, places)
        elif p.kind == "sensor_offset":
            value[win] = quantise(value[win] + (p.magnitude or 0.0) / scale, places)


def readings(seed: int, plan: SensorPlan, h: Hydraulics, sensor: Sensor, channel: Channel, span_s: float,
             faults: list[Plan]) -> tuple[np.ndarray, np.ndarray]:
    """(whole seconds from the start, values in the sensor's unit) of one catalog entry."""
    t = np.round(np.arange(0.0, span_s, sensor.interval_s)).astype(np.int64)
    canonical = true_value(h, channel, t.astype(np.float64))
    z = rng_for(seed, "wntr", "noise", channel.instrument).standard_normal(len(t))
    canonical = canonical + z * noise_sd(plan, channel, canonical)
    scale, offset = conversion(sensor.quantity, sensor.unit)
    places = decimals(sensor)
    value = quantise((canonical - offset) / scale, places)
    keep = rng_for(seed, "wntr", "loss", channel.instrument).random(len(t)) >= plan.missing_rate
    apply_faults(t, value, keep, faults, scale, places)
    return t[keep], value[keep]
