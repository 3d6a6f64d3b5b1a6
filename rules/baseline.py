"""Learned baselines: EWMA mean and variance per subject, optionally per hour of day (weekdays and
weekends apart) or of the week.

Weights are set from the rule's half-life in event time and the subject's reporting interval, so a
5-minute logger and a 1-minute meter forget at the same pace.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rules.calendar import weekend_days
from rules.schema import BaselineParams

HOUR_NS = 3_600_000_000_000
_SLOTS = {"none": 1, "hour_of_day": 24, "weekday_weekend_hour": 48, "hour_of_week": 168}


@dataclass
class BaselineState:
    mean: np.ndarray  # (n, slots)
    var: np.ndarray
    count: np.ndarray  # int32

    @classmethod
    def new(cls, n: int, slots: int) -> BaselineState:
        return cls(np.zeros((n, slots)), np.zeros((n, slots)), np.zeros((n, slots), dtype=np.int32))


class Baseline:
    def __init__(self, params: BaselineParams, interval_s: np.ndarray, utc_offset_h: float,
                 holidays: np.ndarray | None = None) -> None:
        self.params = params
        self.holidays = holidays if holidays is not None else np.zeros(0, dtype=np.int64)
        self.slots = _SLOTS[params.profile]
        # readings that land in one profile slot during one half-life
        per_slot = params.halflife / (np.asarray(interval_s, dtype=np.float64) * self.slots)
        self.alpha = 1.0 - np.power(0.5, 1.0 / np.maximum(per_slot, 1.0))
        self.offset_ns = round(utc_offset_h * HOUR_NS)

    def new_state(self, n: int) -> BaselineState:
        return BaselineState.new(n, self.slots)

    def slot_of(self, t: np.ndarray) -> np.ndarray:
        if self.slots == 1:
            return np.zeros(len(t), dtype=np.intp)
        hours = (t + self.offset_ns) // HOUR_NS
        week_hour = (hours + 72) % 168  # epoch day 0 was a Thursday; 0 is Monday 00:00 local
        if self.slots == 168:
            return week_hour.astype(np.intp)
        if self.slots == 48:  # Saturday, Sunday and holidays share a profile of their own
            weekend = weekend_days(hours // 24, self.holidays)
            return (hours % 24 + 24 * weekend).astype(np.intp)
        return (hours % 24).astype(np.intp)

    def cells(self, subj: np.ndarray | slice, t: np.ndarray) -> np.ndarray | slice:
        """Flat indices into the (subject, profile slot) arrays for readings at times t (a slice stays a
        slice when there is no profile: every subject, in order)."""
        if self.slots == 1:
            return subj
        if isinstance(subj, slice):
            subj = np.arange(len(t))
        return subj * self.slots + self.slot_of(t)

    def score(self, st: BaselineState, cell: np.ndarray | slice,
              x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(z, deviation, ready): ready once the slot has seen `warmup` readings."""
        mean = st.mean.ravel()[cell]
        sd = np.sqrt(st.var.ravel()[cell])
        if self.params.min_sigma > 0:
            sd = np.maximum(sd, self.params.min_sigma)
        dev = x - mean
        with np.errstate(divide="ignore", invalid="ignore"):
            z = dev / sd
        zero = sd == 0
        if zero.any():  # no spread learned yet: any deviation is infinitely unusual, none is normal
            d = dev[zero]
            z[zero] = np.where(d == 0, 0.0, np.copysign(np.inf, d))
        ready = st.count.ravel()[cell] >= self.params.warmup
        return z, dev, ready

    def learn(self, st: BaselineState, cell: np.ndarray | slice, x: np.ndarray, alpha: np.ndarray) -> None:
        """West's incremental EWMA; the first readings are a plain running mean (fast warm-up). With
        `learn_within`, a ready slot skips readings that far off: Gaussian noise almost never is (1 in 16 000
        at 4 sd), an anomaly's first readings are, and each would widen the spread by some tens of per cent.
        It suits series whose level is followed elsewhere (a step less today's offset): a lasting shift of
        more than about twice `learn_within` sd would never be learned."""
        mean_a, var_a, count_a = st.mean.ravel(), st.var.ravel(), st.count.ravel()
        if self.params.learn_within is not None:
            if isinstance(cell, slice):
                cell = np.arange(mean_a.size)[cell]
            sd = np.maximum(np.sqrt(var_a[cell]), self.params.min_sigma)
            skip = (np.abs(x - mean_a[cell]) > self.params.learn_within * sd) & (sd > 0) \
                & (count_a[cell] >= self.params.warmup)
            if skip.any():
                keep = ~skip
                cell, x, alpha = cell[keep], x[keep], np.broadcast_to(alpha, skip.shape)[keep]
        n = count_a[cell]
        a = np.maximum(alpha, 1.0 / (n + 1.0))
        mean = mean_a[cell]
        diff = x - mean
        incr = a * diff
        mean_a[cell] = mean + incr
        var_a[cell] = (1.0 - a) * (var_a[cell] + diff * incr)
        count_a[cell] = n + 1
