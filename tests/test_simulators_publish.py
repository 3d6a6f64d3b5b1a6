"""The MQTT publisher against a real Mosquitto (started here on a free port): every reading arrives once,
in the documented topics and JSON, paced by `speed`, acknowledged, and stoppable."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from operator import itemgetter

import paho.mqtt.client as mqtt
import pytest

from sentinel.readings import iso, parse_time
from simulators import SimResult, demo_scenario, generate
from simulators.publish import PublishProgress, publish
from tests.conftest_mqtt import USERS, MosquittoBroker

pytestmark = pytest.mark.mosquitto


@pytest.fixture(scope="module")
def broker_port(mosquitto: MosquittoBroker) -> int:
    """The project's own Mosquitto (config, auth, ACLs), as deployments run it."""
    return mosquitto.port


DEVICE = {"username": "device", "password": USERS["device"]}


class Subscriber:
    """Collects every message under sentinel/# at QoS 1."""

    def __init__(self, port: int) -> None:
        self.messages: list[tuple[str, dict]] = []
        self.lock = threading.Lock()
        ready = threading.Event()
        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id="test-sub")
        self.client.username_pw_set("sentinel", USERS["sentinel"])
        self.client.on_connect = lambda c, _u, _f, _rc, _p: c.subscribe("sentinel/#", qos=1)
        self.client.on_subscribe = lambda *_: ready.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert ready.wait(5)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, json.loads(msg.payload)))

    def readings(self, count: int, timeout: float = 5.0) -> list[tuple[str, dict]]:
        """(topic, reading) pairs once `count` readings arrived (or the timeout passed)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                out = [(t, r) for t, body in self.messages for r in body.get("readings", [body])]
            if len(out) >= count or time.monotonic() > deadline:
                return out
            time.sleep(0.02)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def subscriber(broker_port: int) -> Iterator[Subscriber]:
    sub = Subscriber(broker_port)
    yield sub
    sub.close()


@pytest.fixture(scope="module")
def demo() -> SimResult:
    return generate(demo_scenario())


def expected(result: SimResult) -> list[dict]:
    r = result.readings
    cat = result.catalog
    return [{"sensor_id": cat[s].sensor_id, "time": iso(t), "value": v, "unit": cat[s].unit}
            for t, s, v in zip(r.time_ns.tolist(), r.sensor.tolist(), r.value.tolist(), strict=True)]


def test_zone_batches_deliver_every_reading_once_with_its_unit(demo: SimResult, subscriber: Subscriber,
                                                               broker_port: int) -> None:
    final = publish(demo, "127.0.0.1", broker_port, batch=True, client_id="t-batch", **DEVICE)
    got = subscriber.readings(len(demo.readings))
    assert final.messages_acked == final.messages_sent == final.messages_total
    assert final.readings_sent == len(demo.readings) and not final.stopped
    assert {t for t, _ in got} == {"sentinel/data/water/DMA1/batch"}
    key = itemgetter("time", "sensor_id")
    assert sorted((r for _, r in got), key=key) == sorted(expected(demo), key=key)


def test_single_readings_go_to_per_sensor_topics_shifted_to_now(demo: SimResult, subscriber: Subscriber,
                                                                broker_port: int) -> None:
    before = time.time()
    final = publish(demo, "127.0.0.1", broker_port, batch=False, shift_to_now=True, client_id="t-single", **DEVICE,
                    max_inflight=5)
    got = subscriber.readings(len(demo.readings))
    assert len(got) == len(demo.readings) == final.messages_acked
    assert all(topic == f"sentinel/data/water/DMA1/{r['sensor_id']}" for topic, r in got)
    first = min(parse_time(r["time"]) for _, r in got) / 1e9
    assert before - 1 <= first <= time.time() + 1  # the scenario start now maps to the wall clock


def test_speed_paces_messages_by_the_datas_own_clock(demo: SimResult, broker_port: int) -> None:
    span_s = (demo.readings.time_ns[-1] - demo.readings.time_ns[0]) / 1e9  # 39 minutes of data
    t0 = time.monotonic()
    publish(demo, "127.0.0.1", broker_port, speed=span_s / 0.8, client_id="t-speed", **DEVICE)
    assert 0.75 <= time.monotonic() - t0 < 3.0


def test_stop_event_ends_publishing_early_with_everything_sent_acknowledged(demo: SimResult,
                                                                           broker_port: int) -> None:
    stop = threading.Event()

    def stop_after_first_report(p: PublishProgress) -> None:
        stop.set()

    final = publish(demo, "127.0.0.1", broker_port, speed=600, client_id="t-stop", stop_event=stop, **DEVICE,
                    progress=stop_after_first_report, progress_every_s=0.2)
    assert final.stopped and 0 < final.messages_sent < final.messages_total
    assert final.messages_acked == final.messages_sent


def test_unreachable_broker_is_reported_not_hung(demo: SimResult) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectionError):
        publish(demo, "127.0.0.1", port, connect_timeout_s=1.0)
