"""Threshold: above a high or below a low limit, with hysteresis so a value hovering at the limit
does not flap."""

from __future__ import annotations

from typing import Any

import numpy as np

from rules.detectors.base import Evaluation, Layer, SensorDetector
from rules.levels import LevelTable
from rules.schema import ThresholdRule


class ThresholdDetector(SensorDetector):
    kind = "threshold"
    rule: ThresholdRule

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.high = LevelTable.of(self.rule.high, self.rule.severity)
        self.low = LevelTable.of(self.rule.low, self.rule.severity)

    def new_state(self) -> dict[str, Any]:
        return {}

    def evaluate(self, st: dict[str, Any], slots: np.ndarray, layer: Layer, sel: np.ndarray | slice,
                 level: np.ndarray) -> Evaluation:
        v = layer.v[sel]
        hyst = self.rule.hysteresis
        raw = np.zeros(len(v), dtype=np.int8)
        if self.high:
            raw = np.maximum(raw, self.high.above(v, level, hyst))
        if self.low:
            raw = np.maximum(raw, self.low.below(v, level, hyst))
        return Evaluation(slots, layer.t[sel], raw, v, v)

    def describe(self, grade: int, value: float, score: float, unit: str) -> str:
        if self.high and (not self.low or value > self.low.threshold_for(1)):
            return f"{value:.4g} {unit} above {self.high.threshold_for(grade):g} {unit}"
        return f"{value:.4g} {unit} below {self.low.threshold_for(grade):g} {unit}"
