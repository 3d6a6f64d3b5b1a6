"""Burst fingerprint: a zone's net inflow steps up while its pressures step down, together.

Why not a plain profile: demand on any one day sits a few per cent above or below its usual shape
(weather, events), and that offset would either hide a medium burst or raise alarms all day. So each
bucket is compared with the same time of day on earlier days of the same type (weekday, or weekend and
holiday; or the same weekday only; median over up to `history` of each day's median over that bucket
and its two neighbours, buckets under an alarm or far off the other way left out (until `max_pause`)
so a burst is not next week's normal), and today's offset from that is followed as a share of the
expected value by an EWMA (`level_halflife`) that stops learning likewise (a day 3 % busier is 3 %
busier at night and at the morning peak alike). A burst is a step; a busier day is not.

What is judged is the last `window` buckets together: their values less the expected ones scaled by
today's offset *as it stood before the window's first bucket*, summed, in standard deviations of that
sum learned per hour of day (windows more than `scale.learn_within` of them off teach that spread
nothing: a burst's first windows come before its alarm). Judging the window against the level before it
lets the level be quick (15 minutes): a zone's demand wanders within the hour by about as much as one
bucket's noise, which a slow level lags (a third of the old step's variance was that lag, correlated
over an hour), while a burst's own first buckets cannot pull up the level they are judged by. The spread
of the sum, not of one bucket, is learned because neighbouring buckets' errors are correlated. A spread
learned from few windows is itself uncertain: its z is read as Student's t with as many degrees of
freedom as independent windows and scaled to the normal z as rare at the rule's lowest limit (about 0.8
three days in, 0.94 after two weeks), so a young zone needs more evidence.

Pressure gets the same treatment, once per zone: each logger's pressure less its own slowly learned level, and
the median of that over the zone's loggers (so one faulty or silent logger cannot make or break it) is the
zone's pressure series. Only the zone's series keep a history, so the state stays about a hundred kB per zone
(four weeks of 5-minute buckets) however many loggers it has (a zone's state travels as one Kafka message in
scale-out). Where the drop is: each logger's departure from the zone's median, in standard deviations learned
per hour of day; the logger that fell furthest below the others tells the crew where in the zone to look. The
evidence is the inflow window's z plus `pressure_weight` times the pressure window's drop in z, the drop
counted only up to the inflow's z (it corroborates an inflow step, never makes one). The newest bucket's
inflow step must also be at least `min_ratio` of its expected inflow. A standing alarm holds while the
evidence stays above 60 % of its limit, so one quieter bucket does not clear and re-raise it.

`inflow_drop` (InflowDropDetector) is the same statistic downwards, the inflow's z alone: an inlet meter
reading low, a closed valve cutting the supply or a large user stopping. Its message says how the zone's
pressures moved with it (rose: the zone draws less; fell: the supply is cut; unchanged: the meter).

Learning pauses while an alarm stands, or while the inflow is clearly off the other way (`far_off_z`: a
meter reading low is not next week's normal for the fingerprint, a burst not for the drop), but for at most
`max_pause`: after that the zone's new state is accepted (the alert stays until it clears), so a
holiday or a changed supply does not hold an alarm for days.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtri, stdtr

from rules.baseline import Baseline
from rules.calendar import holiday_days, local_day, weekday_profiles, weekend_days
from rules.detectors.base import Evaluation
from rules.detectors.rowwise import count_rows, gather, nanmedian_rows, padded
from rules.detectors.stamps import empty_stamps
from rules.detectors.zone import ZoneDetector
from rules.levels import LevelTable
from rules.schema import BurstFingerprintRule, InflowDropRule, ZoneStepRule
from rules.zone_flows import FinalBucket, pressure_members

DAY_NS = 86_400_000_000_000
HOLD = 0.6  # an alarm, or a learning pause, holds while its evidence stays above this share of its limit


@dataclass
class StepSeries:
    """History, today's offset, the last buckets and the window step's scale for a set of series (zones)."""

    ring: np.ndarray  # (n, history buckets) float32, NaN = no value
    level: np.ndarray  # (n,) EWMA of the residual as a share of the reference; NaN until the first one
    typical: np.ndarray  # (n,) slow EWMA of |value|: the series' usual size
    window_scale: Any  # BaselineState of the window's summed step, per hour of day (not the old per-bucket one)
    resid: np.ndarray  # (n, window) value less expected over the last buckets, oldest first
    ref: np.ndarray  # (n, window) what the offset was a share of, same buckets
    before: np.ndarray  # (n, window) today's offset as it stood before each of those buckets


class StepScorer:
    """Step statistic for series sampled once per zone bucket (see the module docstring)."""

    def __init__(self, rule: ZoneStepRule, width_ns: int, utc_offset_h: float,
                 holidays: np.ndarray, *, z_ref: float, additive: bool = False) -> None:
        if DAY_NS % width_ns:
            raise ValueError(f"rule {rule.id!r}: zone_bucket must divide a day evenly for a time-of-day history")
        self.per_day = DAY_NS // width_ns
        self.days = max(2, int(rule.history // 86400))
        self.size = self.days * self.per_day
        self.min_days = rule.min_days
        self.width_ns = width_ns
        self.offset_ns = round(utc_offset_h * 3_600_000_000_000)
        self.alpha = 1.0 - 0.5 ** (width_ns / 1e9 / rule.level_halflife)
        self.alpha_typical = 1.0 - 0.5 ** (1.0 / self.per_day)  # a half-life of one day
        self.holidays = holidays
        self.additive = additive  # offsets in the series' own units (pressure), not as a share (flow)
        self.by_weekday = rule.reference == "weekday"
        self.window = rule.window
        self.baseline = Baseline(rule.scale, np.array([width_ns / 1e9]), utc_offset_h, holidays)
        self.z_ref = z_ref
        # windows a spread can have learned from, at most: the EWMA's effective count, over the overlap
        self.most_windows = (2.0 / float(self.baseline.alpha[0]) - 1.0) / self.window

    def new(self, n: int) -> StepSeries:
        def nan(*shape: int) -> np.ndarray:
            return np.full(shape, np.nan)
        return StepSeries(np.full((n, self.size), np.nan, dtype=np.float32), nan(n), nan(n),
                          self.baseline.new_state(n), nan(n, self.window), nan(n, self.window), nan(n, self.window))

    def _day_type(self, bucket: np.ndarray) -> np.ndarray:
        """What days count as alike: weekday 0-6 (holidays as Sunday) or weekend-or-holiday 0/1."""
        day = local_day(bucket * self.width_ns, self.offset_ns)
        if self.by_weekday:
            return weekday_profiles(day, self.holidays)
        return weekend_days(day, self.holidays)

    def expected(self, st: StepSeries, bucket: int, stamp: np.ndarray) -> np.ndarray:
        """Median over earlier same-type days still in the ring of the median of the same time of day and
        its two neighbouring buckets (NaN if too few days). An earlier day is whole, so its neighbours
        are known; they cut the reference's own bucket noise, which with few days (one earlier same
        weekday) is as large as today's, and their median (not mean) keeps a valve that switches at the
        same time every day a clean step instead of a daily false one."""
        back = bucket - self.per_day * np.arange(1, self.days + 1)
        same = (self._day_type(back) == self._day_type(np.array([bucket]))[0]) & (stamp[back % self.size] == back)
        if same.sum() < self.min_days:
            return np.full(len(st.level), np.nan)
        near = back[same][:, None] + np.arange(-1, 2)  # (days, 3) buckets around the time of day
        vals = st.ring[:, near % self.size].astype(np.float64)  # (n, days, 3)
        vals[:, stamp[near % self.size] != near] = np.nan  # a neighbour not (yet) recorded
        n, days, _ = vals.shape
        cols = nanmedian_rows(vals.reshape(n * days, 3)).reshape(n, days)
        enough = count_rows(cols) >= self.min_days
        med = nanmedian_rows(cols)
        return np.where(enough, med, np.nan)

    def reference(self, st: StepSeries, expected: np.ndarray) -> np.ndarray:
        """What an offset is a share of: the expected value, floored at a fifth of the series' typical
        size so a net inflow near zero (a zone that passes water on) does not blow shares up."""
        if self.additive:
            return np.ones(len(expected))
        return np.maximum(np.abs(expected), 0.2 * np.nan_to_num(st.typical, nan=0.0)) + 1e-9

    def step(self, st: StepSeries, bucket: int, end_ns: int, x: np.ndarray,
             stamp: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(z of the window's summed step, this bucket's step, that step as a share of its reference, this
        bucket's expected value) after this bucket's values x; NaN where not scoreable yet.
        The window's buckets are measured against today's offset as it stood before the first of them, so
        a burst's own first buckets do not pull the level they are judged by."""
        expected = self.expected(st, bucket, stamp)
        for arr, new in ((st.resid, x - expected), (st.ref, self.reference(st, expected)), (st.before, st.level)):
            arr[:, :-1] = arr[:, 1:]
            arr[:, -1] = new
        stepped = self._window_step(st)
        n = len(x)
        cell = self.baseline.cells(np.arange(n), np.full(n, end_ns - self.width_ns, dtype=np.int64))
        z, _dev, ready = self.baseline.score(st.window_scale, cell, np.nan_to_num(stepped))
        ok = ready & ~np.isnan(stepped)
        z = np.clip(z, -50.0, 50.0) * self._young(st.window_scale.count.ravel()[cell])  # no spread yet: +-inf
        latest = st.resid[:, -1] - st.before[:, 0] * st.ref[:, -1]
        return np.where(ok, z, np.nan), latest, latest / st.ref[:, -1], expected

    @staticmethod
    def _window_step(st: StepSeries) -> np.ndarray:
        """The window's values less expected, summed, less today's offset as it stood before the window
        (NaN until `window` buckets are known, or while one of them is missing)."""
        return st.resid.sum(axis=1) - st.before[:, 0] * st.ref.sum(axis=1)

    def _young(self, count: np.ndarray) -> np.ndarray:
        """How much a z on a spread learned from `count` windows is worth: a spread from a few days of
        windows is itself uncertain, so its z is read as Student's t with as many degrees of freedom as
        independent windows (overlapping ones share buckets) and scaled to the normal z as rare at the
        rule's lowest limit (at 3.75: 0.79 after three days of windows, 0.89 after a week, at most 0.96)."""
        nu = np.maximum(np.minimum(count / self.window, self.most_windows) - 1.0, 1.0)
        return -ndtri(stdtr(nu, -self.z_ref)) / self.z_ref

    def learn(self, st: StepSeries, bucket: int, end_ns: int, x: np.ndarray, resid_ok: np.ndarray,
              expected: np.ndarray) -> None:
        """Record x in the history and follow today's offset and the window step's spread, all where
        `resid_ok`: a burst or hydrant draw kept in the history would raise the reference on that weekday
        next week, drag today's offset down there and raise a false step once it has passed."""
        share = (x - expected) / self.reference(st, expected)
        st.ring[:, bucket % self.size] = np.where(resid_ok, x, np.nan)
        seen = ~np.isnan(x) & (not self.additive)  # the usual size only floors shares (not additive series)
        st.typical[seen] = np.where(np.isnan(st.typical[seen]), np.abs(x[seen]),
                                    st.typical[seen] + self.alpha_typical * (np.abs(x[seen]) - st.typical[seen]))
        has = resid_ok & ~np.isnan(share)
        first = has & np.isnan(st.level)
        st.level[first] = share[first]
        follow = has & ~first
        st.level[follow] += self.alpha * (share[follow] - st.level[follow])
        stepped = self._window_step(st)
        learn = resid_ok & ~np.isnan(stepped)
        if learn.any():
            idx = np.flatnonzero(learn)
            cell = self.baseline.cells(idx, np.full(len(idx), end_ns - self.width_ns, dtype=np.int64))
            self.baseline.learn(st.window_scale, cell, stepped[idx],
                                self.baseline.alpha[np.zeros(len(idx), dtype=np.intp)])


class BurstFingerprintDetector(ZoneDetector):
    kind = "burst_fingerprint"
    reads_zone_pressure = True
    locates = True  # learns each logger's departure from its zone's median, to name where pressure fell
    direction = 1.0  # the way the inflow steps for this rule: up
    far_off_z = 6.0  # a step the other way this many sigma is not learned as normal (for up to max_pause)
    rule: BurstFingerprintRule

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.levels = LevelTable.of(self.rule.z, self.rule.severity)
        width = int(self.settings.zone_bucket * 1e9)
        holidays = holiday_days(self.settings.holidays)
        z_ref = self.levels.lowest()
        self.scorer = StepScorer(self.rule, width, self.settings.utc_offset_h, holidays, z_ref=z_ref)
        self.pressure_scorer = StepScorer(self.rule, width, self.settings.utc_offset_h, holidays, z_ref=z_ref,
                                          additive=True)
        # a logger's departure from its zone's median has real level shifts (a pump starting near it) that
        # skipping far-off buckets would never learn: this spread learns from every calm bucket
        local = self.rule.scale.model_copy(update={"learn_within": None})
        self.local = Baseline(local, np.array([width / 1e9]), self.settings.utc_offset_h, holidays)
        loggers = pressure_members(self.catalog)
        in_scope = np.isin(self.catalog.zone_code[loggers], self.subjects)
        self.logger_pos = np.flatnonzero(in_scope)  # positions in FinalBucket.pressure
        self.logger_idx = loggers[in_scope]  # catalog indices
        zone_slot = np.full(len(self.catalog.zones), -1, dtype=np.int64)
        zone_slot[self.subjects] = np.arange(len(self.subjects))
        self.logger_zone = zone_slot[self.catalog.zone_code[self.logger_idx]]  # subject slot of each logger
        self.names = [self.catalog.sensors[i].sensor_id for i in self.logger_idx]
        self.zone_loggers = padded([np.flatnonzero(self.logger_zone == z) for z in range(len(self.subjects))])
        self.has_loggers = (self.zone_loggers >= 0).any(axis=1) if self.zone_loggers.size \
            else np.zeros(len(self.subjects), dtype=bool)
        self.max_pause = max(1, int(self.rule.max_pause * 1e9) // width)

    def new_state(self) -> dict[str, Any]:
        n = len(self.subjects)
        m = len(self.logger_idx)
        return {"stamp": empty_stamps(self.scorer.size, self.scorer.width_ns),
                "flow": self.scorer.new(n), "pressure": self.pressure_scorer.new(n),
                "logger_level": np.full(m, np.nan),  # each logger's slowly learned pressure
                "local": self.local.new_state(m if self.locates else 0),  # its departure from the zone's median
                "alarm_since": np.full(n, -1, dtype=np.int64)}  # bucket learning paused (alarm, far off), -1 none

    def readiness(self, st: dict[str, Any]) -> np.ndarray:
        """The hours of the day whose window-step spread has its warm-up (three days of windows once the
        same weekday has been seen): the rule judges a zone at an hour only then."""
        count = st["flow"].window_scale.count
        return (count >= self.scorer.baseline.params.warmup).mean(axis=1)

    def _evidence(self, fz: np.ndarray, pz: np.ndarray) -> np.ndarray:
        """The inflow window's z, plus `pressure_weight` times the pressure window's drop in z. A pressure
        drop only corroborates an inflow step: at most as many sigma as the inflow rose, so a pressure
        level left stale by a long alarm (or a pressure operation) cannot carry the evidence alone."""
        drop = np.where(np.isnan(pz) | np.isnan(fz), 0.0, np.clip(-pz, 0.0, np.maximum(fz, 0.0)))
        return fz + self.rule.pressure_weight * drop

    def _share(self, series: StepSeries, fratio: np.ndarray, x: np.ndarray, expected: np.ndarray) -> np.ndarray:
        """How big the change is as a share of the expected inflow, in the direction this rule looks: here
        the newest bucket's step over today's level."""
        return fratio

    def _detail(self, where: list[str], pz: np.ndarray) -> list[str]:
        """Per zone, what the message adds: how the pressures moved with the step (they fell: a burst; they
        held: a burst the pressures do not show, or the meter), then where they fell most."""
        return ["; ".join(part for part in (pressure_response(p, has_loggers=bool(h), inflow_rose=True), w) if part)
                for p, h, w in zip(pz, self.has_loggers, where, strict=True)]

    def _far_off(self, fz: np.ndarray, paused: np.ndarray) -> np.ndarray:
        """The inflow clearly off the other way (`far_off_z`, held down to 60 % of it once learning has
        paused, as an alarm is). For the fingerprint, fallen as a meter reading low falls: far beyond the
        dips of demand (a holiday's late morning) that a pause would leave the level stale over."""
        against = -self.direction * np.nan_to_num(fz, nan=0.0)
        return against >= np.where(paused, HOLD * self.far_off_z, self.far_off_z)

    def _zone_pressure(self, st: dict[str, Any], px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(per zone: median over its loggers of pressure less the logger's own level; per logger: its
        departure from that median). NaN where there is no data."""
        lvl = st["logger_level"]
        first = np.isnan(lvl) & ~np.isnan(px)
        lvl[first] = px[first]
        anomaly = px - lvl
        zone = nanmedian_rows(gather(anomaly, self.zone_loggers))
        departure = anomaly - (zone[self.logger_zone] if len(self.logger_zone) else 0.0)
        return zone, departure

    def _where(self, st: dict[str, Any], end: int, departure: np.ndarray, calm: np.ndarray) -> list[str]:
        """Per zone: the logger that fell furthest below the zone's other loggers, if one clearly did."""
        m = len(self.logger_idx)
        where = [""] * len(self.subjects)
        if not m:
            return where
        cell = self.local.cells(np.arange(m), np.full(m, end - self.scorer.width_ns, dtype=np.int64))
        z, _dev, ready = self.local.score(st["local"], cell, np.nan_to_num(departure))
        z = np.where(ready & ~np.isnan(departure), z, np.nan)
        zs = gather(z, self.zone_loggers)  # (zones, loggers) z of each zone's loggers
        filled = np.where(np.isnan(zs), np.inf, zs)
        worst = np.argmin(filled, axis=1)
        for slot in np.flatnonzero(filled[np.arange(len(worst)), worst] < -2):  # named only when it clearly fell
            k = int(self.zone_loggers[slot, worst[slot]])
            where[slot] = f"pressure fell most at {self.names[k]} ({z[k]:.1f} sigma below the others)"
        learn = calm[self.logger_zone] & ~np.isnan(departure)
        if learn.any():
            idx = np.flatnonzero(learn)
            self.local.learn(st["local"], cell[idx], departure[idx], self.local.alpha[np.zeros(len(idx), np.intp)])
        return where

    def evaluate_bucket(self, st: dict[str, Any], bucket: FinalBucket, level: Any) -> Evaluation | None:
        b, end = bucket.bucket, bucket.end_ns
        stamp = st["stamp"]
        x = bucket.net[self.subjects]
        fz, fstep, fratio, fexp = self.scorer.step(st["flow"], b, end, x, stamp)
        px = bucket.pressure[self.logger_pos] if len(self.logger_pos) else np.zeros(0)
        zp, departure = self._zone_pressure(st, px)
        pz, _, _, pexp = self.pressure_scorer.step(st["pressure"], b, end, zp, stamp)
        score = self._evidence(fz, pz)  # NaN until `window` buckets are known, or one is missing
        scoreable = ~np.isnan(score)
        standing = np.asarray(level) > 0
        raw = np.where(scoreable & (self._share(st["flow"], fratio, x, fexp) >= self.rule.min_ratio),
                       self.levels.above(np.nan_to_num(score, nan=-np.inf), level, hyst_ratio=HOLD), 0).astype(np.int8)
        # a bucket that carries a silent meter's last value cannot open an alarm (a standing one goes on):
        # when the zone's other meters move meanwhile, its step is the carried value's, not the water's
        if bucket.carried is not None:
            raw[bucket.carried[self.subjects] & ~standing] = 0
        # a standing alarm is not judged while its window has a gap (a silent inlet meter): it still stands
        held = ~scoreable & standing
        # neither an alarm nor an inflow clearly off the other way (a meter reading low, for the fingerprint;
        # a burst, for the drop) teaches the baseline that it is normal, for at most max_pause: the quick
        # level would take it in within a few buckets, and next week's reference would expect it
        since = st["alarm_since"]
        off = (raw > 0) | self._far_off(fz, since >= 0)
        since[~off & ~held] = -1
        # a new alarm gets a whole pause, even if the inflow was far off the other way just before
        since[(off & (since < 0)) | ((raw > 0) & ~standing)] = b
        calm = ~(off | held) | (b - since >= self.max_pause)
        self.scorer.learn(st["flow"], b, end, x, calm, fexp)
        self.pressure_scorer.learn(st["pressure"], b, end, zp, calm, pexp)
        located = self._where(st, end, departure, calm) if self.locates else [""] * len(self.subjects)
        where = self._detail(located, pz)
        if len(self.logger_zone):  # loggers' own levels follow slowly (a day), paused with their zone's alarm
            lvl, move = st["logger_level"], calm[self.logger_zone] & ~np.isnan(px)
            lvl[move] += self.scorer.alpha_typical * (px[move] - lvl[move])
        stamp[b % self.scorer.size] = b
        slots = np.flatnonzero(scoreable)
        if not len(slots):
            return None
        t = np.full(len(slots), end, dtype=np.int64)
        return Evaluation(slots, t, raw[slots], fstep[slots], score[slots],
                          extra={"where": [where[s] for s in slots]})

    def describe(self, grade: int, value: float, score: float, unit: str) -> str:
        return (f"zone inflow stepped up {value:.3g} m3/h against the same time on earlier days: {score:.1f} sigma "
                f"of evidence (limit {self.levels.threshold_for(grade):g})")  # the detail: what the pressures say


class InflowDropDetector(BurstFingerprintDetector):
    """The fingerprint's step statistic downwards: a zone's inflow falling abruptly. A meter reading low, a
    closed valve or a large user stopping all look alike in the inflow; the zone's pressure step tells
    them apart where pressures follow the zone's flow, so the message says how they moved."""

    kind = "inflow_drop"
    locates = False  # a fall in the inflow has no place in the zone to point at
    direction = -1.0
    far_off_z = 4.5  # nor a step up as small as a small burst's, whose repair would otherwise be a drop
    rule: InflowDropRule  # type: ignore[assignment]

    def _evidence(self, fz: np.ndarray, pz: np.ndarray) -> np.ndarray:
        return -fz

    def _share(self, series: StepSeries, fratio: np.ndarray, x: np.ndarray, expected: np.ndarray) -> np.ndarray:
        """The step down over today's level, and the inflow below the same time on earlier days, the smaller:
        a burst's repair falls by as much as a meter reading low, but back to the zone's usual inflow."""
        below = (expected - x) / self.scorer.reference(series, expected)
        return np.minimum(-fratio, below)

    def _detail(self, where: list[str], pz: np.ndarray) -> list[str]:
        return [pressure_response(p, has_loggers=bool(h)) for p, h in zip(pz, self.has_loggers, strict=True)]

    def describe(self, grade: int, value: float, score: float, unit: str) -> str:
        return (f"zone inflow fell {-value:.3g} m3/h against the same time on earlier days: {score:.1f} sigma "
                f"(limit {self.levels.threshold_for(grade):g})")  # the detail says what the pressures suggest


def pressure_response(pz: float, *, has_loggers: bool, inflow_rose: bool = False, clear: float = 2.0) -> str:
    """How the zone's pressures moved with a step in its inflow (a drop, or with `inflow_rose` a rise), in
    words an operator can act on: the cause the two together point to."""
    if np.isnan(pz):
        guess = ": a burst?" if inflow_rose else ""
        if has_loggers:
            return f"pressures unknown (loggers silent, or their step still learning) to tell the cause{guess}"
        return f"no pressure loggers to tell the cause{guess}"
    if inflow_rose:
        if pz <= -clear:
            return f"pressures fell {-pz:.1f} sigma with it: a burst?"
        if pz >= clear:
            return f"pressures rose {pz:.1f} sigma: more water pushed in (a pump started, an inlet valve opened?)"
        return (f"pressures held ({pz:+.1f} sigma): a burst they do not show (behind a pressure-reducing valve, "
                "far from the loggers), or the inlet meter reading high?")
    if pz >= clear:
        return f"pressures rose {pz:.1f} sigma: the zone draws less (a large user stopped?)"
    if pz <= -clear:
        return f"pressures fell {-pz:.1f} sigma too: the supply is cut (an inlet valve closed, a pump stopped?)"
    return (f"pressures did not move ({pz:+.1f} sigma): the inlet meter reading low? (unless this zone's "
            "pressures never follow its flow)")
