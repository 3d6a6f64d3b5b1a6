"""Against a real Mosquitto (tests/conftest_mqtt.py): decode round trip, at-least-once delivery with
manual acks and persistent sessions, broker restarts, shared subscriptions and backpressure.

Each test uses its own zone (and so its own topic filter) and its own client ids, so persistent sessions
left behind by one test never see another test's messages.
"""

from __future__ import annotations

import json
import threading
import time
import uuid

import numpy as np
import pytest

from ingest.decoders import Decoder
from ingest.mqtt_publish import MqttPublisher
from ingest.mqtt_source import Message, MqttSource
from ingest.topics import DEFAULT_SCHEME as TOPICS
from sentinel.catalog import Catalog, Sensor

pytestmark = pytest.mark.mosquitto

ZONES = ("rt", "redeliver", "restart", "share", "resub", "bp3", "bp5", "acl")
CATALOG = Catalog.from_sensors(
    [Sensor(sensor_id=f"{z}-P1", network="water", zone=z, quantity="pressure", unit="bar") for z in ZONES]
    + [Sensor(sensor_id=f"{z}-F1", network="water", zone=z, quantity="flow", unit="l/s", role="inlet")
       for z in ZONES])


def cid(name: str) -> str:
    return f"test-{name}-{uuid.uuid4().hex[:8]}"


def zone_filter(zone: str) -> str:
    return f"{TOPICS.data_root}/water/{zone}/+"


def source(broker, zone: str, client_id: str, **kw) -> MqttSource:
    kw.setdefault("topics", zone_filter(zone))
    return MqttSource(broker.host, broker.port, client_id=client_id, **broker.creds("sentinel"), **kw)


def publisher(broker, name: str = "pub") -> MqttPublisher:
    return MqttPublisher(broker.host, broker.port, cid(name), **broker.creds("device"))


def drain(src: MqttSource, want: int, timeout: float, *, ack: bool = True) -> list[Message]:
    """Poll until `want` messages arrived or `timeout` passed; ack each poll unless told not to."""
    got: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        msgs = src.poll(1000, timeout=0.2)
        got.extend(msgs)
        if ack:
            src.ack(msgs)
    return got


def numbered(zone: str, n: int, start: int = 0) -> list[tuple[str, bytes]]:
    """n single-reading messages whose value is their sequence number (to detect loss/duplicates)."""
    topic = TOPICS.reading_topic("water", zone, f"{zone}-P1")
    return [(topic, json.dumps({"time": 1_714_521_600 + i, "value": i / 1000, "unit": "kPa"}).encode())
            for i in range(start, start + n)]


def seqs(msgs: list[Message]) -> list[int]:
    return [round(json.loads(m.payload)["value"] * 1000) for m in msgs]


def test_json_single_batch_and_line_protocol_round_trip(mosquitto) -> None:
    zone = "rt"
    with source(mosquitto, zone, cid("rt")) as src, publisher(mosquitto) as pub:
        assert src.wait_ready(10), mosquitto.log_tail()
        pub.publish(TOPICS.reading_topic("water", zone, "rt-P1"),
                    json.dumps({"time": "2024-05-01T00:00:00Z", "value": 3.5}))
        pub.publish(TOPICS.batch_topic("water", zone), json.dumps({"readings": [
            {"sensor_id": "rt-F1", "time": "2024-05-01T00:00:00Z", "value": 10.0},
            {"sensor_id": "rt-P1", "time": "2024-05-01T00:05:00Z", "value": 30.0, "unit": "m"},
        ]}))
        pub.publish(TOPICS.lp_topic("water", zone),
                    "pressure,sensor_id=rt-P1 value=3.5,quality=1i 1714522200000000000\n"
                    "flow,sensor=rt-F1,unit=m3/h value=40 1714522200000000000\n")
        msgs = drain(src, 3, 10)
        assert [m.topic.rsplit("/", 1)[1] for m in msgs] == ["rt-P1", "batch", "lp"]
        decoded = Decoder(CATALOG).decode_many(msgs)
        assert decoded.dead_letters == []
        assert decoded.counts.messages == 3 and decoded.counts.readings_ok == 5
        b = decoded.batch
        ids = [CATALOG.sensors[i].sensor_id for i in b.sensor]
        assert ids == ["rt-P1", "rt-F1", "rt-P1", "rt-P1", "rt-F1"]
        np.testing.assert_allclose(b.value, [350.0, 36.0, 30 * 9.80665, 350.0, 40.0])
        assert b.quality.tolist() == [0, 0, 0, 1, 0]
        assert src.pending == 0 and src.counters.acked == 3


def test_readings_subscription_never_sees_alerts(mosquitto) -> None:
    zone = "acl"
    processor_pub = MqttPublisher(mosquitto.host, mosquitto.port, cid("alerts"),
                                  **mosquitto.creds("sentinel"))
    with source(mosquitto, zone, cid("acl"), topics=None, clean_start=True) as src, processor_pub as alerts, \
            publisher(mosquitto) as pub:
        assert src.wait_ready(10)
        assert src.topics == ["sentinel/data/+/+/+"]
        alerts.publish(TOPICS.alerts_topic("water", zone), b'{"rule": "burst"}')
        pub.publish(TOPICS.reading_topic("water", zone, "acl-P1"), b'{"value": 1.0}')
        # devices may not publish alerts: Mosquitto acks but drops it (MQTT 3.1.1 has no way to refuse)
        pub.publish(TOPICS.alerts_topic("water", zone), b'{"forged": true}')
        msgs = drain(src, 10, 1.5)
        mine = [m for m in msgs if "/acl/" in m.topic]  # the shared filter also sees other tests' zones
        assert [m.topic for m in mine] == [TOPICS.reading_topic("water", zone, "acl-P1")]
        assert not any(m.topic.startswith(TOPICS.alerts_root) for m in msgs)


def test_unacked_messages_are_redelivered_to_the_same_client_id(mosquitto) -> None:
    zone, client_id = "redeliver", cid("redeliver")
    with source(mosquitto, zone, client_id) as src, publisher(mosquitto) as pub:
        assert src.wait_ready(10)
        pub.publish_many(numbered(zone, 20))
        first = drain(src, 20, 10, ack=False)  # "crash" before the store wrote them: no ack
        assert sorted(seqs(first)) == list(range(20))
    with source(mosquitto, zone, client_id) as src:  # same id, persistent session
        again = drain(src, 20, 10, ack=False)
        assert sorted(seqs(again)) == list(range(20))
        assert all(m.dup for m in again) and src.counters.redelivered == 20
        src.ack(again)
        time.sleep(0.3)  # let the PUBACKs reach the broker before disconnecting
    with source(mosquitto, zone, client_id) as src:
        assert src.wait_ready(10)
        assert drain(src, 1, 1.0) == []  # acknowledged means gone


def test_acks_from_an_earlier_connection_are_not_sent(mosquitto_factory) -> None:
    broker = mosquitto_factory()
    zone, client_id = "redeliver", cid("stale")
    with source(broker, zone, client_id) as src, publisher(broker) as pub:
        assert src.wait_ready(10)
        pub.publish_many(numbered(zone, 5))
        old = drain(src, 5, 10, ack=False)
        broker.restart()
        assert _wait(lambda: src.counters.connects == 2 and src.wait_ready(0), 15), broker.log_tail()
        src.ack(old)  # packet ids of the old connection: must not be sent on the new one
        assert src.counters.stale_acks == 5 and src.counters.acked == 0
        again = drain(src, 5, 10)  # the broker redelivers them; these acks are sent
        assert sorted(seqs(again)) == list(range(5)) and src.counters.acked == 5


def _wait(cond, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def test_broker_restart_mid_stream_loses_no_qos1_message(mosquitto_factory) -> None:
    broker = mosquitto_factory()
    zone, n = "restart", 600
    errors: list[BaseException] = []
    with source(broker, zone, cid("restart-consumer")) as src, publisher(broker, "restart-pub") as pub:
        assert src.wait_ready(10)

        def produce() -> None:
            try:
                for i in range(0, n, 20):
                    pub.publish_many(numbered(zone, 20, i))
                    time.sleep(0.1)  # spread the stream (~3 s) so the restart lands in the middle of it
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        got = drain(src, n // 3, 10)
        assert n // 3 <= len(got) < n
        broker.restart()  # SIGTERM: mosquitto writes sessions and queued messages, then starts again
        deadline = time.monotonic() + 30
        while len(set(seqs(got))) < n and time.monotonic() < deadline:
            got.extend(drain(src, n, 0.5))
        producer.join(10)
        assert not errors, errors
        assert set(seqs(got)) == set(range(n)), (f"missing {sorted(set(range(n)) - set(seqs(got)))[:20]}"
                                                  f"\n{broker.log_tail()}")
        assert src.counters.connects == 2 and src.counters.disconnects == 1
        assert pub.connects == 2  # the publisher, too, went through the restart


def test_shared_subscription_splits_messages_without_duplicates(mosquitto) -> None:
    zone, group, n = "share", f"g{uuid.uuid4().hex[:6]}", 200
    a = source(mosquitto, zone, cid("share-a"), shared_group=group)
    b = source(mosquitto, zone, cid("share-b"), shared_group=group)
    with a, b, publisher(mosquitto) as pub:
        assert a.topics == [f"$share/{group}/{zone_filter(zone)}"]
        assert a.wait_ready(10) and b.wait_ready(10)
        pub.publish_many(numbered(zone, n))
        got_a: list[Message] = []
        got_b: list[Message] = []
        deadline = time.monotonic() + 10
        while len(got_a) + len(got_b) < n and time.monotonic() < deadline:
            for src, got in ((a, got_a), (b, got_b)):
                msgs = src.poll(1000, timeout=0.05)
                got.extend(msgs)
                src.ack(msgs)
        sa, sb = seqs(got_a), seqs(got_b)
        assert sorted(sa + sb) == list(range(n))  # every message once, in total
        assert not set(sa) & set(sb)
        assert sa and sb  # both consumers did work


def test_consumer_resubscribes_when_the_broker_forgot_its_session(mosquitto_factory) -> None:
    """The "connected but receiving nothing" trap: the broker comes back without our session (lost disk,
    expired session); only resubscribing in on_connect makes messages flow again."""
    broker = mosquitto_factory()
    zone = "resub"
    with source(broker, zone, cid("resub")) as src, publisher(broker) as pub:
        assert src.wait_ready(10)
        pub.publish_many(numbered(zone, 3))
        assert sorted(seqs(drain(src, 3, 10))) == [0, 1, 2]
        broker.restart(wipe=True)
        assert _wait(lambda: src.counters.connects == 2 and src.wait_ready(0), 15), broker.log_tail()
        pub.publish_many(numbered(zone, 3, 3))
        assert sorted(seqs(drain(src, 3, 10))) == [3, 4, 5]


def test_backpressure_mqtt311_waits_instead_of_dropping(mosquitto) -> None:
    """Mosquitto's in-flight window is 1000; with max_pending=5 the client itself holds back reading."""
    zone = "bp3"
    with source(mosquitto, zone, cid("bp3"), max_pending=5, stall_s=0.5) as src, publisher(mosquitto) as pub:
        assert src.wait_ready(10)
        pub.publish_many(numbered(zone, 30))
        time.sleep(0.8)
        assert src.pending <= 5 + 3  # about one more per stall_s, not all 30
        assert src.counters.stalls >= 1
        got = drain(src, 30, 15)
        assert sorted(seqs(got)) == list(range(30))


def test_backpressure_mqtt5_receive_maximum(mosquitto) -> None:
    zone = "bp5"
    src = source(mosquitto, zone, cid("bp5"), protocol="5", max_pending=10)
    with src, publisher(mosquitto) as pub:
        assert src.wait_ready(10)
        pub.publish_many(numbered(zone, 50))
        time.sleep(0.5)
        assert src.pending == 10  # the broker holds the rest: never more than Receive Maximum un-acked
        assert src.counters.stalls == 0
        got = drain(src, 50, 10)
        assert sorted(seqs(got)) == list(range(50))


def test_up_script_is_idempotent(mosquitto) -> None:
    assert "already running" in mosquitto.start()
    conf = (mosquitto.run_dir / "mosquitto.conf").read_text()
    assert f"listener {mosquitto.port} 127.0.0.1" in conf
    assert "max_queued_messages 100000" in conf
    assert f"persistence_location {mosquitto.run_dir}/data/" in conf


def test_wrong_password_is_refused_and_retried(mosquitto) -> None:
    src = MqttSource(mosquitto.host, mosquitto.port, client_id=cid("badpw"), username="sentinel",
                     password="wrong", reconnect_min_s=1)
    with src:
        assert not src.wait_ready(1.5)
        assert src.counters.connect_failures >= 1 and src.counters.connects == 0
