"""The engine cut by zone: one `Pipeline` per zone key, its whole memory one blob. Pure: no Kafka, no I/O.

Zone rules (balance, night flow) need a whole zone together and nothing beyond it, and sensor rules need
one sensor: so a zone is the unit that can move between machines. Each zone runs the very same engine
and alert book as the single process, over a catalog of that zone's sensors; its state (learned
baselines, alarm levels, zone buckets, open alerts) is serialised to one .npz blob that a Faust table
keeps per zone key, backed by a changelog topic. A worker that takes a zone over restores the blob and
goes on where the last one stopped.

Event time beyond the zone arrives as ticks (`ingest.kafka_codec.Tick`): with them a zone that has gone
all quiet is still swept by the deadman rules, as in one engine over every zone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from alerts.model import AlertChange
from ingest.kafka_codec import Tick, WireError, ZoneReadings, decode
from rules import snapshot
from rules.loader import RuleSet
from sentinel.catalog import Catalog
from sentinel.deadletter import DeadLetter
from sentinel.detections import Detection
from sentinel.pipeline import Counters, Pipeline, StepOutcome
from sentinel.readings import Batch


@dataclass(frozen=True)
class Message:
    """One Kafka record for a zone: its raw value and where it came from (for dead letters)."""

    value: bytes | None
    source: str  # e.g. "sentinel.readings[3]@1187"
    received_ns: int = 0


@dataclass
class ZoneResult:
    state: bytes | None  # the zone's new memory, to keep in the table (None: nothing to keep)
    detections: list[Detection] = field(default_factory=list)
    changes: list[AlertChange] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    readings: Batch | None = None  # the decoded readings, global catalog indices (to store)


@dataclass
class _Live:
    blob: bytes  # the state this pipeline is in, as last handed out: identity tells if the table moved on
    pipeline: Pipeline


class ZonedProcessor:
    """Runs zones' pipelines on their messages; state in, state out, so any worker can run any zone."""

    def __init__(self, catalog: Catalog, ruleset: RuleSet, resolve_after_s: float = 900.0) -> None:
        self.catalog = catalog
        self.ruleset = ruleset
        self.resolve_after_s = resolve_after_s
        self._zone_catalogs: dict[str, Catalog] = {}
        self._global_index: dict[str, np.ndarray] = {}  # zone catalog index -> whole catalog index
        for key in catalog.zones:
            members = [s for s in catalog.sensors if f"{s.network}/{s.zone}" == key]
            self._zone_catalogs[key] = Catalog.from_sensors(members)
            self._global_index[key] = np.array([catalog.index[m.sensor_id] for m in members], dtype=np.int32)
        self._live: dict[str, _Live] = {}
        self.counters = Counters()

    @property
    def zone_keys(self) -> tuple[str, ...]:
        return self.catalog.zones

    def forget(self, key: str | None = None) -> None:
        """Drop cached pipelines (all, or one zone): the next message restores from the table's blob."""
        if key is None:
            self._live.clear()
        else:
            self._live.pop(key, None)

    def process(self, key: str, saved: bytes | None, messages: Sequence[Message]) -> ZoneResult:
        zcat = self._zone_catalogs.get(key)
        if zcat is None:
            letters = [DeadLetter.of(m.source, f"unknown zone key {key!r}: not in the sensor catalog",
                                     m.value or b"", m.received_ns, field="key") for m in messages]
            self._count(letters)
            return ZoneResult(None, dead_letters=letters)
        live, restored = self._pipeline(key, zcat, saved)
        pipe = live.pipeline
        result = ZoneResult(None)
        if restored:  # alerts the restored rules no longer hold raised (rules changed, state learned anew)
            self._collect(result, pipe.reconcile_alerts())
        pending: list[Batch] = []
        stored: list[Batch] = []

        def run_pending() -> None:
            if pending:
                batch = Batch.concat(pending)
                pending.clear()
                self._collect(result, pipe.process(batch))

        for m in messages:
            try:
                item = decode(m.value)
            except WireError as exc:
                result.dead_letters.append(DeadLetter.of(m.source, exc.reason, m.value or b"", m.received_ns,
                                                         field=exc.field))
                continue
            if isinstance(item, Tick):
                run_pending()
                self._collect(result, pipe.advance(item.watermark_ns))
                continue
            batch, letter = self._to_batch(zcat, key, item, m)
            if letter is not None:
                result.dead_letters.append(letter)
            if len(batch):
                pending.append(batch)
                stored.append(batch)
        run_pending()
        if stored:
            local = Batch.concat(stored)
            result.readings = Batch(self._global_index[key][local.sensor], local.time_ns, local.value, local.quality)
        self._count(result.dead_letters)
        c = self.counters
        c.readings_in += len(result.readings) if result.readings is not None else 0
        result.state = snapshot.to_bytes(pipe.state, {"alerts": pipe.book.snapshot()}, pipe.engine)
        live.blob = result.state
        return result

    # -- internals ---------------------------------------------------------------------------------

    def restore(self, key: str, saved: bytes | None) -> Pipeline:
        """A zone's pipeline in the state a table blob holds (fresh for None): to resume, or to inspect."""
        zcat = self._zone_catalogs.get(key)
        if zcat is None:
            raise KeyError(f"unknown zone key {key!r}")
        pipe = Pipeline(zcat, self.ruleset, resolve_after_s=self.resolve_after_s)
        if saved:
            pipe.resume(*snapshot.from_bytes(saved, pipe.engine, source=f"zone {key}"))
        return pipe

    def _pipeline(self, key: str, zcat: Catalog, saved: bytes | None) -> tuple[_Live, bool]:
        """The zone's pipeline, and whether it was restored from `saved` just now."""
        live = self._live.get(key)
        if live is not None and saved is not None and live.blob is saved:
            return live, False  # the table still holds what we left there: our pipeline is that state
        live = _Live(saved or b"", self.restore(key, saved))
        self._live[key] = live
        return live, saved is not None

    def _to_batch(self, zcat: Catalog, key: str, item: ZoneReadings,
                  m: Message) -> tuple[Batch, DeadLetter | None]:
        idx = np.array([zcat.index.get(s, -1) for s in item.sensor_id], dtype=np.int64)
        bad = idx < 0
        letter = None
        if bad.any():
            names = sorted({item.sensor_id[i] for i in np.flatnonzero(bad)})
            strangers = [n for n in names if n not in self.catalog.index]
            others = [n for n in names if n in self.catalog.index]
            parts = []
            if strangers:
                parts.append(f"unknown sensor(s) {', '.join(strangers[:5])}")
            if others:
                parts.append(f"sensor(s) {', '.join(others[:5])} not in zone {key}")
            letter = DeadLetter.of(m.source, f"{' and '.join(parts)}: {int(bad.sum())} reading(s) dropped",
                                   m.value or b"", m.received_ns, field="sensor")
        ok = ~bad
        return Batch(idx[ok].astype(np.int32), item.time_ns[ok], item.value[ok], item.quality[ok]), letter

    def _collect(self, result: ZoneResult, outcome: StepOutcome) -> None:
        result.detections.extend(outcome.detections)
        result.changes.extend(outcome.changes)
        self.counters.detections += len(outcome.detections)
        self.counters.alert_changes += len(outcome.changes)

    def _count(self, letters: list[DeadLetter]) -> None:
        for letter in letters:
            self.counters.dead_letters[letter.reason.split(":")[0]] += 1
