"""Row-wise helpers for zone detectors: groups of sensors (a zone's loggers, a logger's peers) as padded
index matrices, so a bucket is judged with a few numpy calls instead of a Python loop per group."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def padded(groups: Sequence[np.ndarray]) -> np.ndarray:
    """Index lists as a (groups, longest) int matrix, padded with -1."""
    width = max((len(g) for g in groups), default=0)
    out = np.full((len(groups), width), -1, dtype=np.int64)
    for i, g in enumerate(groups):
        out[i, :len(g)] = g
    return out


def gather(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """values[index] with NaN where the index is padding (-1)."""
    if index.size == 0:
        return np.full(index.shape, np.nan)
    return np.where(index >= 0, values[np.maximum(index, 0)], np.nan)


def count_rows(m: np.ndarray) -> np.ndarray:
    """Non-NaN values per row."""
    return (~np.isnan(m)).sum(axis=1)


def nanmedian_rows(m: np.ndarray) -> np.ndarray:
    """Median of each row ignoring NaN (NaN for a row without values). A sort and two picks: on rows of a
    few dozen values this is ten times faster than numpy's nanmedian, which the detectors call per bucket."""
    if m.shape[1] == 0:
        return np.full(m.shape[0], np.nan)
    s = np.sort(m, axis=1)  # NaNs sort last
    k = count_rows(s)
    lo = np.take_along_axis(s, (np.maximum(k - 1, 0) // 2)[:, None], axis=1)[:, 0]
    hi = np.take_along_axis(s, (k // 2)[:, None].clip(max=m.shape[1] - 1), axis=1)[:, 0]
    return np.where(k > 0, (lo + hi) / 2, np.nan)
