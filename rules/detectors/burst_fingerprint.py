"""Burst fingerprint: a zone's net inflow steps up while its pressures step down, together.

Why not a plain profile: demand on any one day sits a few per cent above or below its usual shape
(weather, events), and that offset would either hide a medium burst or raise alarms all day. So each
bucket is compared with the same time of day on earlier days of the same type (median over up to
`history`), today's offset is followed by a slow EWMA (`level_halflife`) that stops learning while an
alarm stands, and what is scored is the step: residual minus today's offset, in standard deviations
learned per hour of day. A burst is a step; demand drift and holidays are not.

Pressure loggers get the same treatment. The zone's pressure evidence is the median of its loggers'
steps (so one faulty logger cannot make or break it); the logger that stepped down most tells the crew
where in the zone to look. The grade is taken on flow z plus `pressure_weight` times the pressure
drop's z, and needs the inflow step to be at least `min_ratio` of the expected inflow.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from rules.baseline import Baseline
from rules.detectors.base import Evaluation
from rules.detectors.zone import ZoneDetector
from rules.levels import LevelTable
from rules.schema import BurstFingerprintRule
from rules.zone_flows import FinalBucket, pressure_members

DAY_NS = 86_400_000_000_000


@dataclass
class StepSeries:
    """History, today's offset and step scale for a set of series (zones, or loggers)."""

    ring: np.ndarray  # (n, history buckets) float32, NaN = no value
    level: np.ndarray  # (n,) EWMA of the residual; NaN until the first residual
    scale: Any  # BaselineState of the step, per hour of day


class StepScorer:
    """Step statistic for series sampled once per zone bucket (see the module docstring)."""

    def __init__(self, rule: BurstFingerprintRule, width_ns: int, utc_offset_h: float) -> None:
        if DAY_NS % width_ns:
            raise ValueError(f"rule {rule.id!r}: zone_bucket must divide a day evenly for a time-of-day history")
        self.per_day = DAY_NS // width_ns
        self.days = max(2, int(rule.history // 86400))
        self.size = self.days * self.per_day
        self.min_days = rule.min_days
        self.width_ns = width_ns
        self.offset_ns = round(utc_offset_h * 3_600_000_000_000)
        self.alpha = 1.0 - 0.5 ** (width_ns / 1e9 / rule.level_halflife)
        self.baseline = Baseline(rule.scale, np.array([width_ns / 1e9]), utc_offset_h)

    def new(self, n: int) -> StepSeries:
        return StepSeries(np.full((n, self.size), np.nan, dtype=np.float32), np.full(n, np.nan),
                          self.baseline.new_state(n))

    def _weekend(self, bucket: np.ndarray) -> np.ndarray:
        day = (bucket * self.width_ns + self.offset_ns) // DAY_NS
        return (day + 3) % 7 >= 5  # epoch day 0 was a Thursday

    def expected(self, st: StepSeries, bucket: int, stamp: np.ndarray) -> np.ndarray:
        """Median of the same time of day on earlier same-type days still in the ring (NaN if too few)."""
        back = bucket - self.per_day * np.arange(1, self.days + 1)
        same = (self._weekend(back) == self._weekend(np.array([bucket]))[0]) & (stamp[back % self.size] == back)
        if same.sum() < self.min_days:
            return np.full(len(st.level), np.nan)
        cols = st.ring[:, back[same] % self.size].astype(np.float64)
        enough = (~np.isnan(cols)).sum(axis=1) >= self.min_days
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: no history for that series
            med = np.nanmedian(cols, axis=1)
        return np.where(enough, med, np.nan)

    def step(self, st: StepSeries, bucket: int, end_ns: int, x: np.ndarray,
             stamp: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(z of the step, step, expected) for this bucket's values x; NaN where not scoreable yet."""
        expected = self.expected(st, bucket, stamp)
        resid = x - expected
        stepped = resid - st.level
        n = len(x)
        cell = self.baseline.cells(np.arange(n), np.full(n, end_ns - self.width_ns, dtype=np.int64))
        z, _dev, ready = self.baseline.score(st.scale, cell, np.nan_to_num(stepped))
        ok = ready & ~np.isnan(stepped)
        return np.where(ok, z, np.nan), stepped, expected

    def learn(self, st: StepSeries, bucket: int, end_ns: int, x: np.ndarray, resid_ok: np.ndarray,
              expected: np.ndarray, stepped: np.ndarray) -> None:
        """Record x in the history; follow today's offset and learn the step's spread where `resid_ok`."""
        st.ring[:, bucket % self.size] = x
        resid = x - expected
        has = resid_ok & ~np.isnan(resid)
        first = has & np.isnan(st.level)
        st.level[first] = resid[first]
        follow = has & ~first
        st.level[follow] += self.alpha * (resid[follow] - st.level[follow])
        learn = follow & ~np.isnan(stepped)
        if learn.any():
            idx = np.flatnonzero(learn)
            cell = self.baseline.cells(idx, np.full(len(idx), end_ns - self.width_ns, dtype=np.int64))
            self.baseline.learn(st.scale, cell, stepped[idx], self.baseline.alpha[np.zeros(len(idx), dtype=np.intp)])


class BurstFingerprintDetector(ZoneDetector):
    kind = "burst_fingerprint"
    reads_zone_pressure = True
    rule: BurstFingerprintRule

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.levels = LevelTable.of(self.rule.z, self.rule.severity)
        width = int(self.settings.zone_bucket * 1e9)
        self.scorer = StepScorer(self.rule, width, self.settings.utc_offset_h)
        loggers = pressure_members(self.catalog)
        in_scope = np.isin(self.catalog.zone_code[loggers], self.subjects)
        self.logger_pos = np.flatnonzero(in_scope)  # positions in FinalBucket.pressure
        self.logger_idx = loggers[in_scope]  # catalog indices
        zone_slot = np.full(len(self.catalog.zones), -1, dtype=np.int64)
        zone_slot[self.subjects] = np.arange(len(self.subjects))
        self.logger_zone = zone_slot[self.catalog.zone_code[self.logger_idx]]  # subject slot of each logger
        self.names = [self.catalog.sensors[i].sensor_id for i in self.logger_idx]
        self.units = [self.catalog.canonical_unit(int(i)) for i in self.logger_idx]

    def new_state(self) -> dict[str, Any]:
        return {"stamp": np.full(self.scorer.size, np.iinfo(np.int64).min, dtype=np.int64),
                "flow": self.scorer.new(len(self.subjects)), "pressure": self.scorer.new(len(self.logger_idx))}

    def _pressure_evidence(self, pz: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """Per zone: median drop z of its loggers (>= 0), and where the biggest drop is."""
        n = len(self.subjects)
        drop = np.zeros(n)
        where = [""] * n
        for slot in range(n):
            mine = np.flatnonzero((self.logger_zone == slot) & ~np.isnan(pz))
            if not len(mine):
                continue
            drop[slot] = max(0.0, -float(np.median(pz[mine])))
            worst = mine[np.argmin(pz[mine])]
            if pz[worst] < -2:
                where[slot] = f"pressure fell most at {self.names[worst]} ({pz[worst]:.1f} sigma)"
        return drop, where

    def evaluate_bucket(self, st: dict[str, Any], bucket: FinalBucket, level: Any) -> Evaluation | None:
        b, end = bucket.bucket, bucket.end_ns
        stamp = st["stamp"]
        x = bucket.net[self.subjects]
        fz, fstep, fexp = self.scorer.step(st["flow"], b, end, x, stamp)
        px = bucket.pressure[self.logger_pos] if len(self.logger_pos) else np.zeros(0)
        pz, pstep, pexp = self.scorer.step(st["pressure"], b, end, px, stamp)
        drop, where = self._pressure_evidence(pz)
        score = fz + self.rule.pressure_weight * drop
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(np.abs(fexp) > 1e-9, fstep / np.abs(fexp), np.inf)
        scoreable = ~np.isnan(fz)
        raw = np.where(scoreable & (ratio >= self.rule.min_ratio),
                       self.levels.above(np.nan_to_num(score, nan=-np.inf), level), 0).astype(np.int8)
        calm = raw == 0  # an alarm does not teach the baseline that the burst is normal
        calm_loggers = calm[self.logger_zone] if len(self.logger_zone) else np.zeros(0, dtype=bool)
        self.scorer.learn(st["flow"], b, end, x, calm, fexp, fstep)
        self.scorer.learn(st["pressure"], b, end, px, calm_loggers, pexp, pstep)
        stamp[b % self.scorer.size] = b
        slots = np.flatnonzero(scoreable)
        if not len(slots):
            return None
        t = np.full(len(slots), end, dtype=np.int64)
        return Evaluation(slots, t, raw[slots], fstep[slots], score[slots],
                          extra={"where": [where[s] for s in slots]})

    def describe(self, grade: int, value: float, score: float, unit: str) -> str:
        return (f"zone inflow stepped up {value:.3g} m3/h against the same time on earlier days while pressures "
                f"fell: {score:.1f} sigma of evidence (limit {self.levels.threshold_for(grade):g}), burst?")
