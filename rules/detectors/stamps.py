"""Which bucket each slot of a history ring holds, so a slot not yet (re)written reads as missing.

A water zone's state travels as one Kafka record in scale-out, and these marks were half of it at int64
(four weeks of 5-minute buckets: 64 kB for one ring). Bucket numbers (nanoseconds since 1970 over the
bucket width) fit int32 for buckets of 10 s or more until the year 2650, so those rings use int32.
"""

from __future__ import annotations

import numpy as np

_INT32_FROM_NS = 10_000_000_000  # 10 s: 2**31 buckets reach past the year 2600


def stamp_dtype(width_ns: int) -> type[np.signedinteger]:
    return np.int32 if width_ns >= _INT32_FROM_NS else np.int64


def empty_stamps(size: int, width_ns: int) -> np.ndarray:
    """`size` slots, none holding a bucket yet (the dtype's minimum, which no real bucket reaches)."""
    dtype = stamp_dtype(width_ns)
    return np.full(size, np.iinfo(dtype).min, dtype=dtype)
