"""Rate of change: how far a value moved within a window, from a small ring of recent readings.

A burst drops pressure by tens of kPa within minutes; a steady diurnal sag never moves that fast.
Once raised, the alarm holds while the change within the window stays above half the limit, so a
change hovering at the limit does not flap; the lasting state (pressure still low) is for the
threshold and baseline rules to judge.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rules.detectors.base import Evaluation, Layer, SensorDetector, dense
from rules.durations import format_duration
from rules.levels import NO_TIME, LevelTable
from rules.schema import RateOfChangeRule


class RateOfChangeDetector(SensorDetector):
    kind = "rate_of_change"
    rule: RateOfChangeRule

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.levels = LevelTable.of(self.rule.change, self.rule.severity)
        self.within_ns = int(self.rule.within * 1e9)
        min_interval = float(self.catalog.interval_s[self.subjects].min()) if len(self.subjects) else 60.0
        self.depth = int(min(self.rule.max_points, math.ceil(self.rule.within / min_interval) + 2))

    def new_state(self) -> dict[str, Any]:
        n, k = len(self.subjects), self.depth
        return {"buf_t": np.full((n, k), NO_TIME, dtype=np.int64), "buf_v": np.zeros((n, k)),
                "pos": np.zeros(n, dtype=np.int32)}

    def evaluate(self, st: dict[str, Any], slots: np.ndarray, layer: Layer, sel: np.ndarray | slice,
                 level: np.ndarray) -> Evaluation:
        t, v = layer.t[sel], layer.v[sel]
        # The ring is in insertion (= time) order starting at `pos`, empty cells (NO_TIME) first, so the
        # oldest reading inside the window is the first one after those older than the window.
        pos = st["pos"][slots]
        rows_t = st["buf_t"][dense(slots, len(self.subjects))]
        older = (rows_t < (t - self.within_ns)[:, None]).sum(axis=1)
        has_ref = older < self.depth
        oldest = (pos + older) % self.depth
        amount = np.where(has_ref, self._signed(v - st["buf_v"][slots, oldest]), 0.0)
        raw = self.levels.above(amount, level, hyst_ratio=0.5)
        st["buf_t"][slots, pos] = t
        st["buf_v"][slots, pos] = v
        st["pos"][slots] = (pos + 1) % self.depth
        return Evaluation(slots, t, raw, v, amount)

    def _signed(self, change: np.ndarray) -> np.ndarray:
        if self.rule.direction == "falling":
            return -change
        if self.rule.direction == "rising":
            return change
        return np.abs(change)

    def describe(self, grade: int, value: float, score: float, unit: str) -> str:
        verb = {"falling": "fell", "rising": "rose", "either": "moved"}[self.rule.direction]
        return (f"{verb} {score:.4g} {unit} within {format_duration(self.rule.within)} (limit "
                f"{self.levels.threshold_for(grade):g} {unit}); now {value:.4g} {unit}")
