"""Grades from numbers, and the debounce that turns per-reading grades into state changes.

Every detector reduces its evidence to a raw grade per reading (0 = normal, 1-3 = yellow/orange/red);
`track` then applies the rule's hold time and reports only changes, so all kinds share one semantics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sentinel.severity import Severity

NO_TIME = np.iinfo(np.int64).min


@dataclass(frozen=True)
class LevelTable:
    """Thresholds by grade, worst last: [(grade, value), ...]."""

    grades: tuple[int, ...]
    values: tuple[float, ...]

    @classmethod
    def of(cls, spec: float | dict[Severity, float] | None, default: Severity) -> LevelTable:
        if spec is None:
            return cls((), ())
        if isinstance(spec, dict):
            items = sorted((int(k), float(v)) for k, v in spec.items())
        else:
            items = [(int(default), float(spec))]
        return cls(tuple(g for g, _ in items), tuple(v for _, v in items))

    def __bool__(self) -> bool:
        return bool(self.grades)

    def lowest(self) -> float:
        return self.values[0]

    def above(self, x: np.ndarray, current: np.ndarray, hyst: float = 0.0, hyst_ratio: float = 1.0) -> np.ndarray:
        """Worst grade whose threshold x exceeds; a grade already held needs only thr*ratio - hyst."""
        raw = np.zeros(len(x), dtype=np.int8)
        for grade, thr in zip(self.grades, self.values, strict=True):
            eff = np.where(current >= grade, thr * hyst_ratio - hyst, thr)
            raw = np.where(x > eff, np.int8(grade), raw)
        return raw

    def below(self, x: np.ndarray, current: np.ndarray, hyst: float = 0.0) -> np.ndarray:
        """Worst grade whose threshold x falls under (for `low` limits: lower is worse)."""
        raw = np.zeros(len(x), dtype=np.int8)
        for grade, thr in zip(self.grades, self.values, strict=True):
            eff = np.where(current >= grade, thr + hyst, thr)
            raw = np.where(x < eff, np.maximum(raw, np.int8(grade)), raw)
        return raw

    def threshold_for(self, grade: int) -> float:
        for g, v in zip(self.grades, self.values, strict=True):
            if g >= grade:
                return v
        return self.values[-1]


@dataclass
class TrackerState:
    level: np.ndarray  # int8 current grade per subject
    since: np.ndarray  # int64 time the raw grade first exceeded the current one, NO_TIME if not

    @classmethod
    def new(cls, n: int) -> TrackerState:
        return cls(np.zeros(n, dtype=np.int8), np.full(n, NO_TIME, dtype=np.int64))


def track(st: TrackerState, slots: np.ndarray, t: np.ndarray, raw: np.ndarray,
          hold_ns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply one reading per subject; returns (changed mask, old grade, new grade).

    A rise must hold for `hold_ns` before it counts; a fall counts at once (hysteresis is the
    detector's business, so clearing is never delayed twice).
    """
    cur = st.level[slots]
    up = raw > cur
    if not up.any():  # the common case: nothing rises; only falls change state, pending rises lapse
        down = raw < cur
        if hold_ns > 0:
            st.since[slots] = NO_TIME
        if not down.any():
            return down, cur, cur
        new = np.where(down, raw, cur)
        st.level[slots] = new
        return down, cur, new
    since = st.since[slots]
    since = np.where(up, np.where(since == NO_TIME, t, since), NO_TIME)
    fire = up & (t - since >= hold_ns)
    down = raw < cur
    changed = fire | down
    new = np.where(changed, raw, cur)
    st.since[slots] = np.where(fire, NO_TIME, since)
    st.level[slots] = new
    return changed, cur, new
