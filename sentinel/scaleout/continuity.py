"""Every readings record evaluated once, in offset order, whatever Faust's offset handling does.

faust-streaming can move a partition's committed offset past records its agent never saw: around a
rebalance it resumes fetching before it seeks to the committed offsets, and prefetched or dropped records
leave gaps its commit logic steps over (faust-streaming issues #216, #221, #606; we reproduced it with a
worker joining or dying while data flows). So the worker keeps, next to each partition's zone states in
the same changelog-backed table, the offset it has evaluated up to, and before each batch:

- records at or below that offset are dropped (already evaluated, by this worker or the one before);
- a hole between that offset and the batch (or inside it) is read back from Kafka directly and
  evaluated first, in order.

The readings topic is never compacted and its producers are not transactional, so its offsets are
contiguous: any hole is a record that was skipped, never one that does not exist.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer

log = logging.getLogger(__name__)

OFFSET_PREFIX = b"\x00evaluated-offset/"


def offset_key(partition: int) -> bytes:
    """The table key holding a partition's last evaluated offset (never a zone key: those are text)."""
    return OFFSET_PREFIX + str(partition).encode()


def decode_offset(value: bytes | None) -> int | None:
    return int(value) if value else None


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: bytes
    value: bytes | None


def missing(records: list[Record], first_expected: int) -> tuple[int, int] | None:
    """The [start, end) offsets to read back so that `records` (one partition, sorted, all at or after
    `first_expected`) become contiguous from `first_expected`; None when nothing is missing."""
    if not records:
        return None
    end = records[-1].offset + 1
    if records[0].offset == first_expected and len(records) == end - first_expected:
        return None
    return first_expected, end


class GapReader:
    """Reads records of the readings topic by offset, outside the consumer group (no commits)."""

    def __init__(self, bootstrap: str, topic: str, timeout_s: float = 30.0) -> None:
        self.bootstrap, self.topic, self.timeout_s = bootstrap, topic, timeout_s
        self._consumer = None

    async def _client(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            from aiokafka import AIOKafkaConsumer

            self._consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                              group_id=None, client_id="sentinel-gap-reader")
            await self._consumer.start()
        return self._consumer

    async def log_start(self, partition: int) -> int:
        from aiokafka import TopicPartition

        consumer = await self._client()
        tp = TopicPartition(self.topic, partition)
        return int((await consumer.beginning_offsets([tp]))[tp])

    async def read(self, partition: int, start: int, end: int) -> list[Record]:
        """Records [start, end) of a partition; waits (and says so) until Kafka has returned them all."""
        from aiokafka import TopicPartition

        consumer = await self._client()
        tp = TopicPartition(self.topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, start)
        out: list[Record] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        while not out or out[-1].offset < end - 1:
            batch = await consumer.getmany(tp, timeout_ms=1000)
            for rec in batch.get(tp, []):
                if start <= rec.offset < end:
                    out.append(Record(partition, rec.offset, rec.key or b"", rec.value))
            if loop.time() > deadline:
                log.warning("reading back %s[%d] offsets %d..%d: %d of %d so far, still trying", self.topic,
                            partition, start, end - 1, len(out), end - start)
                deadline = loop.time() + self.timeout_s
        return out

    async def end_offsets(self, partitions: list[int]) -> dict[int, int]:
        """The next offset Kafka will write, per partition: what a worker has to catch up to."""
        from aiokafka import TopicPartition

        consumer = await self._client()
        tps = [TopicPartition(self.topic, p) for p in partitions]
        return {tp.partition: int(off) for tp, off in (await consumer.end_offsets(tps)).items()}

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
