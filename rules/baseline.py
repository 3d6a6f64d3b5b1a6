"""Learned baselines: EWMA mean and variance per subject, optionally per hour of day or week.

Weights are set from the rule's half-life in event time and the subject's reporting interval, so a
5-minute logger and a 1-minute meter forget at the same pace.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rules.schema import BaselineParams

HOUR_NS = 3_600_000_000_000
_SLOTS = {"none": 1, "hour_of_day": 24, "hour_of_week": 168}


@dataclass
class BaselineState:
    mean: np.ndarray  # (n, slots)
    var: np.ndarray
    count: np.ndarray  # int32

    @classmethod
    def new(cls, n: int, slots: int) -> BaselineState:
        return cls(np.zeros((n, slots)), np.zeros((n, slots)), np.zeros((n, slots), dtype=np.int32))


class Baseline:
    def __init__(self, params: BaselineParams, interval_s: np.ndarray, utc_offset_h: float) -> None:
        self.params = params
        self.slots = _SLOTS[params.profile]
        # readings that land in one profile slot during one half-life
        per_slot = params.halflife / (np.asarray(interval_s, dtype=np.float64) * self.slots)
        self.alpha = 1.0 - np.power(0.5, 1.0 / np.maximum(per_slot, 1.0))
        self.offset_ns = int(round(utc_offset_h * HOUR_NS))

    def new_state(self, n: int) -> BaselineState:
        return BaselineState.new(n, self.slots)

    def slot_of(self, t: np.ndarray) -> np.ndarray:
        if self.slots == 1:
            return np.zeros(len(t), dtype=np.intp)
        hours = (t + self.offset_ns) // HOUR_NS
        if self.slots == 168:  # epoch day 0 was a Thursday; slot 0 is Monday 00:00 local
            return ((hours + 72) % 168).astype(np.intp)
        return (hours % 24).astype(np.intp)

    def score(self, st: BaselineState, subj: np.ndarray, slot: np.ndarray,
              x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(z, deviation, ready): ready once the slot has seen `warmup` readings."""
        mean = st.mean[subj, slot]
        sd = np.maximum(np.sqrt(st.var[subj, slot]), self.params.min_sigma)
        dev = x - mean
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(sd > 0, dev / np.where(sd > 0, sd, 1.0), np.where(dev == 0, 0.0, np.inf * np.sign(dev)))
        ready = st.count[subj, slot] >= self.params.warmup
        return z, dev, ready

    def learn(self, st: BaselineState, subj: np.ndarray, slot: np.ndarray, x: np.ndarray,
              alpha: np.ndarray) -> None:
        """West's incremental EWMA; the first readings are a plain running mean (fast warm-up)."""
        n = st.count[subj, slot]
        a = np.maximum(alpha, 1.0 / (n + 1.0))
        mean = st.mean[subj, slot]
        diff = x - mean
        incr = a * diff
        st.mean[subj, slot] = mean + incr
        st.var[subj, slot] = (1.0 - a) * (st.var[subj, slot] + diff * incr)
        st.count[subj, slot] = n + 1
