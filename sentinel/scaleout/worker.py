"""The Faust app: zone pipelines on the partitions this worker owns, state in a changelog-backed table.

Per micro-batch (`take_events`) the readings agent groups records by (partition, zone key), runs each
zone's pipeline (`ZonedProcessor`) from the state the table holds, and then, in this order:

1. stores the readings (when a store is configured);
2. sends detections, alert changes and dead letters to their topics and waits until Kafka has them;
3. puts each zone's new state, and each partition's last evaluated offset, in the table (their changelog
   records go to the zone's partition);
4. lets Faust acknowledge the batch; offsets are committed only after the producer is flushed.

Faust's own offsets are not trusted to be exact (see continuity.py): records at or below a partition's
evaluated offset are dropped, and records Faust skipped are read back from Kafka and evaluated first.

A worker killed anywhere in between is replaced by one that restores the table from the changelog and
re-reads from the last committed offset. Re-read readings the saved state already holds are dropped by
the engine as duplicates (they are not newer than their sensor's last reading); re-sent outputs are the
same records again (deterministic detections, alert ids), which the stores overwrite. So a crash neither
loses nor doubles a detection in the store, and learned baselines survive the take-over.

The sink agent writes the outputs of the partitions this worker owns to the store and notifiers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import faust

from alerts.notifiers import Notifier
from ingest.kafka_codec import (
    decode_alert_change,
    decode_dead_letter,
    decode_detection,
    encode_alert_change,
    encode_dead_letter,
    encode_detection,
)
from rules.loader import RuleSet
from sentinel.catalog import Catalog
from sentinel.deadletter import DeadLetter
from sentinel.heartbeat import Heartbeat
from sentinel.readings import Batch
from sentinel.scaleout.continuity import GapReader, Record, decode_offset, missing, offset_key
from sentinel.scaleout.topics import DEFAULT_TOPICS, STATE_TABLE, Topics
from sentinel.scaleout.zoned import Message, ZonedProcessor, ZoneResult
from sentinel.settings import Settings
from sentinel.stores.base import Store, StoreFull

log = logging.getLogger(__name__)


@dataclass
class WorkerConfig:
    bootstrap: str
    app_id: str = "lifeline-sentinel"
    topics: Topics = DEFAULT_TOPICS
    partitions: int = 8
    replication: int = 1
    batch_max: int = 500
    batch_within_s: float = 0.2
    session_timeout_s: float = 10.0
    resolve_after_s: float = 900.0
    sink: bool = True
    stats_every_s: float = 30.0
    heartbeat_file: Path | None = None
    data_dir: Path | None = None  # Faust's own folder (tables live in memory; a temp dir when None)
    stall_s: float = 60.0  # records waiting this long with none evaluated: exit for a supervisor to restart

    @classmethod
    def from_settings(cls, s: Settings) -> WorkerConfig:
        return cls(bootstrap=s.kafka_bootstrap, app_id=s.worker_app_id, topics=Topics(s.kafka_prefix),
                   partitions=s.kafka_partitions, replication=s.kafka_replication, batch_max=s.worker_batch_max,
                   batch_within_s=s.worker_batch_within_s, session_timeout_s=s.worker_session_timeout_s,
                   resolve_after_s=s.resolve_after_s, sink=s.worker_sink, stats_every_s=s.stats_every_s,
                   heartbeat_file=s.heartbeat_file, stall_s=s.worker_stall_s)


class StoreThread:
    """The store on a thread of its own: its blocking I/O stays off the event loop (Kafka heartbeats go
    on while SQLite or InfluxDB work), and SQLite's connection is used by the thread that opened it."""

    def __init__(self, factory: Callable[[], Store]) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sentinel-store")
        self.store: Store = self._pool.submit(factory).result()

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, partial(fn, *args))

    def close(self) -> None:
        def close() -> None:
            self.store.flush()
            self.store.close()

        self._pool.submit(close).result()
        self._pool.shutdown()


def build_app(cfg: WorkerConfig, catalog: Catalog, ruleset: RuleSet, *, store: StoreThread | None = None,
              notifiers: Sequence[Notifier] = ()) -> faust.App:
    app = faust.App(
        cfg.app_id,
        broker=[f"kafka://{b.strip()}" for b in cfg.bootstrap.split(",")],
        store="memory://",  # tables live in memory, rebuilt from their changelog on take-over
        autodiscover=False,
        web_enabled=False,  # several workers per machine must not fight over a port
        topic_partitions=cfg.partitions,
        topic_replication_factor=cfg.replication,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_session_timeout=cfg.session_timeout_s,
        broker_heartbeat_interval=max(0.5, cfg.session_timeout_s / 5),
        broker_commit_interval=1.0,
        # No standby copies: with them, faust-streaming 0.15 resumes the stream before seeking it to the
        # committed offsets, and records of newly assigned partitions fetched in between were skipped
        # (reproduced by a worker joining while data flows). A take-over instead reads the zones'
        # changelog, which is compacted: one record per zone.
        table_standby_replicas=0,
        key_serializer="raw",
        value_serializer="raw",
        logging_config=None,
        datadir=cfg.data_dir or tempfile.mkdtemp(prefix=f"sentinel-worker-{cfg.app_id}-"),
    )
    app.transport = _transport_for(cfg.topics.all)(app.conf.broker_consumer, app)
    readings = app.topic(cfg.topics.readings, key_type=bytes, value_type=bytes, partitions=cfg.partitions,
                         key_serializer="raw", value_serializer="raw")
    outputs = {name: app.topic(name, key_type=bytes, value_type=bytes, partitions=cfg.partitions,
                               key_serializer="raw", value_serializer="raw") for name in cfg.topics.outputs}
    table = app.Table(STATE_TABLE, default=None, partitions=cfg.partitions, key_type=bytes, value_type=bytes)
    processor = ZonedProcessor(catalog, ruleset, cfg.resolve_after_s)
    stats = _Stats(cfg.stats_every_s)

    gaps = GapReader(cfg.bootstrap, cfg.topics.readings)

    async def _in_order(part: int, records: list[Record]) -> list[Record]:
        """This partition's records not evaluated yet, contiguous from the last evaluated one."""
        last = decode_offset(table.data.get(offset_key(part)))
        records = sorted((r for r in records if last is None or r.offset > last), key=lambda r: r.offset)
        if not records:
            return []
        first = last + 1 if last is not None else await gaps.log_start(part)
        hole = missing(records, first)
        if hole is None:
            return records
        log.warning("%s[%d]: offsets %d..%d did not all reach this worker (Faust skipped %d around a "
                    "rebalance); reading them back", cfg.topics.readings, part, hole[0], hole[1] - 1,
                    (hole[1] - hole[0]) - len(records))
        return await gaps.read(part, *hole)

    @app.agent(readings, name="evaluate")
    async def evaluate(stream: faust.StreamT) -> None:
        async for events in stream.take_events(cfg.batch_max, within=cfg.batch_within_s):
            received, started = time.time_ns(), time.monotonic()
            by_partition: dict[int, list[Record]] = {}
            for ev in events:
                m = ev.message
                by_partition.setdefault(m.partition, []).append(Record(m.partition, m.offset, m.key or b"", m.value))
            done: dict[int, int] = {}
            groups: dict[tuple[int, bytes], list[Message]] = {}
            for part, records in by_partition.items():
                for rec in await _in_order(part, records):
                    groups.setdefault((part, rec.key), []).append(
                        Message(rec.value, f"{cfg.topics.readings}[{part}]@{rec.offset}", received))
                    done[part] = rec.offset
            results: list[tuple[int, bytes, ZoneResult]] = []
            for (part, key), msgs in groups.items():
                saved = table.data.get(key)
                results.append((part, key, processor.process(key.decode("utf-8", "replace"), saved, msgs)))
            if store is not None:  # the input is stored before the state says it was evaluated
                batches = [r.readings for _, _, r in results if r.readings is not None and len(r.readings)]
                if batches:
                    await store.call(_retry_full, store.store.write_readings, Batch.concat(batches))
            sent = 0
            for part, key, r in results:
                for topic, encode, items in ((cfg.topics.detections, encode_detection, r.detections),
                                             (cfg.topics.alerts, encode_alert_change, r.changes),
                                             (cfg.topics.dead_letters, encode_dead_letter, r.dead_letters)):
                    for item in items:  # buffered in order: an alert's changes must reach the sink in order
                        outputs[topic].send_soon(key=key, value=encode(item), partition=part)
                        sent += 1
                for d in r.dead_letters:
                    log.warning("dead letter: %s", d.describe())
            if sent:
                await app.producer.flush()  # outputs are in Kafka before the state says they happened
            for part, key, r in results:
                if r.state is not None:
                    table.data[key] = r.state
                    table.send_changelog(part, key, r.state)
            for part, offset in done.items():  # with the states, in the same changelog partition
                table.data[offset_key(part)] = str(offset).encode()
                table.send_changelog(part, offset_key(part), table.data[offset_key(part)])
            watchdog.progressed()
            stats.add(len(events), sum(len(r.readings) if r.readings is not None else 0 for _, _, r in results),
                      sum(len(r.detections) for _, _, r in results), time.monotonic() - started)

    if cfg.sink and store is not None:
        sink_source = app.topic(*cfg.topics.outputs, key_type=bytes, value_type=bytes,
                                key_serializer="raw", value_serializer="raw")

        @app.agent(sink_source, name="sink")
        async def sink(stream: faust.StreamT) -> None:
            async for events in stream.take_events(cfg.batch_max, within=cfg.batch_within_s):
                dets, changes, letters = [], [], []
                for ev in events:
                    topic, value = ev.message.topic, ev.message.value
                    try:
                        if topic == cfg.topics.detections:
                            dets.append(decode_detection(value))
                        elif topic == cfg.topics.alerts:
                            changes.append(decode_alert_change(value))
                        else:
                            letters.append(decode_dead_letter(value))
                    except Exception as exc:  # written by another version? keep it, don't stop
                        letters.append(DeadLetter.of(f"{topic}[{ev.message.partition}]@{ev.message.offset}",
                                                     f"undecodable output record: {exc}", value or b"",
                                                     time.time_ns()))
                await store.call(_write_outputs, store.store, dets, changes, letters)
                for n in notifiers:
                    if changes:
                        try:
                            await asyncio.get_running_loop().run_in_executor(None, n.notify, changes)
                        except Exception:  # a broken notifier must not stop the sink
                            log.exception("notifier %s failed", type(n).__name__)

    @app.task
    async def announce() -> None:
        log.info("worker %s: %d sensors in %d zones, %d rules; readings from %s (%d partitions)",
                 cfg.app_id, len(catalog), len(catalog.zones), len(ruleset.enabled()), cfg.topics.readings,
                 cfg.partitions)

    @app.timer(interval=max(1.0, cfg.stats_every_s))
    async def report() -> None:
        stats.report(processor)

    heartbeat = Heartbeat(cfg.heartbeat_file, every_s=0)

    watchdog = _Watchdog(cfg.stall_s)

    @app.timer(interval=5.0)
    async def alive() -> None:
        if await watchdog.stalled(app, table, gaps, cfg.topics.readings):
            return  # no heartbeat: the container health check fails too
        heartbeat.beat()

    app.sentinel_processor = processor  # type: ignore[attr-defined]
    return app


# -- helpers -----------------------------------------------------------------------------------------

def _transport_for(stream_topics: tuple[str, ...]) -> type:
    """Faust's Kafka transport, with one fix: a partition this group never committed is read from its
    start. aiokafka's seek_to_committed() leaves such a partition where the fetcher happens to be; when
    a rebalance lands between its first fetch and Faust's seek (a worker joining while data flows), the
    records fetched then dropped by the rebalance would be skipped for good."""
    from faust.transport.drivers import aiokafka as faust_kafka

    topics = frozenset(stream_topics)

    class Consumer(faust_kafka.Consumer):
        async def seek_to_committed(self) -> Any:
            committed = await super().seek_to_committed()
            fresh = [tp for tp, offset in committed.items() if not offset and tp.topic in topics]
            if fresh:
                await self._thread.seek_to_beginning(*fresh)
            return committed

    return type("SentinelTransport", (faust_kafka.Transport,), {"Consumer": Consumer})


def _retry_full(write: Any, *args: Any) -> None:
    """A full store (InfluxDB down and spool at its bound) holds the batch: Kafka keeps the input."""
    delay = 0.5
    while True:
        try:
            write(*args)
            return
        except StoreFull:
            log.warning("store full: holding the batch, retrying in %.1f s", delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


def _write_outputs(store: Store, dets: list, changes: list, letters: list) -> None:
    if dets:
        _retry_full(store.write_detections, dets)
    if changes:
        _retry_full(store.write_alert_changes, changes)
    if letters:
        _retry_full(store.write_dead_letters, letters)
    store.flush()


STALL_EXIT_CODE = 75  # EX_TEMPFAIL: try again (restart me)


class _Watchdog:
    """faust-streaming can stop delivering a partition's records after a rebalance (its consumer stays in
    the group, so Kafka never moves the partition elsewhere). Nothing is lost, since the records stay in
    Kafka and the evaluated offsets in the table, but nothing moves either. When records wait on this
    worker's partitions and none has been evaluated for `stall_s`, the worker says so and exits with
    STALL_EXIT_CODE, for its supervisor (systemd, compose `restart:`) to start it again."""

    def __init__(self, stall_s: float) -> None:
        self.stall_s = stall_s
        self._last = time.monotonic()

    def progressed(self) -> None:
        self._last = time.monotonic()

    async def stalled(self, app: faust.App, table: Any, gaps: GapReader, topic: str) -> bool:
        idle = time.monotonic() - self._last
        if self.stall_s <= 0 or idle < self.stall_s:
            return False
        mine = sorted(tp.partition for tp in app.consumer.assignment() if tp.topic == topic)
        if not mine:
            return False
        ends = await gaps.end_offsets(mine)
        waiting = {p: ends[p] - 1 - (decode_offset(table.data.get(offset_key(p))) or -1) for p in mine}
        waiting = {p: n for p, n in waiting.items() if n > 0}
        if not waiting:
            self.progressed()  # caught up: idle is fine
            return False
        log.error("stalled: %d record(s) wait on %s partition(s) %s and none was evaluated for %.0f s "
                  "(a faust-streaming consumer stuck after a rebalance); exiting with %d so this worker is "
                  "restarted. Nothing is lost: the records are in Kafka, the evaluated offsets in the table",
                  sum(waiting.values()), topic, sorted(waiting), idle, STALL_EXIT_CODE)
        logging.shutdown()
        os._exit(STALL_EXIT_CODE)


class _Stats:
    """Throughput as the time spent evaluating sees it: a batch is counted when it ends, so dividing by
    the time between two log lines would credit a long batch to the last interval only."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self.messages = self.readings = self.detections = 0
        self.busy_s = 0.0
        self._since = time.monotonic()

    def add(self, messages: int, readings: int, detections: int, busy_s: float) -> None:
        self.messages += messages
        self.readings += readings
        self.detections += detections
        self.busy_s += busy_s

    def report(self, processor: ZonedProcessor) -> None:
        now = time.monotonic()
        dt = max(1e-9, now - self._since)
        if self.messages:
            log.info("worker: %d messages, %d readings (%.0f/s while busy, %.0f%% busy), %d detections, "
                     "dead letters %s in %.0f s", self.messages, self.readings,
                     self.readings / max(self.busy_s, 1e-9), 100 * min(1.0, self.busy_s / dt), self.detections,
                     dict(processor.counters.dead_letters) or 0, dt)
        self.messages = self.readings = self.detections = 0
        self.busy_s = 0.0
        self._since = now
