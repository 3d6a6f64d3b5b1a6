"""MQTT -> Kafka: decode sensor messages with the catalog, send them keyed by zone, then acknowledge.

The bridge is the live loop of `sentinel run` with Kafka where the pipeline was: poll MQTT, decode
(bad payloads become dead letters with the reason, on the dead-letter topic), send the readings as one
record per zone and wait until Kafka holds them (acks=all), and only then acknowledge the MQTT messages.
A Kafka outage therefore leaves the backlog in the MQTT broker's persistent session, not in a buffer
that a crash would lose. Several bridges can share the load through an MQTT shared subscription
(`$share/<group>/...`); each sends the watermark ticks of what it has seen.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

from ingest.decoders import Decoder
from ingest.kafka_publish import ZoneProducer
from ingest.mqtt_source import MqttSource
from sentinel.heartbeat import Heartbeat

log = logging.getLogger(__name__)


class KafkaBridge:
    def __init__(self, source: MqttSource, decoder: Decoder, producer: ZoneProducer, *, poll_max: int = 5000,
                 poll_timeout_s: float = 0.2, stats_every_s: float = 30.0,
                 heartbeat: Heartbeat | None = None) -> None:
        self.source, self.decoder, self.producer = source, decoder, producer
        self.poll_max, self.poll_timeout_s, self.stats_every_s = poll_max, poll_timeout_s, stats_every_s
        self.stop_event = threading.Event()
        self.heartbeat = heartbeat or Heartbeat(None)
        self.messages = 0
        self.readings = 0
        self.dead_letters = 0

    async def step(self) -> int:
        """One poll-decode-send-ack round; returns the number of MQTT messages handled."""
        loop = asyncio.get_running_loop()
        messages = await loop.run_in_executor(None, self.source.poll, self.poll_max, self.poll_timeout_s)
        if not messages:
            await self._tick()
            return 0
        decoded = self.decoder.decode_many(messages)
        pause = 1.0
        while True:
            try:
                await self.producer.send_batch(decoded.batch)
                if decoded.dead_letters:
                    await self.producer.send_dead_letters(decoded.dead_letters)
                await self.producer.tick()
                break
            except Exception as exc:  # Kafka unreachable or refusing: hold the MQTT messages, retry
                log.error("Kafka send failed, holding %d MQTT message(s) unacknowledged; retrying in %.0f s: "
                          "%s: %s", len(messages), pause, type(exc).__name__, exc)
                if self.stop_event.is_set():
                    raise
                await asyncio.sleep(pause)
                pause = min(pause * 2, 30.0)
        for letter in decoded.dead_letters:
            log.warning("dead letter: %s", letter.describe())
        self.source.ack(messages)
        self.messages += len(messages)
        self.readings += len(decoded.batch)
        self.dead_letters += len(decoded.dead_letters)
        return len(messages)

    async def _tick(self) -> None:
        """A quiet moment's watermark tick; if Kafka is away it is sent on a later round (ticks carry no
        readings, so nothing waits on it)."""
        try:
            await self.producer.tick()
        except Exception as exc:
            log.warning("Kafka: watermark tick not sent, trying again later: %s: %s", type(exc).__name__, exc)

    async def run(self) -> None:
        last = time.monotonic()
        while not self.stop_event.is_set():
            await self.step()
            self.heartbeat.beat()
            now = time.monotonic()
            if now - last >= self.stats_every_s:
                last = now
                log.info("bridge: %d messages, %d readings, %d dead letters, %d Kafka records, %d ticks; mqtt %s",
                         self.messages, self.readings, self.dead_letters, self.producer.records,
                         self.producer.ticks, self.source.stats())
        try:
            await self.producer.tick(force=True)
        except Exception as exc:
            log.warning("Kafka: last watermark tick not sent: %s: %s", type(exc).__name__, exc)

    def stop(self) -> None:
        self.stop_event.set()
