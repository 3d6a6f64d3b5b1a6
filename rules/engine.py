"""The engine: (state, batch of readings) -> detections. Pure: no I/O, no wall clock.

Readings are processed in *layers*: layer k holds each sensor's k-th reading of the batch (in arrival
order), so every per-sensor recurrence (EWMA, CUSUM, hold timers, rings) runs vectorised across sensors
while staying exactly sequential per sensor. A reading is accepted only if it is newer than the sensor's
last accepted one (duplicates and stragglers are counted, not evaluated). Zone rules run on buckets whose
finality follows the stream's prefix watermark. Together these make the detections independent of how
the stream was cut into batches: live, replay and Faust agree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rules.detectors.base import Detector, Evaluation, Layer, SensorDetector
from rules.detectors.deadman import DeadmanDetector
from rules.detectors.registry import DETECTORS
from rules.detectors.zone import ZoneDetector
from rules.explained import settle, standing, suppress
from rules.levels import NO_TIME, TrackerState, track
from rules.loader import RuleSet
from rules.selection import select_sensors, select_zones
from rules.zone_flows import FinalBucket, ZoneFlows, ZoneFlowState
from sentinel.catalog import Catalog
from sentinel.detections import Detection
from sentinel.readings import QUALITY_BAD, Batch
from sentinel.severity import Severity


@dataclass
class RuleState:
    fingerprint: str
    detector: dict[str, Any]
    tracker: TrackerState


@dataclass
class EngineState:
    """Everything the engine remembers; plain arrays, so it can be snapshotted and restored."""

    last_t: np.ndarray  # per sensor: last accepted event time
    watermark: int = NO_TIME
    first_wm: int = NO_TIME
    zone_flows: ZoneFlowState | None = None
    zone_fingerprint: str = ""
    rules: dict[str, RuleState] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # rule id -> the error that stopped it


@dataclass
class StepResult:
    detections: list[Detection]
    accepted: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    bad_quality: int = 0
    watermark: int = NO_TIME
    horizon: int = NO_TIME  # no later step emits a detection older than this (zone buckets lag behind)
    errors: list[tuple[str, str]] = field(default_factory=list)  # rules stopped in this step, and why


@dataclass(frozen=True)
class CompiledRule:
    detector: Detector
    slot_of: np.ndarray | None  # catalog index -> slot (sensor rules)
    fingerprint: str

    @property
    def deadman(self) -> bool:
        return isinstance(self.detector, DeadmanDetector)


class Engine:
    def __init__(self, catalog: Catalog, ruleset: RuleSet) -> None:
        self.catalog = catalog
        self.ruleset = ruleset
        self.settings = ruleset.settings
        # pressure loggers join the zone grid only when a rule reads them there (a burst's fingerprint)
        with_pressure = any(DETECTORS[r.kind].reads_zone_pressure for r in ruleset.enabled())
        self.zone_flows = ZoneFlows(catalog, self.settings, with_pressure=with_pressure)
        # what rule state depends on: editing the holiday calendar, or adding the first rule that reads
        # pressures on the zone grid, must not make every rule start over and drop its alarms
        settings_json = self.settings.model_dump_json(exclude={"holidays"})
        rules_settings = hashlib.sha256(settings_json.encode()).hexdigest()[:16]
        self.zone_fingerprint = hashlib.sha256(  # the zone grid's own state: its shape follows the flag
            (settings_json + f"|pressure={with_pressure}").encode()).hexdigest()[:16]
        self.sensor_rules: list[CompiledRule] = []
        self.zone_rules: list[CompiledRule] = []
        self.deadman_rules: list[CompiledRule] = []
        self.unmatched: list[str] = []  # enabled rules that select nothing in this catalog: not compiled
        for rule in ruleset.enabled():
            cls = DETECTORS[rule.kind]
            if issubclass(cls, ZoneDetector) and not cls.sensor_subjects:
                subjects = select_zones(rule.select, catalog, self.zone_flows.zones_with_inlet)
            else:
                subjects = select_sensors(rule.select, catalog)
            if len(subjects) == 0:  # nothing to watch here (a gas rule in a water zone's engine)
                self.unmatched.append(rule.id)
                continue
            det = cls(rule, subjects, catalog, self.settings)
            fp = hashlib.sha256(
                f"{rule.fingerprint()}|{rules_settings}|{subjects.tobytes().hex()}".encode()
            ).hexdigest()[:16]
            if isinstance(det, ZoneDetector):
                self.zone_rules.append(CompiledRule(det, None, fp))
                continue
            slot_of = np.full(len(catalog), -1, dtype=np.int64)
            slot_of[subjects] = np.arange(len(subjects))
            compiled = CompiledRule(det, slot_of, fp)
            self.sensor_rules.append(compiled)
            if isinstance(det, DeadmanDetector):
                self.deadman_rules.append(compiled)
        # a rule explained by others is judged after them in each bucket, so it sees their alarms of that bucket
        self.zone_rules.sort(key=lambda c: bool(getattr(c.detector.rule, "explained_by", ())))
        self.explainers: dict[str, list[CompiledRule]] = {
            c.detector.rule.id: [e for e in self.zone_rules if e.detector.rule.id in c.detector.rule.explained_by]
            for c in self.zone_rules if getattr(c.detector.rule, "explained_by", ())}
        self._names = [s.sensor_id for s in catalog.sensors]
        # zone detections are stamped at their bucket's end, which is final only `lateness` later
        self.detection_lag_ns = (self.zone_flows.width + self.zone_flows.lateness) if self.zone_rules else 0

    @property
    def rules(self) -> list[CompiledRule]:
        return self.sensor_rules + self.zone_rules

    def new_state(self) -> EngineState:
        st = EngineState(last_t=np.full(len(self.catalog), NO_TIME, dtype=np.int64),
                         zone_flows=self.zone_flows.new_state(), zone_fingerprint=self.zone_fingerprint)
        for c in self.rules:
            st.rules[c.detector.rule.id] = RuleState(c.fingerprint, c.detector.new_state(),
                                                     TrackerState.new(len(c.detector.subjects)))
        return st

    def adopt(self, old: EngineState) -> EngineState:
        """State for this (reloaded) engine: unchanged rules keep what they learned and their alarms."""
        st = self.new_state()
        st.last_t, st.watermark, st.first_wm = old.last_t, old.watermark, old.first_wm
        if old.zone_fingerprint == self.zone_fingerprint:
            st.zone_flows = old.zone_flows
        kept = set()
        for rid, rs in st.rules.items():
            prev = old.rules.get(rid)
            if prev is not None and prev.fingerprint == rs.fingerprint:
                st.rules[rid] = prev
                kept.add(rid)
                if rid in old.failed:
                    st.failed[rid] = old.failed[rid]
        for rid, explainers in self.explainers.items():  # an explaining rule that starts over has no alarm
            if rid in kept and any(e.detector.rule.id not in kept for e in explainers):  # left to end with
                st.rules[rid].detector["explained"][:] = False
        return st

    # -- the step ---------------------------------------------------------------------------------

    def step(self, state: EngineState, batch: Batch) -> StepResult:
        n = len(batch)
        out: list[Detection] = []
        result = StepResult(out, watermark=state.watermark,
                            horizon=state.watermark - self.detection_lag_ns if state.watermark != NO_TIME else NO_TIME)
        if n == 0:
            return result
        if state.first_wm == NO_TIME:  # listening starts with the first reading newer than what was known
            newer = np.flatnonzero(batch.time_ns > state.watermark) if state.watermark != NO_TIME else [0]
            if len(newer):
                state.first_wm = int(batch.time_ns[newer[0]])
        t = batch.time_ns
        wm_after = np.maximum(np.maximum.accumulate(t), state.watermark)
        wm_before = np.empty_like(wm_after)
        wm_before[0] = state.watermark
        wm_before[1:] = wm_after[:-1]

        accepted = self._per_sensor(state, batch, wm_before, result)
        if self.zone_rules and self.zone_flows:
            self._per_zone(state, batch, accepted, wm_before, wm_after, result)
        state.watermark = int(wm_after[-1])
        return self._finish(state, result)

    def advance(self, state: EngineState, watermark: int) -> StepResult:
        """Move event time to `watermark` without readings: a tick from upstream saying the stream has got
        this far. Zone buckets that became final are judged and silent sensors swept, exactly as a reading
        of some other zone at `watermark` would do in one engine over the whole catalog. This is what lets
        an engine that sees one zone only (a Faust partition) raise a deadman for a zone gone all quiet."""
        result = StepResult([], watermark=state.watermark,
                            horizon=state.watermark - self.detection_lag_ns if state.watermark != NO_TIME else NO_TIME)
        if watermark <= state.watermark:
            return result
        if state.first_wm == NO_TIME:
            state.first_wm = int(watermark)
        state.watermark = int(watermark)
        if self.zone_rules and self.zone_flows:
            zst = state.zone_flows
            assert zst is not None
            self.zone_flows.start(zst, state.first_wm)
            self._judge_buckets(state, self.zone_flows.finalize(zst, state.watermark), result)
        return self._finish(state, result)

    def _finish(self, state: EngineState, result: StepResult) -> StepResult:
        """End of a step: sweep for silent sensors at the new watermark, order the detections."""
        out = result.detections
        for c in self.deadman_rules:
            det: DeadmanDetector = c.detector  # type: ignore[assignment]
            if det.rule.id in state.failed:
                continue
            rs = state.rules[det.rule.id]
            with self._guard(c, state, result):
                self._emit(c, rs, det.sweep(rs.detector, rs.tracker.level, state.last_t[det.subjects],
                                            state.watermark, state.first_wm), out)
        out.sort(key=Detection.sort_key)
        result.watermark = state.watermark
        result.horizon = state.watermark - self.detection_lag_ns
        return result

    def _per_sensor(self, state: EngineState, batch: Batch, wm_before: np.ndarray,
                    result: StepResult) -> np.ndarray:
        n = len(batch)
        sensor, t = batch.sensor, batch.time_ns
        layer_order, bounds = self._layers(sensor)
        accepted = np.zeros(n, dtype=bool)
        good = batch.quality != QUALITY_BAD
        for k in range(len(bounds) - 1):
            idx = layer_order[bounds[k]:bounds[k + 1]]
            s, tt = sensor[idx], t[idx]
            last = state.last_t[s]
            ok = tt > last
            if ok.all():  # the usual case: every reading is newer than its sensor's last one
                acc, prev = idx, last
                state.last_t[s] = tt
            else:
                result.duplicates += int((tt == last).sum())
                result.out_of_order += int((tt < last).sum())
                acc, prev = idx[ok], last[ok]
                state.last_t[s[ok]] = tt[ok]
            accepted[acc] = True
            if len(acc) == 0:
                continue
            # a bad-quality reading still proves the sensor is alive (deadman sees it); no rule judges it
            alive = self._layer(batch, acc, prev, wm_before, state.first_wm)
            use = good[acc]
            if use.all():
                layer = alive
            else:
                result.bad_quality += int((~use).sum())
                layer = self._layer(batch, acc[use], prev[use], wm_before, state.first_wm)
            for c in self.sensor_rules:
                lay = alive if c.deadman else layer
                if len(lay.sensor) == 0:
                    continue
                slots_all = c.slot_of[lay.sensor]
                sel: np.ndarray | slice = np.flatnonzero(slots_all >= 0)
                if len(sel) == 0:
                    continue
                if len(sel) == len(slots_all):
                    sel, slots = slice(None), slots_all  # every reading of the layer is this rule's
                else:
                    slots = slots_all[sel]
                det: SensorDetector = c.detector  # type: ignore[assignment]
                if det.rule.id in state.failed:
                    continue
                rs = state.rules[det.rule.id]
                with self._guard(c, state, result):
                    evals = det.evaluate(rs.detector, slots, lay, sel, rs.tracker.level[slots])
                    for ev in evals if isinstance(evals, list) else (evals,):
                        self._emit(c, rs, ev, result.detections)
        result.accepted += int(accepted.sum())
        return accepted

    @contextmanager
    def _guard(self, c: CompiledRule, state: EngineState, result: StepResult) -> Iterator[None]:
        """One broken rule must not stop the others: its error stops that rule only, and is reported."""
        rid = c.detector.rule.id
        try:
            yield
        except Exception as exc:  # a rule's fault, not the stream's: keep evaluating everything else
            state.failed[rid] = f"{type(exc).__name__}: {exc}"
            result.errors.append((rid, state.failed[rid]))

    @staticmethod
    def _layer(batch: Batch, acc: np.ndarray, prev: np.ndarray, wm_before: np.ndarray, first_wm: int) -> Layer:
        if len(acc) == len(batch):  # the whole batch is one clean layer: use its arrays as they are
            return Layer(batch.sensor, batch.time_ns, batch.value, prev, wm_before, first_wm)
        return Layer(batch.sensor[acc], batch.time_ns[acc], batch.value[acc], prev, wm_before[acc], first_wm)

    def _layers(self, sensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Arrival-ordered positions grouped by each sensor's k-th reading, and the layer bounds."""
        n = len(sensor)
        if np.bincount(sensor, minlength=len(self.catalog)).max(initial=0) <= 1:
            return np.arange(n), np.array([0, n])  # the common case: one reading per sensor
        by_sensor = np.argsort(sensor, kind="stable")
        s_sorted = sensor[by_sensor]
        starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
        run_start = np.repeat(starts, np.diff(np.r_[starts, n]))
        rank = np.empty(n, dtype=np.int64)
        rank[by_sensor] = np.arange(n) - run_start
        return np.argsort(rank, kind="stable"), np.r_[0, np.cumsum(np.bincount(rank))]

    def _per_zone(self, state: EngineState, batch: Batch, accepted: np.ndarray, wm_before: np.ndarray,
                  wm_after: np.ndarray, result: StepResult) -> None:
        zf, zst = self.zone_flows, state.zone_flows
        assert zst is not None
        zf.start(zst, state.first_wm)
        use = accepted & (batch.quality != QUALITY_BAD)
        advances = np.flatnonzero(zf.final_index(wm_after) != zf.final_index(wm_before))
        ends = np.r_[advances, len(batch) - 1]
        start = 0
        for end in ends:
            if end < start:
                continue
            seg = slice(start, end + 1)
            m = use[seg]
            held = zf.add(zst, batch.sensor[seg][m], batch.time_ns[seg][m], batch.value[seg][m])
            self._judge_buckets(state, zf.finalize(zst, int(wm_after[end])), result)
            if len(held[0]):
                zf.add(zst, *held)  # now within the ring: finalizing moved up to its watermark
            start = end + 1

    def _judge_buckets(self, state: EngineState, buckets: list[FinalBucket], result: StepResult) -> None:
        for bucket in buckets:
            for c in self.zone_rules:
                det: ZoneDetector = c.detector  # type: ignore[assignment]
                if det.rule.id in state.failed:
                    continue
                rs = state.rules[det.rule.id]
                explainers = self.explainers.get(det.rule.id)
                with self._guard(c, state, result):
                    if not explainers:
                        ev = det.evaluate_bucket(rs.detector, bucket, rs.tracker.level)
                        if ev is not None:
                            self._emit(c, rs, ev, result.detections)
                        continue
                    # the rule is told which zones have an explaining alarm standing, and says in
                    # extra["covered"] whether one stood when the evidence it judges was read
                    now = self._covered(state, det, explainers)
                    if now is None:  # an explaining rule stopped: nothing can be explained, alarms hold
                        rs.detector["explained"][:] = False
                        now = np.zeros(len(det.subjects), dtype=bool)
                    rs.detector["explainer_standing"][:] = now
                    before = rs.tracker.level.copy()
                    ev = det.evaluate_bucket(rs.detector, bucket, rs.tracker.level)
                    then = now.copy()
                    if ev is not None:
                        then[ev.slots] = ev.extra.get("covered", now[ev.slots])
                        suppress(ev.raw, before[ev.slots], then[ev.slots], now[ev.slots])
                        raising = (ev.raw > 0) & (before[ev.slots] == 0) & then[ev.slots]
                        ev.extra["where"] = [self._explained_note(explainers) if r else "" for r in raising]
                        self._emit(c, rs, ev, result.detections)
                    done = settle(rs.detector["explained"], before, rs.tracker.level, then, now)
                    self._clear_explained(c, rs, done, bucket.end_ns, explainers, result.detections)

    def _covered(self, state: EngineState, det: ZoneDetector, explainers: list[CompiledRule]) -> np.ndarray | None:
        """Per slot of `det`: does an alarm of one of its explaining rules stand in that zone now? None when
        one of them has stopped on an error: its alarms can no longer be read."""
        if any(e.detector.rule.id in state.failed for e in explainers):
            return None
        alarms = [(e.detector.subjects, state.rules[e.detector.rule.id].tracker.level) for e in explainers]
        return standing(len(self.catalog.zones), alarms)[det.subjects]

    @staticmethod
    def _explained_note(explainers: list[CompiledRule]) -> str:
        ids = ", ".join(e.detector.rule.id for e in explainers)
        return f"an alarm of {ids} stands in the zone: this is likely its water, and clears with it"

    def _clear_explained(self, c: CompiledRule, rs: RuleState, slots: np.ndarray, t: int,
                         explainers: list[CompiledRule], out: list[Detection]) -> None:
        """End the alarms whose explanation ended (see rules/explained.py), as the rule's own clear."""
        if not len(slots):
            return
        changed, _old, _new = track(rs.tracker, slots, np.full(len(slots), t, dtype=np.int64),
                                    np.zeros(len(slots), dtype=np.int8), 0)
        ids = ", ".join(e.detector.rule.id for e in explainers)
        for i in np.flatnonzero(changed):
            network, zone = self.catalog.zones[int(c.detector.subjects[slots[i]])].split("/", 1)
            out.append(Detection(
                rule_id=c.detector.rule.id, kind=c.detector.kind, network=network, zone=zone, subject=zone,
                sensor_id=None, time_ns=t, transition="cleared", severity=None, value=0.0, score=0.0,
                message=f"cleared with {ids}: the excess was that event's water, and it has ended"))

    # -- emission ---------------------------------------------------------------------------------

    def _emit(self, c: CompiledRule, rs: RuleState, ev: Evaluation, out: list[Detection]) -> None:
        if len(ev.slots) == 0:
            return
        changed, old, new = track(rs.tracker, ev.slots, ev.t, ev.raw, c.detector.hold_ns)
        if not changed.any():
            return
        det = c.detector
        rule = det.rule
        where = ev.extra.get("where")  # per slot: a detail for the message (where the evidence points, how big)
        for i in np.flatnonzero(changed):
            o, nw = int(old[i]), int(new[i])
            subject_idx = int(det.subjects[ev.slots[i]])
            if det.subject_is_zone:
                network, zone = self.catalog.zones[subject_idx].split("/", 1)
                subject, sensor_id, unit = zone, None, "m3/h"
            else:
                sensor_id = self._names[subject_idx]
                network, zone = self.catalog.zone_of(subject_idx)
                subject, unit = sensor_id, self.catalog.canonical_unit(subject_idx)
            transition = ("raised" if o == 0 else "cleared" if nw == 0 else
                          "escalated" if nw > o else "deescalated")
            value, score = float(ev.value[i]), float(ev.score[i])
            grade = nw if nw else o
            out.append(Detection(
                rule_id=rule.id, kind=det.kind, network=network, zone=zone, subject=subject,
                sensor_id=sensor_id, time_ns=int(ev.t[i]), transition=transition,
                severity=Severity(nw) if nw else None, value=value, score=score,
                message=(det.describe(grade, value, score, unit) + (f"; {where[i]}" if where is not None and where[i]
                                                                    else "")) if nw else "back to normal",
            ))
