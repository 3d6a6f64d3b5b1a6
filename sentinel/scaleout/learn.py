"""Commissioning the Kafka path from history: each zone's learned state written where workers restore it.

The workers keep a zone's memory in a Faust table backed by a compacted changelog topic, and a worker
that takes a zone over restores it from there. So learning for them means running history through the
very code path they run (`ZonedProcessor`, zone records and ticks as the bridge sends them), forgetting
history's alarms and alerts as `sentinel learn` does, and putting each zone's blob in the changelog,
keyed and partitioned as the readings of that zone are. Workers started afterwards begin where an
engine that had watched the history would be.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from alerts.lifecycle import AlertBook
from ingest.kafka_codec import encode_tick, zone_records
from rules import snapshot
from rules.loader import RuleSet
from sentinel.catalog import Catalog
from sentinel.learn import ready_to_go_live
from sentinel.readings import Batch
from sentinel.scaleout.continuity import OFFSET_PREFIX
from sentinel.scaleout.zoned import Message, ZonedProcessor

# DescribeGroups error codes: the coordinator loading, not there (yet), or moved; and a group never seen
RETRIABLE_GROUP_ERRORS = {14, 15, 16}
GROUP_ID_NOT_FOUND = 69


def learn_zones(catalog: Catalog, ruleset: RuleSet, history: Batch, *, chunk: int = 5000,
                resolve_after_s: float = 900.0, books: dict[str, dict] | None = None,
                progress: Callable[[int, int], None] | None = None) -> dict[str, bytes]:
    """Each zone's state blob after `history` (event-time order), fed as the bridge would send it: zone
    records per chunk, then a tick of the chunk's high-water mark to every zone. Alarms and alerts are
    forgotten, and silence counts from the first live reading; what the baselines learned is kept.

    `books`: alert books (`AlertBook.snapshot()`) of states being replaced, kept in the new ones so that
    the worker restoring them clears their open alerts (nothing else would) rather than leave them open."""
    proc = ZonedProcessor(catalog, ruleset, resolve_after_s)
    states: dict[str, bytes | None] = dict.fromkeys(catalog.zones)
    high: int | None = None
    done = 0
    for part in history.split(chunk):
        high = int(part.time_ns.max()) if high is None else max(high, int(part.time_ns.max()))
        records = {key.decode(): value for key, value in zone_records(catalog, part)}
        tick = Message(encode_tick(high), "learn")
        for key in catalog.zones:
            messages = [Message(records[key], "learn"), tick] if key in records else [tick]
            states[key] = proc.process(key, states[key], messages).state
        done += len(part)
        if progress is not None:
            progress(done, len(history))
    out: dict[str, bytes] = {}
    for key, blob in states.items():
        pipe = proc.restore(key, blob)
        ready_to_go_live(pipe.state)
        book = (books or {}).get(key) or AlertBook(resolve_after_s).snapshot()
        out[key] = snapshot.to_bytes(pipe.state, {"alerts": book}, pipe.engine)
    return out


def alert_books(saved: dict[bytes, bytes], catalog: Catalog) -> dict[str, dict]:
    """The alert book in each zone state of a changelog (zone key -> snapshot), for `learn_zones(books=)`."""
    out = {}
    for key, blob in saved.items():
        zone = key.decode("utf-8", "replace")
        if zone in catalog.zones and blob and (extra := snapshot.extra_of(blob)) and "alerts" in extra:
            out[zone] = extra["alerts"]
    return out


async def _partitions(consumer: Any, topic: str) -> list[Any]:
    from aiokafka import TopicPartition

    parts = consumer.partitions_for_topic(topic)
    if parts is None:
        await consumer._client.force_metadata_update()
        parts = consumer._client.cluster.partitions_for_topic(topic) or set()
    return [TopicPartition(topic, p) for p in sorted(parts)]


async def read_changelog(bootstrap: str, topic: str, timeout_s: float = 30.0) -> dict[bytes, bytes]:
    """The last value per key in a Faust table's changelog: what a worker taking over would restore."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.errors import KafkaError

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest",
                                request_timeout_ms=int(timeout_s * 1000))
    await consumer.start()
    try:
        tps = await _partitions(consumer, topic)
        if not tps:
            return {}
        consumer.assign(tps)
        end = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        out: dict[bytes, bytes] = {}
        deadline = time.monotonic() + timeout_s
        while [tp for tp in tps if await consumer.position(tp) < end[tp]]:
            batches = await consumer.getmany(timeout_ms=1000)
            if batches:
                deadline = time.monotonic() + timeout_s  # progress: the clock restarts
            elif time.monotonic() > deadline:
                raise KafkaError(f"{topic}: no records for {timeout_s:g} s before its end offsets")
            for records in batches.values():
                for r in records:
                    out[r.key] = r.value
        return out
    finally:
        await consumer.stop()


def workers_wrote(saved: dict[bytes, bytes]) -> bool:
    """Whether workers have evaluated readings with this state (they record each partition's evaluated
    offset beside the zone states; learning does not)."""
    return any(key.startswith(OFFSET_PREFIX) for key in saved)


async def group_members(bootstrap: str, group: str, timeout_s: float = 30.0) -> int:
    """Members of a consumer group now: the workers of an app id that are running."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import CoordinatorLoadInProgressError, GroupCoordinatorNotAvailableError, KafkaError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
    await admin.start()
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                described = await admin.describe_consumer_groups([group])
                groups = [g for response in described for g in response.groups if g[1] == group]
                errors = {g[0] for g in groups} - {0, GROUP_ID_NOT_FOUND}
                if not errors:
                    return sum(len(g[5]) for g in groups if g[0] == 0)
                if not errors <= RETRIABLE_GROUP_ERRORS:
                    raise KafkaError(f"describing consumer group {group!r}: error code(s) {sorted(errors)}")
            except (GroupCoordinatorNotAvailableError, CoordinatorLoadInProgressError):
                pass  # a new cluster makes its offsets topic on first asking
            if time.monotonic() > deadline:
                raise KafkaError(f"consumer group {group!r}: its coordinator did not answer in {timeout_s:g} s")
            await asyncio.sleep(0.5)
    finally:
        await admin.close()


async def write_changelog(bootstrap: str, topic: str, states: dict[str, bytes], timeout_s: float = 30.0) -> None:
    """Each zone's blob onto the changelog, keyed by zone: the producer's default partitioner puts it on
    the partition the zone's readings take (the topics have the same partition count)."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                compression_type="gzip", request_timeout_ms=int(timeout_s * 1000))
    await producer.start()
    try:
        sent = [await producer.send(topic, key=key.encode(), value=blob) for key, blob in states.items()]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
