"""MQTT publisher that knows when the broker has a message: publish() returns after the PUBACK.

Used by tests, the demo, simulators and notifiers. Messages published while the connection is down are
kept by paho and sent after the reconnect, so a broker restart delays a publish instead of losing it;
`publish_many` keeps at most `max_inflight` messages outstanding, so memory stays bounded when the
broker is slow or away.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Iterable
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

log = logging.getLogger(__name__)


class PublishTimeout(TimeoutError):
    """The broker did not acknowledge in time. The message stays queued in the client and may still
    be delivered later; treat it as "unknown", not as "lost"."""


class MqttPublisher:
    """A connected paho client (MQTT 3.1.1, clean session) that waits for acknowledgements."""

    def __init__(self, host: str = "127.0.0.1", port: int = 1883, client_id: str = "", *,
                 username: str | None = None, password: str | None = None, keepalive: int = 30,
                 max_inflight: int = 100, reconnect_min_s: int = 1, reconnect_max_s: int = 30) -> None:
        self.host, self.port, self.client_id = host, port, client_id
        self.keepalive = keepalive
        self.max_inflight = max_inflight
        self._connected = threading.Event()
        self._started = False
        self.connects = 0  # successful connections, reconnects included
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311,
                                   clean_session=True)
        if username is not None:
            self._client.username_pw_set(username, password)
        self._client.max_inflight_messages_set(max_inflight)
        self._client.reconnect_delay_set(reconnect_min_s, reconnect_max_s)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect

    # ---- lifecycle ----------------------------------------------------------------------------------
    def start(self, timeout: float | None = 10.0) -> MqttPublisher:
        """Connect (in the background) and wait up to `timeout` s for the first connection."""
        if not self._started:
            self._started = True
            self._client.connect_async(self.host, self.port, self.keepalive)
            self._client.loop_start()
        if timeout is not None and not self._connected.wait(timeout):
            raise ConnectionError(f"no MQTT connection to {self.host}:{self.port} within {timeout} s")
        return self

    def stop(self) -> None:
        if self._started:
            self._client.disconnect()
            self._client.loop_stop()
            self._started = False

    def __enter__(self) -> MqttPublisher:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # ---- publishing ---------------------------------------------------------------------------------
    def publish(self, topic: str, payload: bytes | str, qos: int = 1, *, retain: bool = False,
                timeout: float = 10.0) -> None:
        """Publish and wait for the broker's acknowledgement (QoS 1/2) or the socket write (QoS 0)."""
        info = self._send(topic, payload, qos, retain, time.monotonic() + timeout)
        self._wait(info, time.monotonic() + timeout)

    def publish_many(self, items: Iterable[tuple[str, bytes | str]], qos: int = 1, *,
                     timeout: float = 30.0) -> int:
        """Publish (topic, payload) pairs pipelined, at most `max_inflight` outstanding; return the count
        once all are acknowledged. `timeout` bounds each wait, not the whole call."""
        window: collections.deque[mqtt.MQTTMessageInfo] = collections.deque()
        n = 0
        for topic, payload in items:
            if len(window) >= self.max_inflight:
                self._wait(window.popleft(), time.monotonic() + timeout)
            window.append(self._send(topic, payload, qos, False, time.monotonic() + timeout))
            n += 1
        while window:
            self._wait(window.popleft(), time.monotonic() + timeout)
        return n

    def _send(self, topic: str, payload: bytes | str, qos: int, retain: bool,
              deadline: float) -> mqtt.MQTTMessageInfo:
        if not self._started:
            raise RuntimeError("MqttPublisher.start() first")
        if not self._connected.wait(max(0.0, deadline - time.monotonic())):
            raise PublishTimeout(f"not connected to {self.host}:{self.port}")
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN and qos > 0:
            # the connection dropped just now: paho keeps the message and sends it after reconnecting
            info.rc = MQTTErrorCode.MQTT_ERR_SUCCESS
        elif info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_AGAIN):
            raise ConnectionError(f"publish to {topic} failed: {mqtt.error_string(info.rc)}")
        return info

    @staticmethod
    def _wait(info: mqtt.MQTTMessageInfo, deadline: float) -> None:
        info.wait_for_publish(max(0.0, deadline - time.monotonic()))
        if not info.is_published():
            raise PublishTimeout(f"no acknowledgement for message {info.mid} in time")

    # ---- callbacks ----------------------------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: ReasonCode,
                    properties: Properties | None) -> None:
        if reason_code.is_failure:
            log.error("mqtt publisher %s: broker %s:%s refused the connection: %s", self.client_id,
                      self.host, self.port, reason_code)
            return
        self.connects += 1
        log.info("mqtt publisher %s: connected to %s:%s", self.client_id, self.host, self.port)
        self._connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: ReasonCode,
                       properties: Properties | None) -> None:
        if self._connected.is_set():
            log.warning("mqtt publisher %s: disconnected (%s)", self.client_id, reason_code)
        self._connected.clear()
