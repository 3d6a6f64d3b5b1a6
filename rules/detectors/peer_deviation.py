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
still. The subject's anomaly is then compared with a linear prediction from each peer's anomaly, fitted
by exponentially weighted least squares (`model_halflife`) on the same calm buckets that teach the
profile, and scored once a day of buckets has taught the fit; a bucket with a peer missing is not scored,
since the fit needs all of them.
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
        self.fit_ready = max(2, round(86400.0 / width))  # a day of buckets teaches the fit

    def new_state(self) -> dict[str, Any]:
        n = len(self.subjects)
        st = {"baseline": self.baseline.new_state(n), "z": np.zeros(n), "shift": np.zeros(n),
              "level": np.full(len(self.members), np.nan)}  # each member logger's slow (week) level
        if self.regression:
            m = self.peers.shape[1]
            st |= {"pp": np.zeros((n, m, m)), "ps": np.zeros((n, m)),  # weighted peer x peer, peer x subject
                   "fits": np.zeros(n, dtype=np.int64)}  # buckets that taught the fit
        return st

    def _anomalies(self, st: dict[str, Any], pressure: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(each subject's anomaly, its peers' anomalies (subjects, peers) NaN-padded): pressure less each
        logger's own slow level."""
        p = pressure[self.members]
        lvl = st["level"]
        first = np.isnan(lvl) & ~np.isnan(p)
        lvl[first] = p[first]
        anomaly = p - lvl
        return anomaly[self.own], gather(anomaly, self.peers)

    def _differences(self, st: dict[str, Any], own: np.ndarray, peers: np.ndarray) -> np.ndarray:
        """Each subject's anomaly minus the median anomaly of its zone's other loggers (demand moves every
        anomaly alike, and one drifting peer cannot move the median), or minus the fit's prediction."""
        enough = (count_rows(peers) >= self.rule.min_peers) & ~np.isnan(own)
        if not self.regression:
            return np.where(enough, own - nanmedian_rows(peers), np.nan)
        padding = self.peers < 0
        complete = enough & ~(np.isnan(peers) & ~padding).any(axis=1) & (st["fits"] >= self.fit_ready)
        x = np.nan_to_num(peers)
        pp = st["pp"] + np.eye(self.peers.shape[1]) * (1e-3 * _mean_diagonal(st["pp"]) + 1e-9)[:, None, None]
        beta = np.linalg.solve(pp, st["ps"][..., None])[..., 0]
        return np.where(complete, own - (beta * x).sum(axis=1), np.nan)

    def _teach_fit(self, st: dict[str, Any], own: np.ndarray, peers: np.ndarray, rows: np.ndarray) -> None:
        """Fold these subjects' calm buckets (all peers present) into the weighted least-squares sums."""
        padding = self.peers[rows] < 0
        ok = ~np.isnan(own[rows]) & ~(np.isnan(peers[rows]) & ~padding).any(axis=1)
        rows = rows[ok]
        if not len(rows):
            return
        x, y = np.nan_to_num(peers[rows]), own[rows]
        a = np.maximum(self.a_fit, 1.0 / (st["fits"][rows] + 1.0))[:, None]  # a plain mean while young
        st["pp"][rows] += a[..., None] * (x[:, :, None] * x[:, None, :] - st["pp"][rows])
        st["ps"][rows] += a * (x * y[:, None] - st["ps"][rows])
        st["fits"][rows] += 1

    def evaluate_bucket(self, st: dict[str, Any], bucket: FinalBucket, level: Any) -> Evaluation | None:
        if not len(bucket.pressure):
            return None
        own, peers = self._anomalies(st, bucket.pressure)
        d = self._differences(st, own, peers)
        slots = np.flatnonzero(~np.isnan(d))
        if self.regression:  # the fit learns from every calm bucket, also before it may score
            unscored = np.flatnonzero(np.isnan(d) & (st["fits"] < self.fit_ready))
            self._teach_fit(st, own, peers, unscored)
        if not len(slots):
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
            if self.regression:
                self._teach_fit(st, own, peers, slots[calm])
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


def _mean_diagonal(m: np.ndarray) -> np.ndarray:
    """Per stacked matrix, the mean of its diagonal: the ridge that keeps a fit on collinear peers solvable."""
    return np.diagonal(m, axis1=-2, axis2=-1).mean(axis=-1) if m.shape[-1] else np.zeros(m.shape[0])
