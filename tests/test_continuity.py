"""Which readings records a worker must read back itself: the holes Faust's offsets stepped over."""

from __future__ import annotations

from sentinel.scaleout.continuity import Record, decode_offset, missing, offset_key


def recs(*offsets: int) -> list[Record]:
    return [Record(0, o, b"water/DMA1", b"{}") for o in offsets]


def test_a_contiguous_batch_right_after_the_last_evaluated_offset_needs_nothing() -> None:
    assert missing(recs(5, 6, 7), first_expected=5) is None
    assert missing([], first_expected=5) is None


def test_records_skipped_before_the_batch_are_read_back_with_it() -> None:
    assert missing(recs(9, 10), first_expected=5) == (5, 11)


def test_a_hole_inside_the_batch_is_read_back_too() -> None:
    assert missing(recs(5, 6, 9), first_expected=5) == (5, 10)


def test_offset_keys_never_look_like_zone_keys_and_round_trip() -> None:
    assert offset_key(3).startswith(b"\x00") and b"/" in offset_key(3)
    assert decode_offset(b"41") == 41 and decode_offset(None) is None
