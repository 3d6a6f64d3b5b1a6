"""`sentinel bridge` between a real Mosquitto and a real Kafka: zone-keyed records, ticks, dead letters,
and several bridges sharing one MQTT subscription without losing or doubling a reading."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ingest.kafka_codec import Tick, ZoneReadings, decode
from ingest.mqtt_publish import MqttPublisher
from ingest.topics import DEFAULT_SCHEME as TOPICS
from sentinel.catalog import Catalog, Sensor
from sentinel.scaleout.topics import Topics
from tests.conftest_kafka import KafkaServer, unique_name

pytestmark = pytest.mark.mosquitto
REPO = Path(__file__).resolve().parents[1]
ZONES = ("kb-north", "kb-south")
CATALOG = Catalog.from_sensors(
    [Sensor(sensor_id=f"{z}-P{i}", network="water", zone=z, quantity="pressure", unit="bar")
     for z in ZONES for i in (1, 2)])


@pytest.fixture
def bridges(mosquitto, kafka: KafkaServer, tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen]]:
    (tmp_path / "catalog.csv").write_text(CATALOG.to_csv())
    prefix = unique_name("kb")
    procs: list[tuple[subprocess.Popen, Path]] = []

    def start(name: str, *extra: str) -> subprocess.Popen:
        env = dict(os.environ, PYTHONPATH=str(REPO), SENTINEL_MQTT_PASSWORD=mosquitto.users["sentinel"],
                   SENTINEL_STATS_EVERY_S="1", SENTINEL_KAFKA_TICK_EVERY_S="0.2", SENTINEL_KAFKA_TIMEOUT_S="5")
        log = tmp_path / f"{name}.log"
        cmd = [sys.executable, "-m", "sentinel.cli", "bridge", "--catalog", str(tmp_path / "catalog.csv"),
               "--kafka", kafka.bootstrap, "--partitions", "4", "--prefix", prefix, "--mqtt-host", mosquitto.host,
               "--mqtt-port", str(mosquitto.port), "--mqtt-username", "sentinel",
               "--client-id", f"bridge-{name}-{uuid.uuid4().hex[:6]}", *extra]
        p = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)
        p.log = log  # type: ignore[attr-defined]
        procs.append((p, log))
        return p

    start.topics = Topics(prefix)  # type: ignore[attr-defined]
    yield start
    for p, log in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        if p.returncode not in (0, None):
            print(f"--- {log.name} ---\n{log.read_text()[-3000:]}")


def device(mosquitto) -> MqttPublisher:
    return MqttPublisher(mosquitto.host, mosquitto.port, f"dev-{uuid.uuid4().hex[:6]}", **mosquitto.creds("device"))


def wait_ready(p: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = p.log.read_text(errors="replace")  # type: ignore[attr-defined]
        if "subscribed" in text.lower() or "bridge: MQTT" in text:
            time.sleep(1.0)  # the subscription is acknowledged just after the log line
            return
        assert p.poll() is None, f"bridge exited:\n{text[-3000:]}"
        time.sleep(0.2)
    pytest.fail("bridge did not start")


def consume(bootstrap: str, topic: str, want: Callable[[list], bool], timeout: float = 45) -> list:
    from aiokafka import AIOKafkaConsumer

    async def run() -> list:
        c = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             group_id=unique_name("reader"), enable_auto_commit=False)
        await c.start()
        got: list = []
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and not want(got):
                for recs in (await c.getmany(timeout_ms=500)).values():
                    got.extend(recs)
        finally:
            await c.stop()
        return got

    return asyncio.run(run())


def readings_of(records: list) -> list[tuple[str, str, int, float]]:
    out = []
    for r in records:
        item = decode(r.value)
        if isinstance(item, ZoneReadings):
            out += [(r.key.decode(), s, int(t), float(v))
                    for s, t, v in zip(item.sensor_id, item.time_ns, item.value, strict=True)]
    return out


def test_bridge_keys_readings_by_zone_ticks_every_zone_and_dead_letters_bad_payloads(mosquitto, kafka, bridges) -> None:
    p = bridges("one")
    wait_ready(p)
    t0 = int(time.time()) - 3600
    with device(mosquitto) as pub:
        for i in range(10):
            for z in ZONES:
                pub.publish(TOPICS.reading_topic("water", z, f"{z}-P1"), json.dumps({"time": t0 + i, "value": 3.0 + i}))
            pub.publish(TOPICS.batch_topic("water", "kb-south"), json.dumps(
                {"readings": [{"sensor_id": "kb-south-P2", "time": t0 + i, "value": 2.5}]}))
        pub.publish(TOPICS.reading_topic("water", "kb-north", "kb-north-P1"), b"{not json")
        pub.publish(TOPICS.reading_topic("water", "kb-north", "NO-SUCH-SENSOR"), json.dumps({"time": t0, "value": 1}))
    topics = bridges.topics
    records = consume(kafka.bootstrap, topics.readings, lambda got: len(readings_of(got)) >= 30)
    got = readings_of(records)
    assert len(got) == 30
    for key, sensor, _, _ in got:
        assert sensor.startswith(key.split("/")[1]), "every reading travels under its own zone's key"
    north = sorted((t, v) for k, s, t, v in got if s == "kb-north-P1")
    assert north == [((t0 + i) * 10**9, (3.0 + i) * 100.0) for i in range(10)]  # bar -> kPa on the way
    last = (t0 + 9) * 10**9

    def final_ticks(got: list) -> set[str]:
        """Zones that heard the watermark of the last reading (earlier ticks carry earlier times)."""
        return {r.key.decode() for r in got if isinstance(t := decode(r.value), Tick) and t.watermark_ns == last}

    heard = final_ticks(consume(kafka.bootstrap, topics.readings, lambda got: len(final_ticks(got)) == len(ZONES)))
    assert heard == {f"water/{z}" for z in ZONES}, "every zone hears how far the stream has got"
    letters = [json.loads(r.value) for r in consume(kafka.bootstrap, topics.dead_letters, lambda got: len(got) >= 2)]
    assert len(letters) == 2
    by_source = {d["source"].split("/")[-1]: d for d in letters}
    assert "JSON" in by_source["kb-north-P1"]["reason"]
    assert "unknown sensor" in by_source["NO-SUCH-SENSOR"]["reason"]


def test_two_bridges_share_one_subscription_without_loss_or_duplicates(mosquitto, kafka, bridges) -> None:
    a, b = bridges("a", "--shared-group", "bridges"), bridges("b", "--shared-group", "bridges")
    wait_ready(a)
    wait_ready(b)
    t0 = int(time.time()) - 7200
    n = 400
    with device(mosquitto) as pub:
        for i in range(n):
            z = ZONES[i % 2]
            pub.publish(TOPICS.reading_topic("water", z, f"{z}-P1"), json.dumps({"time": t0 + i, "value": i / 100}))
    got = readings_of(consume(kafka.bootstrap, bridges.topics.readings, lambda g: len(readings_of(g)) >= n))
    assert sorted(t for _, _, t, _ in got) == [(t0 + i) * 10**9 for i in range(n)]
    time.sleep(1.5)  # one more stats line each

    def handled(p: subprocess.Popen) -> int:
        counts = re.findall(r"bridge: (\d+) messages,", p.log.read_text())  # type: ignore[attr-defined]
        return int(counts[-1]) if counts else 0

    assert handled(a) > 0 and handled(b) > 0, "both bridges took a share"
    assert handled(a) + handled(b) == n


def test_a_kafka_outage_holds_the_mqtt_backlog_and_loses_nothing(mosquitto, kafka: KafkaServer, bridges) -> None:
    p = bridges("outage")
    wait_ready(p)
    t0 = int(time.time()) - 5400
    zone = ZONES[0]
    topic = TOPICS.reading_topic("water", zone, f"{zone}-P1")

    def send(first: int, n: int) -> None:
        with device(mosquitto) as pub:
            for i in range(first, first + n):
                pub.publish(topic, json.dumps({"time": t0 + i, "value": i / 100}))

    def times(records: list) -> set[int]:
        return {t for _, _, t, _ in readings_of(records)}

    want_before = {(t0 + i) * 10**9 for i in range(50)}
    send(0, 50)
    assert times(consume(kafka.bootstrap, bridges.topics.readings, lambda g: times(g) >= want_before)) >= want_before
    kafka.stop()
    try:
        send(50, 50)  # the bridge takes these from MQTT but cannot hand them to Kafka
        deadline = time.monotonic() + 60
        while "holding" not in p.log.read_text() and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.5)
        assert "holding" in p.log.read_text(), "the bridge says it holds the messages"  # type: ignore[attr-defined]
        assert p.poll() is None, "and keeps running"
    finally:
        kafka.start()
    want = {(t0 + i) * 10**9 for i in range(100)}
    got = times(consume(kafka.bootstrap, bridges.topics.readings, lambda g: times(g) >= want, timeout=120))
    assert got == want, f"missing after the outage: {sorted(want - got)[:5]}"
