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
from collections.abc import Callable

from alerts.lifecycle import AlertBook
from ingest.kafka_codec import encode_tick, zone_records
from rules import snapshot
from rules.loader import RuleSet
from sentinel.catalog import Catalog
from sentinel.learn import forget_alarms
from sentinel.readings import Batch
from sentinel.scaleout.zoned import Message, ZonedProcessor


def learn_zones(catalog: Catalog, ruleset: RuleSet, history: Batch, *, chunk: int = 5000,
                resolve_after_s: float = 900.0, progress: Callable[[int, int], None] | None = None) -> dict[str, bytes]:
    """Each zone's state blob after `history` (event-time order), fed as the bridge would send it: zone
    records per chunk, then a tick of the chunk's high-water mark to every zone. Alarms and alerts are
    forgotten; what the baselines learned is kept."""
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
        forget_alarms(pipe.state)
        out[key] = snapshot.to_bytes(pipe.state, {"alerts": AlertBook(resolve_after_s).snapshot()}, pipe.engine)
    return out


async def changelog_records(bootstrap: str, topic: str, timeout_s: float = 30.0) -> int:
    """How many records the changelog holds (0: no worker of this app id has written state yet)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                request_timeout_ms=int(timeout_s * 1000))
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic)
        if parts is None:
            await consumer._client.force_metadata_update()
            parts = consumer._client.cluster.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in parts]
        if not tps:
            return 0
        ends, starts = await consumer.end_offsets(tps), await consumer.beginning_offsets(tps)
        return sum(ends[tp] - starts[tp] for tp in tps)
    finally:
        await consumer.stop()


async def write_changelog(bootstrap: str, topic: str, states: dict[str, bytes], timeout_s: float = 30.0) -> None:
    """Each zone's blob onto the changelog, keyed by zone: the producer's default partitioner puts it on
    the partition the zone's readings take (the topics have the same partition count)."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                compression_type="gzip", max_request_size=16 << 20,
                                request_timeout_ms=int(timeout_s * 1000))
    await producer.start()
    try:
        sent = [await producer.send(topic, key=key.encode(), value=blob) for key, blob in states.items()]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
