"""Kafka topic names and their creation: every topic of the Kafka path has the same partition count, so a
zone's readings, its state's changelog and its outputs land on the same partition number (co-partitioned)
and one worker owns all of them together."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Topics:
    prefix: str = "sentinel"

    @property
    def readings(self) -> str:
        return f"{self.prefix}.readings"

    @property
    def detections(self) -> str:
        return f"{self.prefix}.detections"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}.alerts"

    @property
    def dead_letters(self) -> str:
        return f"{self.prefix}.dead-letters"

    @property
    def outputs(self) -> tuple[str, str, str]:
        return self.detections, self.alerts, self.dead_letters

    @property
    def all(self) -> tuple[str, ...]:
        return (self.readings, *self.outputs)


DEFAULT_TOPICS = Topics()
STATE_TABLE = "zone-state"  # the workers' Faust table of zone states


def changelog_topic(app_id: str) -> str:
    """The compacted topic behind the zone-state table, as Faust names it; a take-over restores from it."""
    return f"{app_id}-{STATE_TABLE}-changelog"


async def ensure_topics(bootstrap: str, names: tuple[str, ...], partitions: int, replication: int = 1,
                        timeout_s: float = 30.0, configs: dict[str, str] | None = None) -> None:
    """Create the topics that do not exist yet (with `configs`, e.g. compaction); existing ones must have
    `partitions` partitions, because a zone's key must map to the same partition number in every topic."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            await admin.create_topics([NewTopic(n, partitions, replication, topic_configs=configs or {})
                                        for n in missing])
            log.info("created Kafka topics %s with %d partitions", ", ".join(missing), partitions)
        present = [n for n in names if n in existing]
        if present:
            for meta in await admin.describe_topics(present):
                have = len(meta["partitions"])
                if have != partitions:
                    raise RuntimeError(f"Kafka topic {meta['topic']} has {have} partitions, the configuration "
                                       f"says {partitions}: zone keys would land on different partitions; "
                                       "use the topic's count (SENTINEL_KAFKA_PARTITIONS) or a new prefix")
    finally:
        await admin.close()


def ensure_topics_sync(bootstrap: str, names: tuple[str, ...], partitions: int, replication: int = 1,
                       configs: dict[str, str] | None = None) -> None:
    asyncio.run(ensure_topics(bootstrap, names, partitions, replication, configs=configs))
