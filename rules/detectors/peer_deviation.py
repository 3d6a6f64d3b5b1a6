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

    def new_state(self) -> dict[str, Any]:
        n = len(self.subjects)
        return {"baseline": self.baseline.new_state(n), "z": np.zeros(n), "shift": np.zeros(n),
                "level": np.full(len(self.members), np.nan)}  # each member logger's slow (week) level

    def _differences(self, st: dict[str, Any], pressure: np.ndarray) -> np.ndarray:
        """Each subject's anomaly (pressure less its own slow level) minus the median anomaly of its zone's
        other loggers: demand moves every anomaly alike, and one drifting peer cannot move the median."""
        p = pressure[self.members]
        lvl = st["level"]
        first = np.isnan(lvl) & ~np.isnan(p)
        lvl[first] = p[first]
        anomaly = p - lvl
        peers = gather(anomaly, self.peers)
        enough = (count_rows(peers) >= self.rule.min_peers) & ~np.isnan(anomaly[self.own])
        return np.where(enough, anomaly[self.own] - nanmedian_rows(peers), np.nan)

    def evaluate_bucket(self, st: dict[str, Any], bucket: FinalBucket, level: Any) -> Evaluation | None:
        if not len(bucket.pressure):
            return None
        d = self._differences(st, bucket.pressure)
        slots = np.flatnonzero(~np.isnan(d))
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
        # levels follow slowly, except a flagged subject's (a peer that is not a subject always follows)
        follow = ~np.isnan(bucket.pressure[self.members])
        follow[self.own[slots[~calm]]] = False
        p, lvl = bucket.pressure[self.members], st["level"]
        lvl[follow] += self.a_level * (p[follow] - lvl[follow])
        return Evaluation(slots, t, raw, shift[slots], zs[slots])

    def describe(self, grade: int, value: float, score: float, unit: str) -> str:
        return (f"reads {value:+.3g} {unit} off its usual difference to the zone's other loggers ({score:+.1f} sigma, "
                f"limit {self.levels.threshold_for(grade):g}): transmitter drift or offset, or a leak right by it")
