"""Query and body values that need more than a type: times people type, bounded to sane instants."""

from __future__ import annotations

from fastapi import HTTPException

from sentinel.readings import parse_time

MIN_NS = 946_684_800 * 10**9  # 2000-01-01: nothing in a lifeline store is older
MAX_NS = 7_258_118_400 * 10**9  # 2200-01-01


def when(text: str | None, name: str) -> int | None:
    """ISO-8601 (naive = UTC) or epoch s/ms/µs/ns by magnitude, as every file of ours accepts; HTTP 422 else."""
    if text is None or text == "":
        return None
    try:
        ns = parse_time(text)
    except (ValueError, OverflowError, OSError):
        raise HTTPException(422, f"{name}: not a time ({text[:40]!r}); use ISO-8601 or epoch seconds/ms") from None
    if not MIN_NS <= ns <= MAX_NS:
        raise HTTPException(422, f"{name}: {text[:40]!r} is outside 2000..2200")
    return ns
