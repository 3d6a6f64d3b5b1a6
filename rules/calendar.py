"""Which local days run on the weekend pattern: Saturdays, Sundays and the city's public holidays.

Demand on a holiday (春节, 国庆) looks like a Sunday's; a zone profile that took it for a weekday would
raise alarms all day. Holidays are local dates in the rules' settings (`holidays:`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import numpy as np

DAY_NS = 86_400_000_000_000
_EPOCH = dt.date(1970, 1, 1)


def holiday_days(dates: Iterable[dt.date]) -> np.ndarray:
    """Local dates as days since 1970-01-01, sorted, for fast membership tests."""
    return np.array(sorted((d - _EPOCH).days for d in dates), dtype=np.int64)


def local_day(t_ns: np.ndarray | int, offset_ns: int) -> np.ndarray:
    return (np.asarray(t_ns, dtype=np.int64) + offset_ns) // DAY_NS


def weekday_profiles(day: np.ndarray | int, holidays: np.ndarray) -> np.ndarray:
    """Weekday 0 (Monday) .. 6 of local day numbers, holidays as Sunday (6): days with the same value share
    a weekly profile."""
    day = np.asarray(day, dtype=np.int64)
    weekday = (day + 3) % 7  # epoch day 0 was a Thursday
    return np.where(np.isin(day, holidays), 6, weekday) if len(holidays) else weekday


def weekend_days(day: np.ndarray | int, holidays: np.ndarray) -> np.ndarray:
    """True for Saturdays, Sundays (epoch day 0 was a Thursday) and holidays, given local day numbers."""
    day = np.asarray(day, dtype=np.int64)
    weekend = (day + 3) % 7 >= 5
    if len(holidays):
        weekend = weekend | np.isin(day, holidays)
    return weekend
