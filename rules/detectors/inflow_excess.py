"""Inflow excess: the steady extra flow a leak adds to a zone, told apart from a busier or quieter day.

Why not night flow alone: the minimum night flow sees a leak once a night, and its night-to-night noise
is the day's demand scale (a 3 % busier day is 3 % busier at night too). A leak differs in kind: it adds
the same m3/h at 3 a.m. as at the morning peak, while demand scales with its profile. So over a sliding
`window` (two days) the zone's net inflow x is fitted as

    x(t) = f(t) * r(t) + L

where r is the zone's weekly profile (the median of the same weekday and time on the last `weeks`
weeks, holidays as Sundays), f the demand's scale (one per day, held at local midday and blended
linearly between: weather does not switch at midnight), and L the excess. Two days, because nights
(where a leak is large against demand) and peaks together pin L down against the day's scale.
Refitted every hour, so a slow leak shows within a day or two of reaching a few per cent of the zone's
inflow. Hours of something else (a hydrant draw, a burst) are left out of the fit by robust trimming:
they are other rules' business.

With `scale: drift` the scale is not fitted knot by knot but weighed out: it wanders around its mean by
`drift` with a correlation time of `drift_time` (weather drifts, it does not keep to days), and L comes
from generalised least squares on hourly means of the rows the daily fit kept (so its trimming of bursts
and hydrant draws still holds). A daily knot either lags the drift or, given more knots, swallows the
leak; weighing the drift out pins L down with what the profile's shape tells apart from it.

L is graded in standard deviations of its own estimate, learned on the fits below the lowest limit (a
big zone averages its customers' noise away, a small one does not), and must also be `min_ratio` of the
zone's usual inflow. A profile too flat to tell a scale from a constant is not judged. The profile learns
only hours when the last fit showed no extra inflow, and forgets hours a fit found running above it, so
neither a leak nor last week's burst becomes next week's normal. After `max_pause` (a week) without such
a fit it learns again: a lasting change, a leak nobody repairs included, becomes the new normal as the
weeks' median turns (two to three weeks with the default `weeks`), and its alarm then clears.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rules.calendar import holiday_days, local_day, weekday_profiles
from rules.detectors.base import Evaluation
from rules.detectors.rowwise import nanmedian_rows
from rules.detectors.stamps import empty_stamps
from rules.detectors.zone import ZoneDetector
from rules.levels import LevelTable
from rules.schema import InflowExcessRule
from rules.zone_flows import FinalBucket

DAY_NS = 86_400_000_000_000
_NO_BUCKET = np.iinfo(np.int64).min
_HOLD = 0.6  # of the limits, for an alarm already standing: a leak near the limit does not flap
_TRIM_ROUNDS = 6  # a burst first drags the fit towards it; a few rounds peel it off


class InflowExcessDetector(ZoneDetector):
    kind = "inflow_excess"
    rule: InflowExcessRule

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.levels = LevelTable.of(self.rule.z, self.rule.severity)
        self.width_ns = int(self.settings.zone_bucket * 1e9)
        if DAY_NS % self.width_ns:
            raise ValueError(f"rule {self.rule.id!r}: zone_bucket must divide a day evenly for a weekly profile")
        self.per_day = DAY_NS // self.width_ns
        self.ring_days = 7 * self.rule.weeks  # how far back a window row looks for its weekday
        self.span = max(2, round(self.rule.window * 1e9 / self.width_ns))  # buckets in the fitted window
        # the ring reaches `weeks` weeks behind the window's oldest row, and the bucket just written
        self.size = (self.ring_days + -(-self.span // self.per_day) + 1) * self.per_day
        self.max_pause = max(1, int(self.rule.max_pause * 1e9) // self.width_ns)
        self.trim_max = max(1, int(self.rule.trim_max * 1e9) // self.width_ns)
        self.every_ns = max(self.width_ns, round(self.rule.every * 1e9 / self.width_ns) * self.width_ns)
        self.offset_ns = round(self.settings.utc_offset_h * 3_600_000_000_000)
        self.holidays = holiday_days(self.settings.holidays)
        self.alpha = 1.0 - 0.5 ** (self.every_ns / 1e9 / self.rule.halflife)

    def new_state(self) -> dict[str, Any]:
        n = len(self.subjects)
        return {"ring": np.full((n, self.size), np.nan, dtype=np.float32),  # profile history (calm only)
                "stamp": empty_stamps(self.size, self.width_ns),
                "recent": np.full((n, self.span), np.nan, dtype=np.float32),  # the window as it came in
                "recent_stamp": empty_stamps(self.span, self.width_ns),
                "quiet": np.ones(n, dtype=bool),  # the last fit was clearly normal: the profile may learn
                "quiet_at": np.full(n, _NO_BUCKET, dtype=np.int64),  # bucket of the last such fit
                "var": np.full(n, np.nan),  # EWMA of the estimate's square on normal fits
                "fits": np.zeros(n, dtype=np.int32),  # fits made (warm-up counts time, not calm)
                "learned": np.zeros(n, dtype=np.int32)}  # fits the spread was learned on

    def _profile(self, st: dict[str, Any], buckets: np.ndarray, days: np.ndarray) -> np.ndarray:
        """(zones, buckets) median of the same weekday and time on earlier days still in the ring. Only the
        same weekday's columns are gathered (a few per bucket), so a city's hourly fit stays small."""
        n = st["ring"].shape[0]
        out = np.full((n, len(buckets)), np.nan)
        back = np.arange(1, self.ring_days + 1)
        for day in np.unique(days):
            rows = np.flatnonzero(days == day)
            same = back[weekday_profiles(day - back, self.holidays) == weekday_profiles(day, self.holidays)]
            if not len(same):
                continue
            cand = buckets[rows][:, None] - same[None, :] * self.per_day  # (rows, same days)
            vals = st["ring"][:, cand % self.size].astype(np.float64)  # (zones, rows, same days)
            vals[:, st["stamp"][cand % self.size] != cand] = np.nan
            out[:, rows] = nanmedian_rows(vals.reshape(n * len(rows), -1)).reshape(n, len(rows))
        return out

    def _trimmed(self, design: np.ndarray, x: np.ndarray, keep: np.ndarray, floor: float
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Least squares on `keep`, refitted on the rows within `trim` robust sigmas until none changes side."""
        coef = np.linalg.lstsq(design[keep], x[keep], rcond=None)[0]
        for _ in range(_TRIM_ROUNDS):
            inliers = self._inliers(x - design @ coef, keep, floor)
            if (inliers == keep).all():
                break
            keep = inliers
            coef = np.linalg.lstsq(design[keep], x[keep], rcond=None)[0]
        return coef, keep

    def _inliers(self, resid: np.ndarray, rows: np.ndarray, floor: float) -> np.ndarray:
        """Rows within `trim` robust sigmas of the residuals of `rows`, the sigma floored at `floor` (a
        meter's resolution: residuals that small are never something else)."""
        centre = float(np.median(resid[rows]))
        spread = max(1.4826 * float(np.median(np.abs(resid[rows] - centre))), floor)
        if spread <= 0:
            return rows.copy()
        keep = np.abs(resid - centre) <= self.rule.trim * spread
        # a run of outliers longer than `trim_max` is a lasting change (a leak that appeared at once), not
        # hours of something else: it stays in the fit
        edges = np.diff(np.concatenate(([0], (~keep).astype(np.int8), [0])))
        for first, end in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
            if end - first > self.trim_max:
                keep[first:end] = True
        return keep if keep.sum() >= rows.sum() // 2 else rows.copy()

    def _fit(self, x: np.ndarray, r: np.ndarray, days: np.ndarray, when: np.ndarray) -> tuple[float, float, np.ndarray]:
        """(L of x = f(t) r + L, its standard error, the rows left out for running above the fit), robust
        to hours of something else (a burst, a hydrant draw); `when` is local time in days, f one scale
        per local midday blended linearly between.

        Least squares alone would let a burst drag L up, and trimming residuals afterwards cannot undo
        that, so the fit starts on the whole days, from each day's median ratio x / r (which a burst
        covering less than half a day cannot move), keeps the rows near that and refits on every row
        within `trim` robust sigmas of it, today's included."""
        knots = np.arange(np.floor(when.min() - 0.5), np.ceil(when.max() - 0.5) + 1) + 0.5  # local middays
        hats = np.clip(1.0 - np.abs(when[:, None] - knots[None, :]), 0.0, None)
        design = np.column_stack([hats * r[:, None], np.ones(len(x))])
        settled = days < days.max()
        if settled.sum() < self.per_day // 2:
            settled = np.ones(len(x), dtype=bool)
        steady = np.abs(r) > 0.2 * float(np.mean(np.abs(r)))  # ratios of a near-zero profile are noise
        start = np.zeros(len(x))
        for day in np.unique(days[settled]):
            rows = steady & (days == day)
            start[days == day] = float(np.median(x[rows] / r[rows])) * r[days == day] if rows.any() else 0.0
        floor = 2e-3 * float(np.mean(np.abs(r)))  # 0.2 % of the zone's inflow
        coef, keep = self._trimmed(design, x, self._inliers(x - start, settled, floor) & settled, floor)
        if not settled.all():
            coef, keep = self._trimmed(design, x, self._inliers(x - design @ coef, keep, floor), floor)
        resid = x - design @ coef
        if self.rule.scale == "drift":
            excess, error = self._drift_fit(x[keep], r[keep], when[keep], resid[keep], steady[keep], floor)
            return excess, error, ~keep & (resid > 0)
        dof = max(1, int(keep.sum()) - design.shape[1])
        cov = np.linalg.pinv(design[keep].T @ design[keep]) * float(resid[keep] @ resid[keep]) / dof
        return float(coef[-1]), float(np.sqrt(max(cov[-1, -1], 0.0))), ~keep & (resid > 0)

    def _drift_fit(self, x: np.ndarray, r: np.ndarray, when: np.ndarray, resid: np.ndarray, steady: np.ndarray,
                   floor: float) -> tuple[float, float]:
        """(L, its standard error) of x = a(t) r + L by generalised least squares, the scale a wandering
        around its mean by `drift` with correlation exp(-|dt| / drift_time) and weighed out rather than
        fitted knot by knot: a knot a day either lags the weather's drift or, given more knots, swallows
        the leak. The rows' own noise is the spread of the daily fit's residuals from bucket to bucket;
        `steady` marks the rows whose profile is far enough from zero for a ratio to mean something.
        An error of infinity says the window cannot tell a scale from a constant (a flat or empty zone)."""
        step = np.diff(resid)
        spread = 1.4826 * float(np.median(np.abs(step - np.median(step)))) / np.sqrt(2.0) if len(step) else 0.0
        white = max(spread, floor, 1e-9 * (float(np.mean(np.abs(x))) + 1.0))  # a silent zone is no singular fit
        scale = float(np.median(x[steady] / r[steady])) if steady.any() else 0.0  # the drift is a share of it
        # hourly means: the scale barely moves within an hour, and a 48 x 48 system is cheap at every refit
        hour, rows = np.unique(np.floor(when * 24.0), return_inverse=True)
        count = np.bincount(rows)
        x, r = np.bincount(rows, weights=x) / count, np.bincount(rows, weights=r) / count
        lag = np.abs(hour[:, None] - hour[None, :]) * 3600.0 / self.rule.drift_time
        cov = (self.rule.drift * scale) ** 2 * np.outer(r, r) * np.exp(-lag) + np.diag(white**2 / count)
        design = np.column_stack([r, np.ones(len(x))])
        try:
            weighed = np.linalg.solve(cov, np.column_stack([design, x]))
            info = design.T @ weighed[:, :2]
            if len(x) < 3 or np.linalg.cond(info) > 1e12:
                return 0.0, float("inf")
            beta = np.linalg.solve(info, design.T @ weighed[:, 2])
            unit = np.linalg.inv(info)[1, 1]
        except np.linalg.LinAlgError:
            return 0.0, float("inf")
        # the model's error, widened when the window wanders more than `drift` and the noise say
        misfit = float((x - design @ beta) @ (weighed[:, 2] - weighed[:, :2] @ beta)) / (len(x) - 2)
        return float(beta[1]), float(np.sqrt(max(unit, 0.0) * max(misfit, 1.0)))

    def evaluate_bucket(self, st: dict[str, Any], bucket: FinalBucket, level: Any) -> Evaluation | None:
        b = bucket.bucket
        x = bucket.net[self.subjects]
        st["recent"][:, b % self.span] = x
        st["recent_stamp"][b % self.span] = b
        # alarmed or on the way: not the profile, until that has lasted `max_pause` (a lasting change)
        stale = (st["quiet_at"] != _NO_BUCKET) & (b - st["quiet_at"] >= self.max_pause)
        record = ((np.asarray(level) == 0) & st["quiet"]) | stale
        st["ring"][:, b % self.size] = np.where(record, x, np.nan)
        st["stamp"][b % self.size] = b
        if bucket.end_ns % self.every_ns:
            return None
        buckets = np.arange(b - self.span + 1, b + 1)
        days = local_day(buckets * self.width_ns, self.offset_ns)
        when = (buckets * self.width_ns + self.offset_ns) / DAY_NS  # local time in days
        xs = st["recent"][:, buckets % self.span].astype(np.float64)
        xs[:, st["recent_stamp"][buckets % self.span] != buckets] = np.nan
        rs = self._profile(st, buckets, days)
        usable = ~np.isnan(xs) & ~np.isnan(rs)
        slots = np.flatnonzero(usable.sum(axis=1) >= self.span // 2)
        if not len(slots):
            return None
        excess, error = np.zeros(len(slots)), np.zeros(len(slots))
        for k, i in enumerate(slots):
            rows = usable[i]
            excess[k], error[k], extra = self._fit(xs[i, rows], rs[i, rows], days[rows], when[rows])
            odd = buckets[rows][extra]  # hours of something extra stay out of next weeks' profile
            odd = odd[st["stamp"][odd % self.size] == odd]
            st["ring"][i, odd % self.size] = np.nan
        mean = np.array([float(np.abs(rs[i, usable[i]]).mean()) for i in slots]) + 1e-9  # the zone's size
        # a profile too flat to tell a scale from a constant (or a zone passing water on) cannot be judged
        resolved = error <= self.rule.min_ratio * mean * (1.0 if self.rule.scale == "drift" else 0.5)
        slots, excess, mean = slots[resolved], excess[resolved], mean[resolved]
        if not len(slots):
            return None
        share = excess / mean
        var, fits, learned = st["var"][slots], st["fits"][slots], st["learned"][slots]
        sigma = np.maximum(np.sqrt(np.nan_to_num(var, nan=0.0)), self.rule.min_sigma * mean)
        z = excess / sigma
        ready = fits >= self.rule.baseline_fits
        lvl = np.asarray(level)[slots]
        big = share >= self.rule.min_ratio * np.where(lvl > 0, _HOLD, 1.0)  # a standing alarm holds at 60 %
        raw = np.where(ready & big, self.levels.above(z, lvl, hyst_ratio=_HOLD), 0)
        raw = raw.astype(np.int8)
        # the estimate's spread is learned on every fit below the lowest limit (a narrower gate would bias
        # it low: at |z| < 2 it settles near 0.73 of the true spread); while warming up, under `min_ratio`
        below = np.where(ready, np.abs(z) < self.levels.lowest(), np.abs(share) < self.rule.min_ratio)
        learn = (raw == 0) & (lvl == 0) & below
        a = np.maximum(self.alpha, 1.0 / (learned + 1.0))
        st["var"][slots] = np.where(learn, np.where(learned == 0, excess**2, var + a * (excess**2 - var)), var)
        st["learned"][slots] = learned + learn
        st["fits"][slots] = fits + 1  # a leak there since commissioning is judged too (against the floor)
        # the profile learns only what is clearly not extra inflow (one-sided: a zone that uses less, say a
        # customer gone, is the new normal at once)
        quiet = (raw == 0) & (lvl == 0) & np.where(ready, z < self.levels.lowest() / 2, share < self.rule.min_ratio)
        st["quiet"][slots] = quiet
        st["quiet_at"][slots[quiet]] = b
        t = np.full(len(slots), bucket.end_ns, dtype=np.int64)
        detail = [f"{s * 100:.1f}% of the zone's inflow" for s in share]  # the unit of the city's 9 % target
        return Evaluation(slots, t, raw, excess, z, extra={"where": detail})

    def readiness(self, st: dict[str, Any]) -> np.ndarray:
        """Hourly fits made against the `baseline_fits` it takes before the excess is graded."""
        return np.minimum(1.0, st["fits"] / self.rule.baseline_fits)

    def describe(self, grade: int, value: float, score: float, unit: str) -> str:
        return (f"zone takes {value:.3g} m3/h more than its weekly profile explains, at every hour of the day: "
                f"{score:.1f} sigma (limit {self.levels.threshold_for(grade):g}), a leak?")
