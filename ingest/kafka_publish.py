"""Readings onto Kafka: one record per zone and batch (keyed by zone, so a zone stays on one partition),
then watermark ticks to every zone; dead letters to their own topic. Used by the MQTT bridge and by
`sentinel kafka publish` (replay files). Every send is awaited until the broker has it (acks=all), so a
caller acknowledges its own input only once Kafka holds it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from ingest.kafka_codec import encode_dead_letter, encode_tick, zone_records
from sentinel.catalog import Catalog
from sentinel.deadletter import DeadLetter
from sentinel.readings import Batch
from sentinel.scaleout.topics import DEFAULT_TOPICS, Topics

log = logging.getLogger(__name__)

MAX_READINGS_PER_RECORD = 5000  # ~200 kB of JSON: well under Kafka's 1 MB default message limit


class ZoneProducer:
    def __init__(self, bootstrap: str, catalog: Catalog, topics: Topics = DEFAULT_TOPICS, *,
                 tick_every_s: float = 1.0, client_id: str = "sentinel-producer", timeout_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.bootstrap = bootstrap
        self.catalog = catalog
        self.topics = topics
        self.tick_every_s = tick_every_s
        self.client_id = client_id
        self.timeout_ms = int(timeout_s * 1000)
        self._clock = clock
        self._producer = None
        self.high_ns: int | None = None  # latest event time sent
        self._ticked_ns: int | None = None
        self._ticked_at = float("-inf")
        self.records = 0
        self.readings = 0
        self.ticks = 0

    async def start(self) -> None:
        from aiokafka import AIOKafkaProducer

        self._producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, client_id=self.client_id, acks="all",
                                          linger_ms=5, max_batch_size=1 << 20, compression_type="gzip",
                                          enable_idempotence=True, request_timeout_ms=self.timeout_ms,
                                          retry_backoff_ms=250)
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def __aenter__(self) -> ZoneProducer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def send_batch(self, batch: Batch) -> None:
        """Send a batch (global catalog indices, canonical units) and wait until Kafka has all of it."""
        if not len(batch):
            return
        futures = []
        for part in batch.split(MAX_READINGS_PER_RECORD):
            for key, value in zone_records(self.catalog, part):
                futures.append(await self._send(self.topics.readings, key, value))
        await self._confirmed(futures)
        self.records += len(futures)
        self.readings += len(batch)
        high = int(batch.time_ns.max())
        self.high_ns = high if self.high_ns is None else max(self.high_ns, high)

    async def send_dead_letters(self, letters: Sequence[DeadLetter], key: bytes = b"") -> None:
        futures = [await self._send(self.topics.dead_letters, key or None, encode_dead_letter(d)) for d in letters]
        await self._confirmed(futures)

    async def tick(self, *, force: bool = False) -> bool:
        """Tell every zone how far the stream has got, at most every `tick_every_s` unless forced; only
        when event time moved. Returns whether ticks were sent."""
        if self.high_ns is None or self.high_ns == self._ticked_ns:
            return False
        now = self._clock()
        if not force and now - self._ticked_at < self.tick_every_s:
            return False
        value = encode_tick(self.high_ns)
        futures = [await self._send(self.topics.readings, key.encode(), value) for key in self.catalog.zones]
        await self._confirmed(futures)
        self._ticked_ns, self._ticked_at = self.high_ns, now
        self.ticks += 1
        return True

    async def _confirmed(self, futures: list[asyncio.Future]) -> None:
        """Wait until Kafka confirms every record. The producer retries on its own while the broker is
        away, so waiting (and saying so) rather than re-sending keeps the topic free of copies; a record
        that failed for good raises, and the caller sends its batch again."""
        pending = set(futures)
        waited = 0.0
        while pending:
            done, pending = await asyncio.wait(pending, timeout=self.timeout_ms / 1000)
            failed = [f.exception() for f in done if f.exception() is not None]
            if failed:
                for f in pending:  # their outcome no longer matters: the caller sends the batch again
                    f.add_done_callback(_retrieve)
                raise failed[0]
            if pending:
                waited += self.timeout_ms / 1000
                log.warning("Kafka has not confirmed %d record(s) for %.0f s (broker down?): holding the input "
                            "unacknowledged and waiting", len(pending), waited)

    async def _send(self, topic: str, key: bytes | None, value: bytes) -> asyncio.Future:
        if self._producer is None:
            raise RuntimeError("ZoneProducer.start() first")
        return await self._producer.send(topic, value=value, key=key)


def _retrieve(f: asyncio.Future) -> None:
    """Read a future's outcome so asyncio does not report an exception nobody asked for."""
    if not f.cancelled():
        f.exception()
