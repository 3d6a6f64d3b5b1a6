"""Column parsers for a reading's time, value and quality: raw JSON / line-protocol values in, numpy
columns plus {row: error detail} out. Fast paths keep per-reading Python work to a minimum; anything
unusual drops to a per-element path that explains what is wrong with each row.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from sentinel.readings import NS, epoch_ns, iso

# Event times outside this window are refused, by the MQTT decoder and by replay files alike: 1970
# timestamps come from loggers whose clock was never set, and far-future ones would drag every event-time
# watermark with them.
MIN_TIME_NS = 946_684_800 * NS  # 2000-01-01T00:00:00Z
MAX_TIME_NS = 7_258_118_400 * NS  # 2200-01-01T00:00:00Z
TIME_WINDOW = f"{iso(MIN_TIME_NS)}..{iso(MAX_TIME_NS)}"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_QUALITY: dict[Any, int] = {"good": 0, "uncertain": 1, "bad": 2, 0: 0, 1: 1, 2: 2}
NUMBER_TYPES = {int, float}
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# datetime64[us] values whose ns form fits int64 (converting outside this range silently wraps around)
_US_MIN, _US_MAX = -(INT64_MAX // 1000), INT64_MAX // 1000
# epoch_ns's magnitudes, as (upper bound of |number|, ns per unit): s < 1e11 <= ms < 1e14 <= us < 1e17 <= ns
_EPOCH_UNITS = ((100_000_000_000, NS), (100_000_000_000_000, 1_000_000), (100_000_000_000_000_000, 1000))


def text_ns(text: str) -> int:
    """ISO-8601 (naive means UTC; sub-microsecond digits are dropped) or an epoch number as text."""
    s = text.strip()
    if not (s[4:5] == "-" or "T" in s or ":" in s):  # not shaped like ISO: try an epoch number first
        try:
            return epoch_ns(int(s) if s.lstrip("+-").isdigit() else float(s))
        except ValueError:
            pass
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise ValueError(f"{text[:64]!r} is neither ISO-8601 nor an epoch number") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH) // _US * 1000


def one_time_ns(v: object, received_ns: int) -> int:
    if v is None:
        return received_ns
    if isinstance(v, bool):
        raise ValueError(f"{v!r} is not a time")
    if isinstance(v, int | float):
        return epoch_ns(v)
    if isinstance(v, str):
        return text_ns(v)
    raise ValueError(f"{type(v).__name__} is not a time")


def times_ns(raw: list, received_ns: int | list[int]) -> tuple[np.ndarray, dict[int, str]]:
    """Raw JSON times to int64 ns plus {row: error}. Fast paths: all strings (each distinct string
    parsed once: gateways stamp many sensors alike), all ints (vectorised), all missing."""
    n = len(raw)
    errors: dict[int, str] = {}
    kinds = set(map(type, raw))
    if kinds == {str}:
        unique = set(raw)
        if len(unique) > 16:
            fast = utc_iso_ns(raw)
            if fast is not None:
                return fast, errors
        parsed: dict[str, int | str] = {}  # ns, or why not
        for text in unique:
            try:
                ns = text_ns(text)
            except (ValueError, OverflowError):
                parsed[text] = f"{text[:64]!r} is neither ISO-8601 nor an epoch number"
                continue
            parsed[text] = ns if INT64_MIN <= ns <= INT64_MAX else _outside(text)
        vals = [parsed[t] for t in raw]
        if any(type(v) is str for v in parsed.values()):
            for i, t in enumerate(vals):
                if type(t) is str:
                    errors[i] = t
                    vals[i] = 0
        out = np.array(vals, dtype=np.int64)
    elif kinds == {int}:
        try:
            out, unfit = epoch_ns_array(np.array(raw, dtype=np.int64))
        except OverflowError:
            return _times_slow(raw, received_ns)
        for i in np.flatnonzero(unfit).tolist():
            errors[i] = _outside(raw[i])
    elif kinds == {type(None)}:
        out = np.full(n, received_ns, dtype=np.int64) if isinstance(received_ns, int) else \
            np.array(received_ns, dtype=np.int64)
    else:
        return _times_slow(raw, received_ns)
    return out, errors


def epoch_ns_array(num: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`sentinel.readings.epoch_ns` over an int64 array: the unit by magnitude, s < 1e11 <= ms < 1e14 <=
    us < 1e17 <= ns. Returns (ns, unfit): `unfit` marks numbers whose ns form does not fit in int64; their
    ns is 0, never a wrapped-around, plausible-looking time."""
    out = num.copy()
    unfit = np.zeros(len(num), dtype=bool)
    # |INT64_MIN| does not fit in int64 (np.abs leaves it negative): it is ns already, like any |n| >= 1e17
    mag = np.where(num == INT64_MIN, INT64_MAX, np.abs(num))
    lower = 0
    for upper, scale in _EPOCH_UNITS:
        rows = (mag >= lower) & (mag < upper)
        lower = upper
        if not rows.any():
            continue
        limit = INT64_MAX // scale
        v = num[rows]
        bad = (v < -limit) | (v > limit)
        out[rows] = np.where(bad, 0, v) * scale  # zeroed first, so the product cannot wrap around
        unfit[rows] = bad
    return out, unfit


def utc_iso_ns(raw: list[str]) -> np.ndarray | None:
    """Many distinct 'YYYY-MM-DDThh:mm:ss[.f]Z' strings parsed by numpy in one call (about 3x faster
    than datetime.fromisoformat each); None when any string has another form, is not a valid date, or lies
    beyond what int64 ns can hold (the caller falls back to the per-string path, which says why).
    Truncated to microseconds, like the fromisoformat path."""
    if not all(t[-1:] == "Z" and t[4:5] == "-" and t[10:11] in ("T", " ") and t[:4].isdigit() for t in raw):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            # microseconds, not ns: datetime64[ns] wraps years past 2262 around (2600 would become 2015)
            us = np.array([t[:-1] for t in raw], dtype="datetime64[us]").view(np.int64)
    except (ValueError, OverflowError, Warning):
        return None
    if ((us < _US_MIN) | (us > _US_MAX)).any():  # NaT (INT64_MIN) too
        return None
    return us * 1000


def _times_slow(raw: Sequence, received_ns: int | list[int]) -> tuple[np.ndarray, dict[int, str]]:
    out = np.zeros(len(raw), dtype=np.int64)
    errors: dict[int, str] = {}
    for i, v in enumerate(raw):
        try:
            ns = one_time_ns(v, received_ns if isinstance(received_ns, int) else received_ns[i])
        except (ValueError, OverflowError) as exc:
            errors[i] = str(exc) if str(exc) else f"{v!r} is not a time"
            continue
        if INT64_MIN <= ns <= INT64_MAX:
            out[i] = ns
        else:
            errors[i] = _outside(v)
    return out, errors


def _outside(v: object) -> str:
    """The error of a time too far from 1970 for int64 ns (so certainly outside the accepted window)."""
    return f"{repr(v)[:64]} is outside {TIME_WINDOW} (clock not set?)"


def _value_error(v: object) -> str:
    if v is None:
        return "missing"
    text = json.dumps(v) if isinstance(v, bool | str) else repr(v)
    return f"not a number: {text[:64]}"


def values_f64(raw: list) -> tuple[np.ndarray, dict[int, str]]:
    """Raw JSON values to float64 plus {row: error}; strings, booleans and null are not numbers."""
    errors: dict[int, str] = {}
    if set(map(type, raw)) <= NUMBER_TYPES:
        try:
            out = np.array(raw, dtype=np.float64)
        except OverflowError:
            out = None
        if out is not None:
            bad = np.flatnonzero(~np.isfinite(out))
            for i in bad.tolist():
                errors[i] = f"not a finite number: {raw[i]!r}"
            return out, errors
    out = np.full(len(raw), np.nan)
    for i, v in enumerate(raw):
        if type(v) in NUMBER_TYPES:
            try:
                f = float(v)
            except OverflowError:
                errors[i] = f"not a finite number: {str(v)[:64]}"
                continue
            if math.isfinite(f):
                out[i] = f
            else:
                errors[i] = f"not a finite number: {v!r}"
        else:
            errors[i] = _value_error(v)
    return out, errors


def one_quality(q: object) -> int | None:
    if q is None:
        return 0
    if isinstance(q, bool):
        return None
    if isinstance(q, str):
        q = q.strip().lower()
        if q.isdigit():
            q = int(q)
    try:
        return _QUALITY.get(q)  # type: ignore[arg-type]
    except TypeError:  # unhashable
        return None


def qualities(raw: list | None, n: int) -> tuple[np.ndarray, dict[int, str]]:
    errors: dict[int, str] = {}
    if raw is None or set(map(type, raw)) == {type(None)}:
        return np.zeros(n, dtype=np.uint8), errors
    kinds = set(map(type, raw))
    if kinds <= {int, str, type(None)}:  # fast path: exact codes and lower-case names
        codes = [_QUALITY.get(q, -1) if q is not None else 0 for q in raw]
        if -1 not in codes:
            return np.array(codes, dtype=np.uint8), errors
    out = np.zeros(n, dtype=np.uint8)
    for i, q in enumerate(raw):
        code = one_quality(q)
        if code is None:
            errors[i] = f"{json.dumps(q, default=str)[:64]} is not good/uncertain/bad or 0/1/2"
        else:
            out[i] = code
    return out, errors


# ---- columns: what every payload form is reduced to -------------------------------------------------
