"""Peer deviation: a pressure logger parting from the other loggers of its zone.

Demand moves every logger of a zone together, so a logger's pressure minus the median of its zone's
other loggers (each taken against its own slow level, so one drifting peer cannot move the median)
follows the same course every day (pumps and tanks shape it by the hour); what moves it
off that course for hours is local: a transmitter drifting or offset after maintenance, or a leak right
by it. Each bucket's difference is scored against its learned profile per hour of day (z), z and the
shift are smoothed (`smooth`) so a noisy bucket does not alarm, and the grade needs both `z` and
`min_shift` kPa. It reads the zone grid's pressure means, so it answers the same whatever the batching.
After warm-up only buckets well within the limit teach the profile, so a slow drift cannot drag its own
baseline along; a drifted transmitter stays flagged until it is fixed (or the rule's state is reset).

`model: regression` is for loggers that do not move together: at a heat substation the supply pressure
rises with load while the return falls, so the median of the others says little, but their sum holds
still. Each zone keeps one weighted second-moment matrix of its loggers' anomalies (`model_halflife`),
taught pair by pair by buckets where both are present and neither is under an alarm (everything teaches
during the first day); a subject's anomaly is compared with its Gaussian prediction from whichever peers
reported (the precision matrix of the present loggers gives every subject's at once), so a silent peer
narrows the fit instead of stopping it. A logger is used once a day of buckets has taught it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rules.baseline import Baseline
from rules.calendar import holiday_days
from rules.detectors.base import Evaluation
from rules.detectors.rowwise import count_rows, gather, nanmedian_rows, padded
from rules.detectors.zone import ZoneDetector
from rules.levels import LevelTable
from rules.schema import PeerDeviationRule
from rules.zone_flows import FinalBucket, pressure_members


class PeerDeviationDetector(ZoneDetector):
    kind = "peer_deviation"
    reads_zone_pressure = True
    sensor_subjects = True
    rule: PeerDeviationRule

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        loggers = pressure_members(self.catalog)
        pos = np.searchsorted(loggers, self.subjects)
        ok = (pos < len(loggers)) & (loggers[np.minimum(pos, len(loggers) - 1)] == self.subjects) if len(loggers) \
            else np.zeros(len(self.subjects), dtype=bool)
        if not ok.all():
            bad = self.catalog.sensors[int(self.subjects[~ok][0])].sensor_id
            raise ValueError(f"rule {self.rule.id!r}: peer_deviation compares pressure loggers; {bad} is not one "
                             "(select quantity: pressure)")
        self.pos = pos  # each subject's position in FinalBucket.pressure
        zone_of_logger = self.catalog.zone_code[loggers]
        # every logger of the subjects' zones keeps a slow level of its own (positions in FinalBucket.pressure)
        self.members = np.flatnonzero(np.isin(zone_of_logger, self.catalog.zone_code[self.subjects]))
        member_of = {int(p): i for i, p in enumerate(self.members)}
        self.own = np.array([member_of[int(p)] for p in pos], dtype=np.int64)
        self.peers = padded([np.array([member_of[int(p)] for p in self.members
                                       if zone_of_logger[p] == self.catalog.zone_code[s] and loggers[p] != s],
                                      dtype=np.int64) for s in self.subjects])
        self.a_level = 1.0 - 0.5 ** (self.settings.zone_bucket / (86400.0 * 7))
        self.levels = LevelTable.of(self.rule.z, self.rule.severity)
        width = self.settings.zone_bucket
        self.a_smooth = 1.0 - 0.5 ** (width / self.rule.smooth)
        self.baseline = Baseline(self.rule.baseline, np.full(len(self.subjects), width), self.settings.utc_offset_h,
                                 holiday_days(self.settings.holidays))
        self.width_ns = int(width * 1e9)
        self.regression = self.rule.model == "regression"
        self.a_fit = 1.0 - 0.5 ** (width / self.rule.model_halflife)
        self.fit_ready = max(2, round(86400.0 / width))  # a day of buckets teaches a logger's part of the fit
        member_zone = zone_of_logger[self.members]
        self.zone_members = padded([np.flatnonzero(member_zone == z) for z in np.unique(member_zone)])

    def new_state(self) -> dict[str, Any]:
        n = len(self.subjects)
        st = {"baseline": self.baseline.new_state(n), "z": np.zeros(n), "shift": np.zeros(n),
              "level": np.full(len(self.members), np.nan)}  # each member logger's slow (week) level
        if self.regression:
            zones, m = self.zone_members.shape
            st |= {"moments": np.zeros((zones, m, m)),  # per zone, weighted mean of anomaly x anomaly
                   "pairs": np.zeros((zones, m, m), dtype=np.int32)}  # buckets that taught each pair
        return st

    def _anomalies(self, st: dict[str, Any], pressure: np.ndarray) -> np.ndarray:
        """Each member logger's pressure less its own slow level (NaN where it did not report)."""
        p = pressure[self.members]
        lvl = st["level"]
        first = np.isnan(lvl) & ~np.isnan(p)
        lvl[first] = p[first]
        return p - lvl

    def _differences(self, st: dict[str, Any], anomaly: np.ndarray) -> np.ndarray:
        """Each subject's anomaly minus the median anomaly of its zone's other loggers (demand moves every
        anomaly alike, and one drifting peer cannot move the median), or minus the fit's prediction."""
        own = anomaly[self.own]
        if self.regression:
            return np.where(np.isnan(own), np.nan, self._residuals(st, anomaly)[self.own])
        peers = gather(anomaly, self.peers)
        enough = (count_rows(peers) >= self.rule.min_peers) & ~np.isnan(own)
        return np.where(enough, own - nanmedian_rows(peers), np.nan)

    def _residuals(self, st: dict[str, Any], anomaly: np.ndarray) -> np.ndarray:
        """Per member: its anomaly less its conditional mean given the zone's other present, taught loggers
        ((Q a)_i / Q_ii with Q the inverse of their moment matrix); NaN where fewer than `min_peers` of them.
        With a taught peer silent the prediction is looser (its variance 1/Q_ii grows), so the residual is
        shrunk by the ratio of the two spreads: the profile that judges it was learned with every peer, and
        a return transmitter read without its supply must not look drifted by the day's load."""
        out = np.full(len(anomaly), np.nan)
        for z, row in enumerate(self.zone_members):
            slot = np.flatnonzero(row >= 0)
            members = row[slot]
            taught = np.diagonal(st["pairs"][z])[slot] >= self.fit_ready
            use = ~np.isnan(anomaly[members]) & taught
            if use.sum() < self.rule.min_peers + 1:
                continue
            q = _precision(st["moments"][z], slot[use])
            qd = np.diagonal(q)
            with np.errstate(divide="ignore", invalid="ignore"):
                r = np.where(qd > 0, (q @ anomaly[members[use]]) / qd, np.nan)  # pairs taught apart: not PD
                if use.sum() < taught.sum():
                    spread_all = 1.0 / np.diagonal(_precision(st["moments"][z], slot[taught]))
                    r *= np.sqrt(np.clip(spread_all[use[taught]] * qd, 0.0, 1.0))
            out[members[use]] = r
        return out

    def _teach_fit(self, st: dict[str, Any], anomaly: np.ndarray, quiet: np.ndarray) -> None:
        """Fold this bucket into each zone's moments, for pairs of present loggers that are `quiet` (not a
        subject under an alarm): a plain mean while a pair is young, then the weighted one."""
        for z, row in enumerate(self.zone_members):
            slot = np.flatnonzero(row >= 0)
            members = row[slot]
            ok = ~np.isnan(anomaly[members]) & quiet[members]
            if ok.sum() == 0:
                continue
            k = slot[ok]
            a = anomaly[members[ok]]
            cell = np.ix_(k, k)
            n = st["pairs"][z][cell]
            w = np.maximum(self.a_fit, 1.0 / (n + 1.0))
            st["moments"][z][cell] += w * (np.outer(a, a) - st["moments"][z][cell])
            st["pairs"][z][cell] = n + 1

    def evaluate_bucket(self, st: dict[str, Any], bucket: FinalBucket, level: Any) -> Evaluation | None:
        if not len(bucket.pressure):
            return None
        anomaly = self._anomalies(st, bucket.pressure)
        d = self._differences(st, anomaly)
        slots = np.flatnonzero(~np.isnan(d))
        if not len(slots):
            if self.regression:  # nothing judged yet: every present logger teaches the fit
                self._teach_fit(st, anomaly, np.ones(len(self.members), dtype=bool))
            return None
        x = d[slots]
        t = np.full(len(slots), bucket.end_ns, dtype=np.int64)
        cell = self.baseline.cells(slots, t - self.width_ns)
        z, dev, ready = self.baseline.score(st["baseline"], cell, x)
        z = np.where(ready, np.clip(z, -50, 50), 0.0)
        zs, shift = st["z"], st["shift"]
        zs[slots] += self.a_smooth * (z - zs[slots])
        shift[slots] += self.a_smooth * (np.where(ready, dev, 0.0) - shift[slots])
        big = np.abs(shift[slots]) >= self.rule.min_shift
        raw = np.where(ready & big, self.levels.above(np.abs(zs[slots]), level[slots]), 0).astype(np.int8)
        # only clearly normal buckets teach: a drifting transmitter must not become the usual
        calm = ~ready | ((raw == 0) & (np.abs(zs[slots]) < self.levels.lowest() / 2))
        if calm.any():
            self.baseline.learn(st["baseline"], cell[calm], x[calm], self.baseline.alpha[slots[calm]])
        if self.regression:  # a subject under an alarm (or close to one) keeps out of the fit
            quiet = np.ones(len(self.members), dtype=bool)
            quiet[self.own[slots[~calm]]] = False
            self._teach_fit(st, anomaly, quiet)
        # levels follow slowly, except a flagged subject's (a peer that is not a subject always follows)
        follow = ~np.isnan(bucket.pressure[self.members])
        follow[self.own[slots[~calm]]] = False
        p, lvl = bucket.pressure[self.members], st["level"]
        lvl[follow] += self.a_level * (p[follow] - lvl[follow])
        return Evaluation(slots, t, raw, shift[slots], zs[slots])

    def describe(self, grade: int, value: float, score: float, unit: str) -> str:
        if self.regression:
            return (f"reads {value:+.3g} {unit} off what the zone's other transmitters predict ({score:+.1f} sigma, "
                    f"limit {self.levels.threshold_for(grade):g}): drift or offset here or in the one it is read "
                    "against most (a supply and its return both show it), or a leak right by it")
        return (f"reads {value:+.3g} {unit} off its usual difference to the zone's other loggers ({score:+.1f} sigma, "
                f"limit {self.levels.threshold_for(grade):g}): transmitter drift or offset, or a leak right by it")


def _precision(moments: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Inverse of the moments of loggers `k`, with a small ridge so collinear loggers stay solvable."""
    m = moments[np.ix_(k, k)]
    return np.linalg.inv(m + np.eye(len(k)) * (1e-3 * np.diagonal(m).mean() + 1e-9))
