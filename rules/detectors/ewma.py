"""Deviation from a learned baseline (EWMA mean and variance), in standard deviations.

The baseline does not learn while the rule is alarming, so a lasting anomaly is not absorbed as normal.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rules.baseline import Baseline
from rules.calendar import holiday_days
from rules.detectors.base import Evaluation, Layer, SensorDetector, dense
from rules.levels import LevelTable
from rules.schema import EwmaRule


def directional(z: np.ndarray, direction: str) -> np.ndarray:
    if direction == "high":
        return z
    if direction == "low":
        return -z
    return np.abs(z)


class EwmaDetector(SensorDetector):
    kind = "ewma"
    rule: EwmaRule

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.levels = LevelTable.of(self.rule.z, self.rule.severity)
        self.baseline = Baseline(self.rule.baseline, self.catalog.interval_s[self.subjects],
                                 self.settings.utc_offset_h, holiday_days(self.settings.holidays))

    def new_state(self) -> dict[str, Any]:
        return {"baseline": self.baseline.new_state(len(self.subjects))}

    def evaluate(self, st: dict[str, Any], slots: np.ndarray, layer: Layer, sel: np.ndarray | slice,
                 level: np.ndarray) -> Evaluation:
        t, v = layer.t[sel], layer.v[sel]
        bst = st["baseline"]
        cell = self.baseline.cells(dense(slots, len(self.subjects)), t)
        z, dev, ready = self.baseline.score(bst, cell, v)
        zd = directional(z, self.rule.direction)
        big_enough = directional(dev, self.rule.direction) >= self.rule.min_deviation
        raw = np.where(ready & big_enough, self.levels.above(zd, level), np.int8(0)).astype(np.int8)
        learn = raw == 0
        if learn.all():
            self.baseline.learn(bst, cell, v, self.baseline.alpha[cell if isinstance(cell, slice) else slots])
        elif learn.any():
            self.baseline.learn(bst, slots[learn] if isinstance(cell, slice) else cell[learn], v[learn],
                                self.baseline.alpha[slots[learn]])
        return Evaluation(slots, t, raw, v, zd)

    def describe(self, grade: int, value: float, score: float, unit: str) -> str:
        return (f"{value:.4g} {unit} is {score:.1f} sigma from its learned baseline "
                f"(limit {self.levels.threshold_for(grade):g})")
