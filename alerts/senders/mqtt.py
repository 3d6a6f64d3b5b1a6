"""MQTT: the notification's JSON on `<prefix>/alerts/<network>/<zone>`, through the processor's own client.

The client is owned by the caller (connected, looped, reconnected: see sentinel/wiring.py), as for
MqttNotifier. QoS 1 and a wait for the broker's PUBACK make `send` mean "the broker has it". A message
published while the connection is down stays queued in paho and goes out after the reconnect; if that
takes longer than `timeout` the send fails as retryable, so the dispatcher may publish it again
(at-least-once: consumers dedupe by alert ids).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alerts.notification import DeliveryError, Notification
from ingest.topics import TopicError, TopicScheme

from .format import common
from .http import dumps

if TYPE_CHECKING:
    import paho.mqtt.client as mqtt

ANY = "all"  # topic level for a group spanning several networks or zones


class MqttSender:
    """Publishes `Notification.to_dict()` as JSON, QoS 1 by default, and waits for the acknowledgement."""

    kind = "mqtt"

    def __init__(self, name: str, client: mqtt.Client, *, prefix: str = "sentinel", qos: int = 1,
                 retain: bool = False, timeout: float = 10.0) -> None:
        if qos not in (0, 1, 2) or timeout <= 0:
            raise ValueError(f"mqtt receiver {name!r}: need qos 0, 1 or 2 and timeout > 0")
        self.name, self._client, self.qos, self.retain, self.timeout = name, client, qos, retain, timeout
        self.scheme = TopicScheme(prefix)

    def __repr__(self) -> str:
        return f"MqttSender({self.describe()!r})"

    def describe(self) -> str:
        return f"mqtt receiver {self.name!r} → {self.scheme.alerts_root}/<network>/<zone> (QoS {self.qos})"

    def topic_for(self, notification: Notification) -> str:
        network, zone = common(notification, "network"), common(notification, "zone")
        if network and zone:
            return self.scheme.alerts_topic(network, zone)
        return f"{self.scheme.alerts_root}/{network or ANY}/{zone or ANY}"

    def send(self, notification: Notification) -> None:
        import paho.mqtt.client as mqtt

        try:
            topic = self.topic_for(notification)
        except TopicError as exc:
            raise DeliveryError(f"mqtt receiver {self.name!r}: {exc}", retryable=False) from None
        try:
            info = self._client.publish(topic, dumps(notification.to_dict()), qos=self.qos, retain=self.retain)
            if info.rc == mqtt.MQTT_ERR_NO_CONN and self.qos > 0:
                info.rc = mqtt.MQTT_ERR_SUCCESS  # queued by paho, sent after the reconnect: wait for it
            info.wait_for_publish(self.timeout)
        except (ValueError, RuntimeError, OSError) as exc:  # queue full, not queued, bad topic
            raise DeliveryError(f"mqtt publish to {topic} failed: {exc}", retryable=True) from None
        if not info.is_published():
            raise DeliveryError(f"mqtt publish to {topic}: no acknowledgement within {self.timeout} s "
                                "(it may still arrive after a reconnect)", retryable=True)

    def close(self) -> None:
        """The client belongs to the caller: nothing to close here."""
