"""The Kafka broker of tests/conftest_kafka.py (scripts/kafka-up.sh, kafka-down.sh) works as the Kafka tests assume."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from tests.conftest_kafka import KafkaServer, create_topic, unique_name


async def _produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> set[int]:
    """Send with acks=all and wait for every acknowledgement; the partitions written to."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        futures = [await producer.send(topic, value=v, key=k) for k, v in messages]
        return {(await f).partition for f in futures}
    finally:
        await producer.stop()


async def _consume(bootstrap: str, topic: str, n: int, *, timeout: float = 20.0) -> list[tuple[bytes, bytes]]:
    """Read n messages from the start of the topic, as a consumer group member (group coordinator too)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=unique_name("g"),
                                auto_offset_reset="earliest", session_timeout_ms=6000, heartbeat_interval_ms=500)
    await consumer.start()
    got: list[tuple[bytes, bytes]] = []
    try:
        deadline = time.monotonic() + timeout
        while len(got) < n and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            got += [(m.key, m.value) for records in batches.values() for m in records]
        await consumer.commit()
    finally:
        await consumer.stop()
    return got


async def _describe_cluster(bootstrap: str) -> dict:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        return await admin.describe_cluster()
    finally:
        await admin.close()


def test_broker_answers(kafka: KafkaServer) -> None:
    cluster = asyncio.run(_describe_cluster(kafka.bootstrap))
    assert [(b["node_id"], b["host"], b["port"]) for b in cluster["brokers"]] == [(1, "127.0.0.1", kafka.port)]
    assert cluster["controller_id"] == 1
    assert kafka.env_file.read_text().splitlines()[-1] == f"KAFKA_BOOTSTRAP={kafka.bootstrap}"


def test_produce_then_consume_from_4_partitions(kafka: KafkaServer) -> None:
    topic = create_topic(kafka.bootstrap, unique_name("roundtrip"), 4)
    sent = [(f"k{i}".encode(), f"reading {i}".encode()) for i in range(16)]
    partitions = asyncio.run(_produce(kafka.bootstrap, topic, sent))
    assert len(partitions) > 1  # keys spread over the topic's partitions
    assert partitions <= {0, 1, 2, 3}
    got = asyncio.run(_consume(kafka.bootstrap, topic, len(sent)))
    assert sorted(got) == sorted(sent)


def test_up_again_starts_nothing(kafka: KafkaServer) -> None:
    pid = kafka.pid()
    t0 = time.monotonic()
    proc = kafka.run_script("kafka-up.sh", timeout=60)
    took = time.monotonic() - t0
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "already answers" in proc.stdout and "starting Kafka" not in proc.stdout
    assert took < 10, f"kafka-up.sh against a running broker took {took:.1f}s"
    assert kafka.pid() == pid


def test_stop_start_keeps_the_data(kafka: KafkaServer) -> None:
    topic = create_topic(kafka.bootstrap, unique_name("restart"), 4)
    asyncio.run(_produce(kafka.bootstrap, topic, [(b"before", b"the restart")]))
    old_pid = kafka.pid()
    try:
        kafka.stop()
        assert not kafka.answers()
        assert kafka.pid() is None
    finally:
        kafka.start()
    assert kafka.pid() not in (None, old_pid)
    assert asyncio.run(_consume(kafka.bootstrap, topic, 1)) == [(b"before", b"the restart")]
