"""Zone balance: net inflow against its learned profile. Water that enters a zone and is not used there
is lost; a burst shows as a jump in net inflow well before customers call."""

from __future__ import annotations

from typing import Any

import numpy as np

from rules.baseline import Baseline
from rules.calendar import holiday_days
from rules.detectors.base import Evaluation
from rules.detectors.zone import ZoneDetector
from rules.levels import LevelTable
from rules.schema import ZoneBalanceRule
from rules.zone_flows import FinalBucket


class ZoneBalanceDetector(ZoneDetector):
    kind = "zone_balance"
    rule: ZoneBalanceRule

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.levels = LevelTable.of(self.rule.z, self.rule.severity)
        interval = np.full(len(self.subjects), self.settings.zone_bucket)
        self.baseline = Baseline(self.rule.baseline, interval, self.settings.utc_offset_h,
                                 holiday_days(self.settings.holidays))

    def new_state(self) -> dict[str, Any]:
        return {"baseline": self.baseline.new_state(len(self.subjects))}

    def evaluate_bucket(self, st: dict[str, Any], bucket: FinalBucket, level: Any) -> Evaluation | None:
        x_all = bucket.net[self.subjects]
        slots = np.flatnonzero(~np.isnan(x_all))
        if len(slots) == 0:
            return None
        x = x_all[slots]
        t = np.full(len(slots), bucket.end_ns, dtype=np.int64)
        cell = self.baseline.cells(slots, t - int(self.settings.zone_bucket * 1e9))
        z, dev, ready = self.baseline.score(st["baseline"], cell, x)
        mean = x - dev
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(np.abs(mean) > 1e-9, dev / np.abs(mean), np.inf)
        raw = np.where(ready & (ratio >= self.rule.min_ratio), self.levels.above(z, level[slots]), 0)
        raw = raw.astype(np.int8)
        learn = raw == 0
        if learn.any():
            self.baseline.learn(st["baseline"], cell[learn], x[learn], self.baseline.alpha[slots[learn]])
        return Evaluation(slots, t, raw, x, z)

    def describe(self, grade: int, value: float, score: float, unit: str) -> str:
        return (f"zone net inflow {value:.4g} m3/h is {score:.1f} sigma above its learned profile "
                f"(limit {self.levels.threshold_for(grade):g}): burst or unmetered outflow?")
