"""Minimum night flow (MNF): the classic slow-leak signal. Around 02:00-04:00 legitimate use is lowest,
so a zone's lowest net inflow then, tracked against its own nightly history, exposes leakage.

Nights ending on a Saturday, a Sunday or a holiday (local) keep a baseline of their own: weekend nights run 10-15 %
higher in real networks (late evenings), which a single baseline would either learn as drift or alarm on.
With `reference: weekday` a night is compared with the same weekday's recent nights instead: each weekday's
night has its own shape (Monday's is not Thursday's), and that repeating difference is most of what a
weekday/weekend baseline mistakes for night-to-night noise. Until a weekday has been seen its night is
judged against the weekday/weekend baseline, or (`unseen_weekday: skip`) not at all.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rules.calendar import holiday_days, local_day, weekday_profiles, weekend_days
from rules.detectors.zone import ZoneDetector
from rules.levels import LevelTable
from rules.schema import NightFlowRule
from rules.zone_flows import FinalBucket

_MIN_NS = 60_000_000_000
_DAY_MIN = 1440


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


class NightFlowDetector(ZoneDetector):
    kind = "night_flow"
    rule: NightFlowRule

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.levels = LevelTable.of(self.rule.increase, self.rule.severity)
        self.start = _minutes(self.rule.window[0]) % _DAY_MIN
        self.length = (_minutes(self.rule.window[1]) - self.start) % _DAY_MIN or _DAY_MIN
        self.offset_min = round(self.settings.utc_offset_h * 60)
        self.alpha = 1.0 - 0.5 ** (1.0 / self.rule.halflife_nights)
        self.hold_ns = 0
        self.holidays = holiday_days(self.settings.holidays)

    def new_state(self) -> dict[str, Any]:
        n = len(self.subjects)
        return {"night": np.full(1, -1, dtype=np.int64), "mnf": np.full(n, np.inf),
                "base": np.full((n, 2), np.nan), "nights": np.zeros((n, 2), dtype=np.int32),
                "week": np.full((n, 7, self.rule.reference_weeks), np.nan),
                "week_next": np.zeros((n, 7), dtype=np.int32),
                # explained_by (rules/explained.py): set by the engine each bucket / standing when the
                # night's minimum was read / this zone's alarm was raised under an explanation
                "explainer_standing": np.zeros(n, dtype=bool), "covered_night": np.zeros(n, dtype=bool),
                "explained": np.zeros(n, dtype=bool)}

    def _day_of(self, t: int) -> tuple[int, int]:
        """(1 if weekend or holiday else 0, weekday 0=Monday with holidays as Sunday) of the night that
        just closed, by the local date of `t`."""
        day = local_day(t, self.offset_min * _MIN_NS)
        return int(weekend_days(day, self.holidays)[()]), int(weekday_profiles(day, self.holidays)[()])

    def evaluate_bucket(self, st: dict[str, Any], bucket: FinalBucket, level: Any) -> Any:
        start_min = (bucket.end_ns // _MIN_NS) - int(self.settings.zone_bucket // 60) + self.offset_min
        since_window = start_min - self.start
        night = since_window // _DAY_MIN
        in_window = (since_window % _DAY_MIN) < self.length
        out = None
        if st["night"][0] >= 0 and (not in_window or night != st["night"][0]):
            out = self._close_night(st, bucket.end_ns - int(self.settings.zone_bucket * 1e9), level)
        if in_window:
            if night != st["night"][0]:
                st["night"][0] = night
                self._reset_night(st)
            x = bucket.net[self.subjects]
            lower = x < st["mnf"]  # NaN compares False: a missing bucket is not the night's minimum
            st["mnf"] = np.where(lower, x, st["mnf"])
            # was an explaining alarm standing when the night's minimum was read? only then is it that
            # event's water (a burst repaired at 02:30 leaves the minimum to the clean half of the window)
            st["covered_night"] = np.where(lower, st["explainer_standing"], st["covered_night"])
        return out

    def _close_night(self, st: dict[str, Any], t: int, level: np.ndarray) -> Any:
        from rules.detectors.base import Evaluation

        st["night"][0] = -1
        night = st["mnf"]
        slots = np.flatnonzero(np.isfinite(night))
        kind, weekday = self._day_of(t)
        x, day_base = night[slots], st["base"][slots, kind]
        by_weekday = self.rule.reference == "weekday"
        same = st["week"][slots, weekday]
        seen = ~np.isnan(same).all(axis=1)  # this weekday's nights learned before (weekday reference)
        base = day_base
        if by_weekday and seen.any():
            base = day_base.copy()
            base[seen] = np.nanmedian(same[seen], axis=1)
        ready = st["nights"][slots, kind] >= self.rule.warmup_nights
        if by_weekday and self.rule.unseen_weekday == "skip":
            ready &= seen
        excess = x - base
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(np.abs(base) > 1e-9, excess / np.abs(base), np.inf * np.sign(excess))
        ratio = np.nan_to_num(ratio, nan=0.0)
        raw = np.where(ready & (excess >= self.rule.min_increase), self.levels.above(ratio, level[slots]), 0)
        raw = raw.astype(np.int8)
        # learn only clearly normal nights: a leak that grows a little each night must not drag the
        # baseline up with it (a lasting legitimate change needs an engineer to re-baseline the zone)
        learn = (raw == 0) & ((ratio < self.levels.lowest() / 2) | ~ready)
        n = st["nights"][slots, kind]
        a = np.maximum(self.alpha, 1.0 / (n + 1.0))
        st["base"][slots, kind] = np.where(learn, np.where(n == 0, x, day_base + a * (x - day_base)), day_base)
        st["nights"][slots, kind] = n + learn
        if by_weekday:  # a weekday's first night is taken as its shape (commissioning)
            keep = (learn | ~seen) & np.isfinite(x)
            learned = slots[keep]
            pos = st["week_next"][learned, weekday]
            st["week"][learned, weekday, pos] = x[keep]
            st["week_next"][learned, weekday] = (pos + 1) % self.rule.reference_weeks
        covered = st["covered_night"][slots].copy()  # an explaining alarm stood at this night's minimum
        self._reset_night(st)
        return Evaluation(slots, np.full(len(slots), t, dtype=np.int64), raw, x, ratio,
                          {"baseline": base, "covered": covered})

    @staticmethod
    def _reset_night(st: dict[str, Any]) -> None:
        st["mnf"][:] = np.inf
        st["covered_night"][:] = False

    def describe(self, grade: int, value: float, score: float, unit: str) -> str:
        return (f"minimum night flow {value:.3g} m3/h is {score * 100:.0f}% above its learned baseline "
                f"(limit {self.levels.threshold_for(grade) * 100:.0f}%): possible leak")
