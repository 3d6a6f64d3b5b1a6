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


def _water_zone_engine_after_days(days: int):
    from rules.engine import Engine
    from rules.loader import load_rules
    from tests import test_burst_fingerprint as fp
    from tests.helpers import catalog, series_batch

    rows = [fp.ZONE[0], *({"sensor_id": f"P{i}", "network": "water", "zone": "DMA1", "quantity": "pressure",
                           "unit": "kPa", "interval_s": 300} for i in (1, 2, 3))]
    eng = Engine(catalog(*rows), load_rules())
    state = eng.new_state()
    eng.step(state, series_batch(eng.catalog, fp._days(days), step_ns=fp.STEP, t0=fp.MONDAY))
    return eng, state


def test_marks_saved_as_int64_by_an_earlier_release_are_restored_not_dropped() -> None:
    """A snapshot or changelog record written before the marks became int32 keeps its history."""
    from rules.snapshot import flatten, restore

    eng, state = _water_zone_engine_after_days(3)
    arrays = flatten(state, eng)
    marks = [k for k in arrays if k.endswith("/stamp") or k.endswith("/recent_stamp")]
    assert marks
    for key in marks:  # as the earlier release wrote them
        old = arrays[key].astype(np.int64)
        arrays[key] = np.where(arrays[key] == np.iinfo(np.int32).min, np.iinfo(np.int64).min, old)
    restored = restore(eng, arrays)
    for rid in ("water-inflow-excess", "water-burst-fingerprint"):
        got, want = restored.rules[rid].detector["stamp"], state.rules[rid].detector["stamp"]
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, want)
        assert (got != np.iinfo(np.int32).min).sum() > 2 * 288  # days of history, not an empty ring


def test_ten_second_buckets_write_and_read_back_their_numbers_in_int32() -> None:
    width = 10 * SECOND
    marks = empty_stamps(6, width)
    bucket = (1_790_000_000 * SECOND) // width  # a 10-s bucket in 2026
    marks[bucket % 6] = bucket
    assert marks.dtype == np.int32 and int(marks[bucket % 6]) == bucket
