"""LeakDB's scoring and its minimum-night-flow (MNF) baseline, reimplemented in numpy.

Source: KIOS-Research/LeakDB, ``CCWI-WDSA2018/Scoring Function/scoring_algorithm.m`` and
``CCWI-WDSA2018/Detection Algorithms/MNF/algorithmMNF.m`` (Vrachimis et al., "LeakDB: a benchmark
dataset for leakage diagnosis in water distribution networks", WDSA/CCWI 2018). Scoring against the
same metrics and the same baseline detector lets our detections be compared with the published numbers.

Deliberate differences from the MATLAB code:

- The after-fault window (``tw_ex``, 10 steps = 5 h at 30-min steps) is clipped to the series end per
  fault. The MATLAB code overwrites ``tw_ex`` when clipping and never resets it, so every later fault
  in the loop inherits the shorter window.
- A fault that lasts to the final step is scored (the MATLAB code finds ends with ``diff`` and crashes
  or mis-pairs starts/ends there); a fault starting at step 0 is also found.
- Ratios are fractions in 0..1, not ×100, and are ``None`` when undefined rather than NaN.
- ``alpha`` defaults to 5, the value in the code; the paper's formula says 6.

Kept as in LeakDB: the early-detection window runs ``after_steps`` past the fault, so an alarm that clears
exactly when the leak ends covers L / (L + 10) of it and fails the 0.75 persistence test unless the leak
lasts more than 30 steps; short leaks need alarms that outlast them.

The MNF detector keeps LeakDB's within-day look-ahead: a day's label is decided from that day's
minimum and then copied to all of the day's steps, including steps before the minimum occurred.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "LeakdbScore",
    "early_detection_scores",
    "mnf_labels",
    "resample_mean",
    "score_leakdb",
    "step_labels",
]


@dataclass(frozen=True)
class LeakdbScore:
    """Pooled confusion counts and LeakDB's ratios (fractions; ``None`` where the denominator is 0)."""

    tp: int
    tn: int
    fp: int
    fn: int
    tpr: float | None
    tnr: float | None
    f1: float | None
    sed: float | None
    faults: int


def _as_labels(name: str, a: np.ndarray) -> np.ndarray:
    arr = np.atleast_2d(np.asarray(a))
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D (scenarios × steps), got shape {arr.shape}")
    if arr.size and not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{name} must contain only 0/1 labels")
    return arr.astype(bool)


def _runs(row: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of True as (first index, last index), both inclusive."""
    padded = np.concatenate(([False], row, [False])).astype(np.int8)
    edges = np.diff(padded)
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1
    return [(int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


def early_detection_scores(truth: np.ndarray, alarms: np.ndarray, *, after_steps: int = 10,
                           persistence: float = 0.75, alpha: float = 5.0) -> list[float]:
    """LeakDB's per-fault early-detection score (ideal 1 each), faults in row-major order.

    A fault is a maximal run of 1s in ``truth``. Its detection window starts at the fault's first step and
    runs ``after_steps`` past its last step (clipped to the series end), so a late but lasting alarm still
    earns credit. The delay Dt is the window offset of the first alarm; the alarm must then stay on for
    more than ``persistence`` of the rest of the window, else the fault scores 0 (flicker is not detection).
    Score = 2 / (1 + exp(alpha * Dt / tw)) with tw = window length - 1.
    """
    t = _as_labels("truth", truth)
    a = _as_labels("alarms", alarms)
    if t.shape != a.shape:
        raise ValueError(f"truth {t.shape} and alarms {a.shape} must have the same shape")
    if after_steps < 0:
        raise ValueError("after_steps must be >= 0")
    n_steps = t.shape[1]
    scores: list[float] = []
    for truth_row, alarm_row in zip(t, a, strict=True):
        for s, e in _runs(truth_row):
            tw_ex = min(after_steps, n_steps - 1 - e)
            tw = e - s + tw_ex
            window = alarm_row[s:s + tw + 1]
            hits = np.flatnonzero(window)
            if hits.size == 0:
                scores.append(0.0)
                continue
            dt = int(hits[0])
            if not float(window[dt:].mean()) > persistence:
                scores.append(0.0)
                continue
            scores.append(2.0 / (1.0 + math.exp(alpha / max(tw, 1) * dt)))
    return scores


def score_leakdb(truth: np.ndarray, alarms: np.ndarray, *, mask: np.ndarray | None = None,
                 after_steps: int = 10, persistence: float = 0.75, alpha: float = 5.0) -> LeakdbScore:
    """Score 0/1 ``alarms`` against 0/1 ``truth`` (scenarios × steps, or one 1-D scenario) as LeakDB does.

    The confusion matrix is pooled over every step of every scenario; ``mask`` (True = step counts) lets
    callers drop steps, e.g. around events that are not leaks, from it. SED fault runs always come from
    the unmasked truth, so masking never hides a fault from the early-detection score.
    """
    t = _as_labels("truth", truth)
    a = _as_labels("alarms", alarms)
    if t.shape != a.shape:
        raise ValueError(f"truth {t.shape} and alarms {a.shape} must have the same shape")
    if mask is None:
        m = np.ones_like(t, dtype=bool)
    else:
        m = np.atleast_2d(np.asarray(mask, dtype=bool))
        if m.shape != t.shape:
            raise ValueError(f"mask {m.shape} must have the same shape as truth {t.shape}")
    tp = int((t & a & m).sum())
    tn = int((~t & ~a & m).sum())
    fp = int((~t & a & m).sum())
    fn = int((t & ~a & m).sum())
    faults = early_detection_scores(t, a, after_steps=after_steps, persistence=persistence, alpha=alpha)
    return LeakdbScore(
        tp=tp, tn=tn, fp=fp, fn=fn,
        tpr=tp / (tp + fn) if tp + fn else None,
        tnr=tn / (tn + fp) if tn + fp else None,
        f1=2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else None,
        sed=sum(faults) / len(faults) if faults else None,
        faults=len(faults),
    )


def mnf_labels(flow: np.ndarray, *, gamma: float, window_days: int = 10, steps_per_day: int = 48) -> np.ndarray:
    """LeakDB's MNF baseline: flag a day whose minimum flow exceeds the window's lowest minimum by > gamma.

    The reference window starts as the first ``window_days`` days (which are never flagged) and slides
    forward only over unflagged days, so a lasting leak keeps being compared against pre-leak nights
    instead of becoming the new normal. Each day's label is copied to all of its steps (LeakDB's
    within-day look-ahead). NaN samples are ignored; an all-NaN day is labelled 0 and never enters the
    window. Returns int8 0/1 of the same length as ``flow``.
    """
    f = np.asarray(flow, dtype=float)
    if f.ndim != 1:
        raise ValueError(f"flow must be 1-D, got shape {f.shape}")
    if steps_per_day <= 0 or window_days <= 0:
        raise ValueError("steps_per_day and window_days must be positive")
    if f.size % steps_per_day:
        raise ValueError(f"flow length {f.size} is not a whole number of days of {steps_per_day} steps")
    days = f.reshape(-1, steps_per_day)
    has_data = ~np.isnan(days).all(axis=1)
    mnf = np.full(days.shape[0], np.nan)
    mnf[has_data] = np.nanmin(days[has_data], axis=1)

    day_labels = np.zeros(days.shape[0], dtype=np.int8)
    window = [i for i in range(min(window_days, days.shape[0])) if has_data[i]]
    for j in range(window_days, days.shape[0]):
        if not has_data[j]:
            continue
        if window:
            ref = float(mnf[window].min())
            if mnf[j] - ref > gamma * ref:
                day_labels[j] = 1
                continue
        window.append(j)
        if len(window) > window_days:
            window.pop(0)
    return np.repeat(day_labels, steps_per_day)


def resample_mean(time_ns: np.ndarray, value: np.ndarray, *, start_ns: int, step_ns: int, steps: int) -> np.ndarray:
    """Average irregular samples into ``steps`` bins [start_ns + k*step_ns, start_ns + (k+1)*step_ns).

    Used to bring our 5-minute zone inflow onto LeakDB's 30-minute grid. Samples outside the grid and NaN
    values are dropped; a bin without samples is NaN (so ``mnf_labels`` ignores it).
    """
    if step_ns <= 0 or steps < 0:
        raise ValueError("step_ns must be positive and steps non-negative")
    t = np.asarray(time_ns, dtype=np.int64)
    v = np.asarray(value, dtype=float)
    if t.shape != v.shape or t.ndim != 1:
        raise ValueError(f"time_ns {t.shape} and value {v.shape} must be 1-D of the same length")
    idx = (t - np.int64(start_ns)) // np.int64(step_ns)
    keep = (t >= start_ns) & (idx < steps) & ~np.isnan(v)
    sums = np.bincount(idx[keep], weights=v[keep], minlength=steps)
    counts = np.bincount(idx[keep], minlength=steps)
    out = np.full(steps, np.nan)
    np.divide(sums, counts, out=out, where=counts > 0)
    return out


def step_labels(starts_ns: Sequence[int] | np.ndarray, ends_ns: Sequence[int] | np.ndarray, *, start_ns: int,
                step_ns: int, steps: int) -> np.ndarray:
    """0/1 per grid step: 1 where step [start_ns + k*step_ns, start_ns + (k+1)*step_ns) overlaps any [start, end).

    Turns leak windows (truth) and alert-open intervals (alarms) into LeakDB-style step labels. Ends are
    exclusive, so an interval ending exactly on a step boundary does not mark the next step; any partial
    overlap marks the step. Empty or reversed intervals mark nothing.
    """
    if step_ns <= 0 or steps < 0:
        raise ValueError("step_ns must be positive and steps non-negative")
    starts = [int(s) for s in np.asarray(starts_ns).ravel()]
    ends = [int(e) for e in np.asarray(ends_ns).ravel()]
    if len(starts) != len(ends):
        raise ValueError(f"{len(starts)} starts but {len(ends)} ends")
    marks = np.zeros(steps + 1, dtype=np.int64)
    for s, e in zip(starts, ends, strict=True):
        if e <= s:
            continue
        first = max((s - start_ns) // step_ns, 0)
        last = min(-((start_ns - e) // step_ns) - 1, steps - 1)  # ceil((e - start) / step) - 1
        if first > last:
            continue
        marks[first] += 1
        marks[last + 1] -= 1
    return (np.cumsum(marks[:steps]) > 0).astype(np.int8)
