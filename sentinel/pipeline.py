"""One path for every source: batch -> engine -> alert book -> store -> notifiers.

Live MQTT, file replay and Faust workers (one pipeline per zone, sentinel/scaleout) all call
`Pipeline.process`, which is why the same rule gives the same answer everywhere. Stores are written
before notifiers are told, and before a source acknowledges its input, so a crash loses nothing that
was acknowledged.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from alerts.lifecycle import AlertBook
from alerts.model import Alert, AlertChange
from alerts.notifiers import Notifier
from rules.engine import Engine, EngineState, StepResult
from rules.levels import NO_TIME
from rules.loader import RuleSet
from sentinel.catalog import Catalog
from sentinel.deadletter import DeadLetter
from sentinel.detections import Detection
from sentinel.readings import Batch
from sentinel.stores.base import Store, StoreFull

log = logging.getLogger(__name__)


@dataclass
class StepOutcome:
    detections: list[Detection]
    changes: list[AlertChange]


@dataclass
class Counters:
    """Every outcome counted, so an operator can see nothing vanished."""

    readings_in: int = 0
    accepted: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    bad_quality: int = 0
    detections: int = 0
    alert_changes: int = 0
    dead_letters: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "dead_letters"}
        d["dead_letters"] = dict(self.dead_letters)
        d["dead_letters_total"] = sum(self.dead_letters.values())
        return d


class Pipeline:
    def __init__(self, catalog: Catalog, ruleset: RuleSet, *, store: Store | None = None,
                 notifiers: Sequence[Notifier] = (), book: AlertBook | None = None,
                 resolve_after_s: float = 900.0, state: EngineState | None = None) -> None:
        self.catalog = catalog
        self.engine = Engine(catalog, ruleset)
        self.state = state if state is not None else self.engine.new_state()
        self.book = book if book is not None else AlertBook(resolve_after_s)
        self.store = store
        self.notifiers = list(notifiers)
        self.counters = Counters()
        self.alerts: dict[str, Alert] = {}  # every alert seen this run, latest snapshot (for backtests)
        self._pending: list[tuple[list[Detection], list[AlertChange]]] = []

    def reload(self, ruleset: RuleSet) -> None:
        """Swap rules while running; rules whose definition is unchanged keep their state and alarms."""
        engine = Engine(self.catalog, ruleset)
        self.state = engine.adopt(self.state)
        self.engine = engine
        log.info("rules reloaded: %d rules from %s", len(ruleset.enabled()), ", ".join(ruleset.sources))
        self.reconcile_alerts()

    def resume(self, state: EngineState, extra: dict | None) -> None:
        """Carry on from a saved state and the alert book saved beside it (`extra["alerts"]`), if any."""
        self.state = state
        if extra and "alerts" in extra:
            self.book = AlertBook.restore(extra["alerts"], self.book.resolve_after_s)

    def reconcile_alerts(self) -> StepOutcome:
        """Clear open alerts the engine no longer holds raised (rule changed, removed, or state reset):
        nothing else would ever clear them. Call after a reload or a state restore. Returns the "cleared"
        detections made for them and the alert changes, as a step does (they are stored and announced)."""
        raised: set[tuple[str, str]] = set()
        for c in self.engine.rules:
            det = c.detector
            rs = self.state.rules[det.rule.id]
            for slot in np.flatnonzero(rs.tracker.level > 0):
                idx = int(det.subjects[slot])
                zone_name = self.catalog.zones[idx].split("/", 1)[1] if det.subject_is_zone else ""
                raised.add((det.rule.id, zone_name or self.catalog.sensors[idx].sensor_id))
        now = self.state.watermark
        orphans = [a for a in self.book.open_alerts() if a.cleared_ns is None and a.key not in raised]
        if not orphans or now == NO_TIME:
            return StepOutcome([], [])
        cleared = [Detection(rule_id=a.rule_id, kind=a.kind, network=a.network, zone=a.zone, subject=a.subject,
                             sensor_id=a.sensor_id, time_ns=max(now, a.updated_ns), transition="cleared",
                             severity=None, value=a.value, score=0.0,
                             message="rule changed or its state was reset: no longer evaluated as raised")
                   for a in orphans]
        changes = self.book.apply(cleared, now - self.engine.detection_lag_ns)
        log.warning("cleared %d open alert(s) whose rule state was reset: %s", len(orphans),
                    ", ".join(f"{a.rule_id}/{a.subject}" for a in orphans))
        self._pending.append((cleared, changes))
        with contextlib.suppress(StoreFull):  # else written before the next batch
            self._write_pending()
        self._notify(changes)
        return StepOutcome(cleared, changes)

    def _notify(self, changes: list[AlertChange]) -> None:
        for n in self.notifiers:
            try:
                n.notify(changes)
            except Exception:  # a broken notifier must not stop detection
                log.exception("notifier %s failed", type(n).__name__)

    def process(self, batch: Batch, dead_letters: Sequence[DeadLetter] = ()) -> StepOutcome:
        """Store the input, evaluate it, store and announce what it caused.

        The input is stored before the engine sees it: a store that refuses data (StoreFull) leaves the
        engine untouched, so the caller can hold back its acknowledgement and retry the same batch.
        Outputs a full store refused are kept and written first on the next call.
        """
        self._write_pending()
        if self.store is not None:
            if len(batch):
                self.store.write_readings(batch)
            if dead_letters:
                self.store.write_dead_letters(dead_letters)
        return self._outcome(self.engine.step(self.state, batch), len(batch), dead_letters)

    def advance(self, watermark_ns: int) -> StepOutcome:
        """Event time has reached `watermark_ns` upstream (a tick): judge what that makes final or overdue."""
        self._write_pending()
        return self._outcome(self.engine.advance(self.state, watermark_ns), 0, ())

    def _outcome(self, step: StepResult, n_in: int, dead_letters: Sequence[DeadLetter]) -> StepOutcome:
        for rule_id, error in step.errors:
            log.error("rule %s stopped after an error (the other rules go on; fix or reload it): %s",
                      rule_id, error)
        changes = self.book.apply(step.detections, step.horizon) if step.watermark != NO_TIME else []
        c = self.counters
        c.readings_in += n_in
        c.accepted += step.accepted
        c.duplicates += step.duplicates
        c.out_of_order += step.out_of_order
        c.bad_quality += step.bad_quality
        c.detections += len(step.detections)
        c.alert_changes += len(changes)
        for letter in dead_letters:
            c.dead_letters[letter.reason.split(":")[0]] += 1
        for ch in changes:
            self.alerts[ch.alert.alert_id] = ch.alert
        if step.detections or changes:
            self._pending.append((step.detections, changes))
            try:
                self._write_pending()
            except StoreFull:
                log.warning("store full: %d detection(s) and %d alert change(s) kept to write later",
                            len(step.detections), len(changes))
        if changes:
            self._notify(changes)
        return StepOutcome(step.detections, changes)

    # -- operators ----------------------------------------------------------------------------------

    def acknowledge(self, alert_id: str, actor: str, note: str | None = None,
                    time_ns: int | None = None) -> AlertChange:
        """An operator is on it: recorded in the book, stored, announced like any other change.
        Raises AlertError for an unknown or resolved alert. Wall-clock time: a human acted now."""
        return self._manual(self.book.acknowledge(alert_id, actor, note, time_ns or time.time_ns()))

    def resolve(self, alert_id: str, actor: str, note: str | None = None, time_ns: int | None = None) -> AlertChange:
        """Close an alert by hand (a later raise of its condition opens a new one)."""
        return self._manual(self.book.resolve(alert_id, actor, note, time_ns or time.time_ns()))

    def _manual(self, change: AlertChange) -> AlertChange:
        self.alerts[change.alert.alert_id] = change.alert
        self.counters.alert_changes += 1
        self._pending.append(([], [change]))
        with contextlib.suppress(StoreFull):  # else written before the next batch
            self._write_pending()
        self._notify([change])
        return change

    @property
    def outputs_pending(self) -> bool:
        return bool(self._pending)

    def _write_pending(self) -> None:
        while self._pending and self.store is not None:
            detections, changes = self._pending[0]
            if detections:
                self.store.write_detections(detections)
            if changes:
                self.store.write_alert_changes(changes)
            self._pending.pop(0)
        if self.store is None:
            self._pending.clear()

    def flush(self) -> None:
        """Make everything stored so far durable (a no-op for SQLite, a write or spool for InfluxDB);
        raises StoreFull while outputs a full store refused are still waiting."""
        self._write_pending()
        if self.store is not None:
            self.store.flush()

    def close(self) -> None:
        for n in self.notifiers:
            n.close()
        if self.store is not None:
            self.store.flush()
            self.store.close()
