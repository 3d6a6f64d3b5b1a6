"""Flatline: a sensor that repeats itself for too long is probably stuck, not calm."""

from __future__ import annotations

from typing import Any

import numpy as np

from rules.detectors.base import Evaluation, Layer, SensorDetector
from rules.levels import NO_TIME
from rules.schema import FlatlineRule


class FlatlineDetector(SensorDetector):
    kind = "flatline"
    rule: FlatlineRule

    def new_state(self) -> dict[str, Any]:
        n = len(self.subjects)
        return {"run_v": np.zeros(n), "run_start": np.full(n, NO_TIME, dtype=np.int64),
                "run_n": np.zeros(n, dtype=np.int32)}

    def evaluate(self, st: dict[str, Any], slots: np.ndarray, layer: Layer, sel: np.ndarray | slice,
                 level: np.ndarray) -> Evaluation:
        t, v = layer.t[sel], layer.v[sel]
        run_n = st["run_n"][slots]
        same = (run_n > 0) & (np.abs(v - st["run_v"][slots]) <= self.rule.tolerance)
        run_n = np.where(same, run_n + 1, 1)
        start = np.where(same, st["run_start"][slots], t)
        st["run_n"][slots] = run_n
        st["run_start"][slots] = start
        st["run_v"][slots] = np.where(same, st["run_v"][slots], v)
        stuck_s = (t - start) / 1e9
        stuck = (stuck_s >= self.rule.duration) & (run_n >= self.rule.min_readings)
        if self.rule.above is not None:
            stuck &= st["run_v"][slots] > self.rule.above
        raw = np.where(stuck, np.int8(self.rule.severity), np.int8(0)).astype(np.int8)
        return Evaluation(slots, t, raw, v, stuck_s)

    def describe(self, grade: int, value: float, score: float, unit: str) -> str:
        return f"stuck at {value:.6g} {unit} for {score / 60:.0f} min (sensor fault?)"
