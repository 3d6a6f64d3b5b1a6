"""Nodal demand multipliers from LeakDB's demand model (Vrachimis et al., 2018).

LeakDB fitted Fourier series to real utility consumption: a one-week period (order 20: diurnal shape,
weekday vs weekend) and a one-year period (order 3: seasons). Like LeakDB's generator, each node gets
the coefficients perturbed by +-10 %, its own weekly amplitude and 5 % step noise; on top we add a
day-to-day factor per DMA (weather, local events: a slow random drift, `demand_level`), and holidays
run on the Sunday pattern.

    multiplier = (1 + year(t)) * (1 + v_node * week(t)) * (1 + noise) * day_factor(zone, t)

Day 0 of LeakDB's week is read as Monday: its days 5 and 6 have the late weekend morning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

import numpy as np
import scipy.io

from simulators.physics import DAY, rng_for
from simulators.water_wntr.network import reference_data
from simulators.water_wntr.scenario import DemandModel

WEEK = 7 * DAY
YEAR = 365 * DAY
_COEFF_STEP_S = 300.0  # the *_5min.mat coefficients count time in 5-minute steps


@dataclass(frozen=True)
class FourierSeries:
    """a0 + sum_i a_(2i-1) sin(i w k) + a_(2i) cos(i w k), k = time in coefficient steps."""

    coeffs: np.ndarray  # (1 + 2n,)
    period_s: float

    @property
    def order(self) -> int:
        return (len(self.coeffs) - 1) // 2

    def basis(self, t_s: np.ndarray) -> np.ndarray:
        """(len(t), 1 + 2n) design matrix, so many perturbed coefficient sets evaluate in one matmul."""
        k = t_s / _COEFF_STEP_S
        w = 2 * np.pi / (self.period_s / _COEFF_STEP_S)
        cols = [np.ones_like(k)]
        for i in range(1, self.order + 1):
            cols += [np.sin(i * w * k), np.cos(i * w * k)]
        return np.column_stack(cols)

    def __call__(self, t_s: np.ndarray) -> np.ndarray:
        return self.basis(t_s) @ self.coeffs


@cache
def leakdb_model(directory: Path | None = None) -> tuple[FourierSeries, FourierSeries]:
    """(weekly, yearly) series from weekPat_5min.mat and yearOffset_5min.mat."""
    base = directory or reference_data() / "leakdb"
    try:
        week = scipy.io.loadmat(str(base / "weekPat_5min.mat"))["Aw"].ravel().astype(np.float64)
        year = scipy.io.loadmat(str(base / "yearOffset_5min.mat"))["Ay"].ravel().astype(np.float64)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"LeakDB demand model not found in {base} (set SENTINEL_REFERENCE_DATA)") from exc
    return FourierSeries(week, WEEK), FourierSeries(year, YEAR)


@dataclass(frozen=True)
class LocalCalendar:
    """Local time of the run's steps: day index, time within the week (Monday 00:00 = 0) and year."""

    day: np.ndarray  # int, local days since 1970-01-01
    week_s: np.ndarray
    year_s: np.ndarray

    @classmethod
    def of(cls, start_epoch_s: int, utc_offset_h: float, t_s: np.ndarray, holidays: Sequence[date] = ()
           ) -> LocalCalendar:
        local = start_epoch_s + utc_offset_h * 3600.0 + t_s
        day = np.floor_divide(local, DAY).astype(np.int64)
        weekday = (day + 3) % 7  # 1970-01-01 was a Thursday
        if holidays:
            hol = np.array([(h - date(1970, 1, 1)).days for h in holidays], dtype=np.int64)
            weekday = np.where(np.isin(day, hol), 6, weekday)  # a holiday runs on the Sunday pattern
        week_s = weekday * DAY + np.mod(local, DAY)
        days64 = day.astype("datetime64[D]")
        year_start = days64.astype("datetime64[Y]").astype("datetime64[D]")
        year_s = (days64 - year_start).astype(np.int64) * DAY + np.mod(local, DAY)
        return cls(day, week_s, year_s)


def multipliers(spec: DemandModel, cal: LocalCalendar, node_zone: Sequence[int], seed: int) -> np.ndarray:
    """(steps, nodes) demand multipliers (mean about 1), one column per demand node, in node order.

    Random draws come in a fixed order from streams keyed by purpose, so the same seed gives the same
    demands whatever events are injected.
    """
    week, year = leakdb_model()
    n = len(node_zone)
    rng = rng_for(seed, "demand", "nodes")
    spread = spec.coefficient_spread
    a_w = week.coeffs * rng.uniform(1 - spread, 1 + spread, (n, len(week.coeffs)))
    a_y = year.coeffs * rng.uniform(1 - spread, 1 + spread, (n, len(year.coeffs)))
    amplitude = spec.variation + spec.variation_sd * rng.standard_normal(n)
    out = 1.0 + amplitude * (week.basis(cal.week_s) @ a_w.T)
    if spec.seasonal:
        out *= 1.0 + year.basis(cal.year_s) @ a_y.T
    noise = rng_for(seed, "demand", "steps").standard_normal((len(cal.day), n))
    out *= 1.0 + spec.step_noise * noise
    days = cal.day - cal.day[0]
    zones = np.asarray(node_zone, dtype=np.int64)
    out *= demand_level(spec.daily_sd, days + np.mod(cal.week_s, DAY) / DAY, int(zones.max()) + 1, seed)[:, zones]
    return np.clip(out, 0.0, None)


def demand_level(sd: float, when_days: np.ndarray, zones: int, seed: int) -> np.ndarray:
    """(steps, zones) day-to-day demand factor: 1 + sd * an Ornstein-Uhlenbeck process with a one-day
    correlation time, drawn hourly and interpolated. Weather and local events drift; they neither switch
    at midnight (a step there is an artefact every detector of today's level trips on) nor follow a
    daily grid a detector could latch onto."""
    hours = when_days * 24.0
    n = int(np.ceil(hours.max())) + 2
    rho = np.exp(-1.0 / 24.0)
    shocks = rng_for(seed, "demand", "days").standard_normal((n, zones))
    path = np.empty_like(shocks)
    path[0] = shocks[0]
    for k in range(1, n):
        path[k] = rho * path[k - 1] + np.sqrt(1.0 - rho**2) * shocks[k]
    grid = np.arange(n, dtype=float)
    return 1.0 + sd * np.column_stack([np.interp(hours, grid, path[:, z]) for z in range(zones)])
