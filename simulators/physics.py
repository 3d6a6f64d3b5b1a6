"""Vectorised building blocks: local time, daily demand patterns, smooth noise and event envelopes.

Every signal is a pure function of time (seconds since the scenario start), so each sensor can be
sampled at its own timestamps and all sensors of a zone still see one consistent physical state.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

DAY = 86400.0


def rng_for(seed: int, *keys: str) -> np.random.Generator:
    """An independent stream per purpose (zone, sensor, events), so adding an event or a sensor never
    changes the background noise of anything else: with and without events, runs differ only inside
    the labelled windows."""
    return np.random.default_rng([seed, *(zlib.crc32(k.encode()) for k in keys)])


@dataclass(frozen=True)
class LocalClock:
    """Local hour-of-day and weekend flag for absolute UTC seconds (fixed offset; China has no DST)."""

    start_epoch_s: float
    utc_offset_h: float

    def hour(self, t: np.ndarray) -> np.ndarray:
        local = self.start_epoch_s + t + self.utc_offset_h * 3600.0
        return np.mod(local, DAY) / 3600.0

    def weekend(self, t: np.ndarray) -> np.ndarray:
        local = self.start_epoch_s + t + self.utc_offset_h * 3600.0
        weekday = (np.floor_divide(local, DAY).astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
        return weekday >= 5


def _bump(hour: np.ndarray, mu: float, sd: float) -> np.ndarray:
    d = np.abs(hour - mu)
    d = np.minimum(d, 24.0 - d)  # the day wraps around midnight
    return np.exp(-0.5 * (d / sd) ** 2)


Pattern = Callable[[np.ndarray], np.ndarray]


def _normalised(fn: Pattern) -> Pattern:
    """Scale a daily shape to mean 1, so zone means are set by one number each."""
    mean = float(fn(np.arange(0, 24, 1 / 60)).mean())
    return lambda h: fn(h) / mean


# Residential water use: low 02:00-04:00, morning and evening peaks; weekends rise later and use a bit more.
_water_weekday = _normalised(lambda h: 0.32 - 0.06 * _bump(h, 3.0, 1.5) + 0.9 * _bump(h, 7.5, 1.2)
                             + 0.5 * _bump(h, 12.0, 1.5) + 1.0 * _bump(h, 19.5, 1.8))
_water_weekend = _normalised(lambda h: 0.32 - 0.06 * _bump(h, 3.0, 1.5) + 0.7 * _bump(h, 9.0, 1.8)
                             + 0.6 * _bump(h, 12.5, 1.8) + 1.0 * _bump(h, 19.0, 2.0))
WEEKEND_WATER_FACTOR = 1.04

# Gas: cooking peaks at breakfast, lunch and dinner on a heating base load.
_gas_weekday = _normalised(lambda h: 0.55 + 0.5 * _bump(h, 6.8, 1.0) + 0.8 * _bump(h, 11.5, 1.0)
                           + 0.9 * _bump(h, 18.0, 1.2) + 0.2 * _bump(h, 21.0, 2.0))
_gas_weekend = _normalised(lambda h: 0.55 + 0.4 * _bump(h, 8.5, 1.3) + 0.9 * _bump(h, 12.0, 1.2)
                           + 0.9 * _bump(h, 18.0, 1.3) + 0.2 * _bump(h, 21.0, 2.0))


def water_pattern(hour: np.ndarray, weekend: np.ndarray) -> np.ndarray:
    """Demand multiplier with mean 1 on weekdays (WEEKEND_WATER_FACTOR on weekends)."""
    return np.where(weekend, WEEKEND_WATER_FACTOR * _water_weekend(hour), _water_weekday(hour))


def gas_pattern(hour: np.ndarray, weekend: np.ndarray) -> np.ndarray:
    return np.where(weekend, _gas_weekend(hour), _gas_weekday(hour))


@dataclass(frozen=True)
class SmoothNoise:
    """Random values at regular knots, linearly interpolated: cheap, smooth, and evaluable at any time."""

    step_s: float
    values: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator, span_s: float, step_s: float, sd: float) -> SmoothNoise:
        n = int(np.ceil(span_s / step_s)) + 2
        return cls(step_s, sd * rng.standard_normal(n))

    def __call__(self, t: np.ndarray) -> np.ndarray:
        x = np.arange(len(self.values)) * self.step_s
        return np.interp(t, x, self.values)


def inside(t: np.ndarray, start: float, end: float) -> np.ndarray:
    """Event windows are half-open [start, end): the label end is the first instant back to normal."""
    return (t >= start) & (t < end)


def ramp(t: np.ndarray, start: float, rise_s: float) -> np.ndarray:
    """0 before start, linear to 1 over rise_s."""
    return np.clip((t - start) / max(rise_s, 1e-9), 0.0, 1.0)


def taper(t: np.ndarray, end: float, fall_s: float) -> np.ndarray:
    """1 until fall_s before end, linear to 0 at end (so an effect has fully gone at its label end)."""
    return np.clip((end - t) / max(fall_s, 1e-9), 0.0, 1.0)


def surge_envelope(t: np.ndarray, start: float, end: float, tau_s: float, period_s: float) -> np.ndarray:
    """A spike decaying with oscillation, always above zero so that several slow readings stay elevated."""
    dt = t - start
    env = np.exp(-np.maximum(dt, 0.0) / tau_s) * (0.6 + 0.4 * np.cos(2 * np.pi * dt / period_s))
    return np.where(inside(t, start, end), env, 0.0)
