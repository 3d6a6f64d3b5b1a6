"""Row-wise medians over padded groups agree with numpy's nanmedian, NaNs and padding included."""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.detectors.rowwise import count_rows, gather, nanmedian_rows, padded


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 6), st.integers(0, 9), st.integers(0, 2**32 - 1))
def test_nanmedian_rows_matches_numpy(rows: int, cols: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = rng.normal(0, 10, (rows, cols)).round(1)
    m[rng.random((rows, cols)) < 0.3] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
        expected = np.nanmedian(m, axis=1) if cols else np.full(rows, np.nan)
    np.testing.assert_allclose(nanmedian_rows(m), expected, equal_nan=True)


def test_padded_groups_gather_with_nan_for_padding() -> None:
    index = padded([np.array([2, 0]), np.array([], dtype=np.int64), np.array([1])])
    assert index.tolist() == [[2, 0], [-1, -1], [1, -1]]
    values = np.array([10.0, 20.0, 30.0])
    got = gather(values, index)
    np.testing.assert_array_equal(got, [[30.0, 10.0], [np.nan, np.nan], [20.0, np.nan]])
    assert count_rows(got).tolist() == [2, 0, 1]
    np.testing.assert_array_equal(nanmedian_rows(got), [20.0, np.nan, 20.0])
