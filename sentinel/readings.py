"""Readings travel as columnar batches: sensor index, event time (ns since epoch, UTC), canonical value."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

QUALITY_GOOD = 0
QUALITY_UNCERTAIN = 1
QUALITY_BAD = 2  # stored, never evaluated by rules

NS = 1_000_000_000


@dataclass(frozen=True)
class Batch:
    """A micro-batch in arrival order. Values are already in canonical units."""

    sensor: np.ndarray  # int32 index into the catalog
    time_ns: np.ndarray  # int64
    value: np.ndarray  # float64
    quality: np.ndarray  # uint8

    def __post_init__(self) -> None:
        n = len(self.sensor)
        if not (len(self.time_ns) == len(self.value) == len(self.quality) == n):
            raise ValueError("batch columns differ in length")

    def __len__(self) -> int:
        return len(self.sensor)

    @classmethod
    def empty(cls) -> Batch:
        return cls.of([], [], [])

    @classmethod
    def of(cls, sensor: Sequence[int] | np.ndarray, time_ns: Sequence[int] | np.ndarray,
           value: Sequence[float] | np.ndarray, quality: Sequence[int] | np.ndarray | None = None) -> Batch:
        s = np.asarray(sensor, dtype=np.int32)
        q = np.zeros(len(s), dtype=np.uint8) if quality is None else np.asarray(quality, dtype=np.uint8)
        return cls(s, np.asarray(time_ns, dtype=np.int64), np.asarray(value, dtype=np.float64), q)

    def take(self, sel: np.ndarray | slice) -> Batch:
        return Batch(self.sensor[sel], self.time_ns[sel], self.value[sel], self.quality[sel])

    @staticmethod
    def concat(batches: Sequence[Batch]) -> Batch:
        if not batches:
            return Batch.empty()
        return Batch(*(np.concatenate([getattr(b, f) for b in batches])
                       for f in ("sensor", "time_ns", "value", "quality")))

    def split(self, size: int) -> list[Batch]:
        return [self.take(slice(i, i + size)) for i in range(0, len(self), size)]


def to_ns(t: datetime) -> int:
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return int(t.timestamp() * 1_000_000) * 1000


def iso(ns: int) -> str:
    """UTC ISO-8601 with seconds, the form every file and message of ours uses."""
    return datetime.fromtimestamp(ns / NS, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch_ns(num: int | float) -> int:
    """Epoch number to ns by magnitude: seconds < 1e11 <= milliseconds < 1e14 <= microseconds < 1e17 <= ns.

    Integers stay exact; floats are rounded to the microsecond.
    """
    if isinstance(num, float) and not math.isfinite(num):
        raise ValueError(f"{num} is not a time")
    mag = abs(num)
    if isinstance(num, int):
        if mag < 1e11:
            return num * NS
        if mag < 1e14:
            return num * 1_000_000
        if mag < 1e17:
            return num * 1000
        return num
    if mag < 1e11:
        return round(num * 1e6) * 1000
    if mag < 1e14:
        return round(num * 1e3) * 1000
    if mag < 1e17:
        return round(num) * 1000
    return int(num)


def parse_time(text: str) -> int:
    """Parse ISO-8601 (naive means UTC) or an epoch number in s/ms/µs/ns (by magnitude) into ns."""
    text = text.strip()
    body = text.lstrip("+-")
    if body.isdigit():
        return epoch_ns(int(text))
    try:
        num = float(text)
    except ValueError:
        pass
    else:
        return epoch_ns(num)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    return to_ns(datetime.fromisoformat(text))
