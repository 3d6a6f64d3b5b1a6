"""Replay a readings file through the full pipeline, as if it arrived live, and collect what fired."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from alerts.model import Alert
from ingest.replay import read_replay
from rules import snapshot
from rules.levels import NO_TIME
from rules.loader import RuleSet
from sentinel.backtest import AlertSpan
from sentinel.catalog import Catalog
from sentinel.detections import Detection
from sentinel.pipeline import Counters, Pipeline
from sentinel.progress import Progress
from sentinel.readings import iso
from sentinel.stores.base import Store

log = logging.getLogger(__name__)


@dataclass
class ReplayOutcome:
    detections: list[Detection]
    alerts: list[Alert]
    counters: Counters
    first_ns: int
    last_ns: int
    form: str

    @property
    def span_s(self) -> float:
        return max(0.0, (self.last_ns - self.first_ns) / 1e9)

    def alert_spans(self) -> list[AlertSpan]:
        return [AlertSpan(a.alert_id, a.rule_id, a.network, a.zone, a.sensor_id, a.severity.label,
                          a.started_ns, a.resolved_ns) for a in self.alerts]


def replay(catalog: Catalog, readings: str | Path, ruleset: RuleSet, *, store: Store | None = None,
           batch_size: int = 5000, resolve_after_s: float = 900.0, show_progress: bool = True,
           from_state: str | Path | None = None) -> ReplayOutcome:
    """`from_state`: start from this saved state (`sentinel learn`, or a processor's `--state`), not cold;
    it must fit the catalog and every rule (InputError otherwise)."""
    pipeline = Pipeline(catalog, ruleset, store=store, resolve_after_s=resolve_after_s)
    detections: list[Detection] = []
    if from_state is not None:
        pipeline.resume(*snapshot.load(from_state, pipeline.engine, strict=True))
        detections += pipeline.reconcile_alerts().detections  # as `sentinel run` does: carried alerts clear
    reading = Progress("reading", enabled=show_progress)
    data = read_replay(readings, catalog, progress=lambda done, total: reading.update(done, total))
    reading.done(f"{len(data.batch):,} readings ({data.form} form), {len(data.dead_letters):,} dead letters")
    learned_to = pipeline.state.watermark
    if from_state is not None and learned_to != NO_TIME and len(data.batch) and data.batch.time_ns[0] <= learned_to:
        older = int((data.batch.time_ns <= learned_to).sum())
        log.warning("%s: %d reading(s) are not after %s, where the state from %s ends: each is dropped unless it "
                    "is newer than its sensor's last reading in the state", readings, older, iso(learned_to),
                    from_state)
    if data.dead_letters:
        pipeline.process(data.batch.take(slice(0, 0)), data.dead_letters)
    progress = Progress("replay", enabled=show_progress)
    total = len(data.batch)
    for start in range(0, total, batch_size):
        out = pipeline.process(data.batch.take(slice(start, start + batch_size)))
        detections.extend(out.detections)
        progress.update(min(start + batch_size, total), total, f"{len(pipeline.alerts)} alerts")
    progress.done(f"{len(detections)} detections, {len(pipeline.alerts)} alerts")
    if store is not None:
        store.flush()
    t = data.batch.time_ns
    first, last = (int(t.min()), int(t.max())) if total else (0, 0)
    alerts = sorted(pipeline.alerts.values(), key=lambda a: (a.started_ns, a.rule_id, a.subject))
    return ReplayOutcome(detections, alerts, pipeline.counters, first, last, data.form)
