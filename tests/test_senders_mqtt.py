"""The MQTT sender against the real Mosquitto (tests/conftest_mqtt.py), with the processor's credentials:
its ACL lets `sentinel` publish under sentinel/alerts/#, which is where the sender must publish."""

from __future__ import annotations

import json
import queue
import uuid
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest

from alerts.notification import DeliveryError
from alerts.senders import build_sender
from tests.test_senders import alert, notification

pytestmark = pytest.mark.mosquitto


def client(broker, name: str) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-senders-{name}-{uuid.uuid4().hex[:8]}")
    creds = broker.creds("sentinel")
    c.username_pw_set(creds["username"], creds["password"])
    return c


@pytest.fixture
def connected(mosquitto) -> Iterator[tuple[mqtt.Client, queue.Queue[mqtt.MQTTMessage]]]:
    """(the processor's client, as wiring makes it; a subscriber on sentinel/alerts/# feeding a queue)."""
    got: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    subscribed: queue.Queue[bool] = queue.Queue()
    sub, pub = client(mosquitto, "sub"), client(mosquitto, "pub")
    sub.on_message = lambda c, u, msg: got.put(msg)
    sub.on_subscribe = lambda *args: subscribed.put(True)
    sub.on_connect = lambda c, *args: c.subscribe("sentinel/alerts/#", qos=1)
    for c in (sub, pub):
        c.connect(mosquitto.host, mosquitto.port, keepalive=30)
        c.loop_start()
    subscribed.get(timeout=10)
    yield pub, got
    for c in (sub, pub):
        c.disconnect()
        c.loop_stop()


def test_publishes_the_notification_json_to_the_zone_topic_with_qos1(connected) -> None:
    pub, got = connected
    sender = build_sender("bus", {"type": "mqtt", "timeout": 5}, mqtt_client=pub)
    n = notification()
    sender.send(n)  # returns after the broker's PUBACK
    msg = got.get(timeout=5)
    assert msg.topic == "sentinel/alerts/water/DMA1" and msg.qos == 1 and not msg.retain
    assert json.loads(msg.payload) == json.loads(json.dumps(n.to_dict()))
    assert "一级" in msg.payload.decode("utf-8")


def test_a_group_across_zones_goes_to_the_network_topic(connected) -> None:
    pub, got = connected
    n = notification(alerts=(alert(1, zone="DMA1"), alert(2, zone="DMA7")), group="water", labels={})
    build_sender("bus", {"type": "mqtt"}, mqtt_client=pub).send(n)
    assert got.get(timeout=5).topic == "sentinel/alerts/water/all"


def test_no_connection_is_a_retryable_failure_after_the_timeout(mosquitto) -> None:
    never = client(mosquitto, "never")  # not connected: paho queues the QoS 1 message, nobody acknowledges
    sender = build_sender("bus", {"type": "mqtt", "timeout": 0.3}, mqtt_client=never)
    with pytest.raises(DeliveryError) as err:
        sender.send(notification())
    assert err.value.retryable and "acknowledgement" in str(err.value)
