"""Deadman: a sensor that has gone quiet. Judged on event time (the stream's watermark), so a replay
finds the same silences a live run would; sensors never heard from count from the first reading (and,
after going live from learned history, every sensor counts from the first live reading)."""

from __future__ import annotations

from typing import Any

import numpy as np

from rules.detectors.base import Evaluation, Layer, SensorDetector
from rules.levels import NO_TIME
from rules.schema import DeadmanRule


class DeadmanDetector(SensorDetector):
    kind = "deadman"
    rule: DeadmanRule

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        if self.rule.after is not None:
            after = np.full(len(self.subjects), self.rule.after)
        else:
            after = self.rule.missing * self.catalog.interval_s[self.subjects]
        self.after_ns = (after * 1e9).astype(np.int64)
        self.hold_ns = 0

    def new_state(self) -> dict[str, Any]:
        # time of the last raise or clear emitted: a straggler must never move this key back in time
        return {"changed_at": np.full(len(self.subjects), NO_TIME, dtype=np.int64)}

    def _deadline(self, slots: np.ndarray, prev_t: np.ndarray, first_wm: int) -> np.ndarray:
        """Silence counts from the last reading, or from when the engine began listening if later (a
        sensor never heard; every sensor after going live from learned history)."""
        return self._since(prev_t, first_wm) + self.after_ns[slots]

    @staticmethod
    def _since(prev_t: np.ndarray, first_wm: int) -> np.ndarray:
        return np.where(prev_t == NO_TIME, first_wm, np.maximum(prev_t, first_wm))

    def evaluate(self, st: dict[str, Any], slots: np.ndarray, layer: Layer, sel: np.ndarray | slice,
                 level: np.ndarray) -> list[Evaluation]:
        t = layer.t[sel]
        deadline = self._deadline(slots, layer.prev_t[sel], layer.first_wm)
        went_silent = (level == 0) & (layer.wm_before[sel] >= deadline)
        grade = np.int8(self.rule.severity)
        s = slots[went_silent]
        silent_s = (deadline[went_silent] - self._since(layer.prev_t[sel], layer.first_wm)[went_silent]) / 1e9
        raised_at = np.maximum(deadline[went_silent], st["changed_at"][s])
        missed = Evaluation(s, raised_at, np.full(len(s), grade, dtype=np.int8), silent_s, silent_s)
        st["changed_at"][s] = raised_at
        # a straggler from before the alarm cannot clear it in the past
        raised = (level > 0) | went_silent
        back_t = np.where(raised, np.maximum(t, st["changed_at"][slots]), t)
        st["changed_at"][slots] = np.where(raised, back_t, st["changed_at"][slots])
        back = Evaluation(slots, back_t, np.zeros(len(slots), dtype=np.int8), layer.v[sel],
                          (t - np.where(layer.prev_t[sel] == NO_TIME, t, layer.prev_t[sel])) / 1e9)
        return [missed, back]

    def sweep(self, st: dict[str, Any], level: np.ndarray, last_t: np.ndarray, watermark: int,
              first_wm: int) -> Evaluation:
        """Sensors silent at the end of a batch: raised at the moment they became overdue."""
        slots = np.arange(len(self.subjects))
        deadline = self._deadline(slots, last_t, first_wm)
        due = (level == 0) & (deadline <= watermark)
        s = slots[due]
        since = self._since(last_t, first_wm)[due]
        raised_at = np.maximum(deadline[due], st["changed_at"][s])
        st["changed_at"][s] = raised_at
        silent_s = (deadline[due] - since) / 1e9
        return Evaluation(s, raised_at, np.full(len(s), np.int8(self.rule.severity), dtype=np.int8),
                          silent_s, silent_s)

    def describe(self, grade: int, value: float, score: float, unit: str) -> str:
        return f"no data for {score / 60:.0f} min (deadman)"
