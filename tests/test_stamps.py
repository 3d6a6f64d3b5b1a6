"""History-ring bucket marks: int32 where bucket numbers fit for centuries, int64 below 10-second buckets."""

from __future__ import annotations

import numpy as np

from rules.detectors.stamps import empty_stamps

SECOND = 1_000_000_000


def test_five_minute_buckets_are_marked_in_int32_and_none_is_held_yet() -> None:
    marks = empty_stamps(4, 300 * SECOND)
    assert marks.dtype == np.int32
    year_2600_bucket = (630 * 365 * 86400 * SECOND) // (300 * SECOND)
    assert not (marks == year_2600_bucket).any() and year_2600_bucket < np.iinfo(np.int32).max


def test_one_second_buckets_keep_int64_as_their_numbers_pass_int32_in_2038() -> None:
    assert empty_stamps(4, SECOND).dtype == np.int64
    year_2040_bucket = 2_208_988_800  # seconds from 1970 to 2040-01-01
    assert year_2040_bucket > np.iinfo(np.int32).max
