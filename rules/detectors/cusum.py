"""CUSUM on standardised residuals: accumulates small persistent shifts (a growing leak) that no single
reading shows. Learning pauses while evidence builds, so the drift is not learned away."""

from __future__ import annotations

from typing import Any

import numpy as np

from rules.baseline import Baseline
from rules.calendar import holiday_days
from rules.detectors.base import Evaluation, Layer, SensorDetector
from rules.levels import LevelTable
from rules.schema import CusumRule


class CusumDetector(SensorDetector):
    kind = "cusum"
    rule: CusumRule

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.levels = LevelTable.of(self.rule.h, self.rule.severity)
        self.baseline = Baseline(self.rule.baseline, self.catalog.interval_s[self.subjects],
                                 self.settings.utc_offset_h, holiday_days(self.settings.holidays))

    def new_state(self) -> dict[str, Any]:
        n = len(self.subjects)
        return {"baseline": self.baseline.new_state(n), "s_hi": np.zeros(n), "s_lo": np.zeros(n)}

    def evaluate(self, st: dict[str, Any], slots: np.ndarray, layer: Layer, sel: np.ndarray | slice,
                 level: np.ndarray) -> Evaluation:
        t, v = layer.t[sel], layer.v[sel]
        bst = st["baseline"]
        cell = self.baseline.cells(slots, t)
        z, _dev, ready = self.baseline.score(bst, cell, v)
        z = np.clip(np.nan_to_num(z, nan=0.0, posinf=50.0, neginf=-50.0), -50.0, 50.0)
        k = self.rule.k
        # capped at twice the worst limit, so the alarm clears within ~h/k readings once the shift ends
        cap = 2.0 * max(self.levels.values)
        s_hi = np.where(ready, np.clip(st["s_hi"][slots] + z - k, 0.0, cap), 0.0)
        s_lo = np.where(ready, np.clip(st["s_lo"][slots] - z - k, 0.0, cap), 0.0)
        st["s_hi"][slots], st["s_lo"][slots] = s_hi, s_lo
        d = self.rule.direction
        stat = s_hi if d == "high" else s_lo if d == "low" else np.maximum(s_hi, s_lo)
        raw = self.levels.above(stat, level, hyst_ratio=0.5)
        learn = ready & (stat < self.levels.lowest() / 2) | ~ready
        if learn.any():
            self.baseline.learn(bst, cell[learn], v[learn], self.baseline.alpha[slots[learn]])
        return Evaluation(slots, t, raw, v, stat)

    def describe(self, grade: int, value: float, score: float, unit: str) -> str:
        way = {"high": "upward", "low": "downward", "either": "persistent"}[self.rule.direction]
        return (f"{way} drift: CUSUM {score:.1f} (limit {self.levels.threshold_for(grade):g}); "
                f"now {value:.4g} {unit}")
