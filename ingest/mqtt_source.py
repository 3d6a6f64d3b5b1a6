"""MQTT source with at-least-once delivery: a message is acknowledged to the broker only after the
pipeline has stored what came out of it (Telegraf's ack-after-write).

    with MqttSource("127.0.0.1", 18830, client_id="sentinel-1", username="sentinel", password=...) as src:
        while running:
            msgs = src.poll(1000, timeout=1.0)
            decoded = decoder.decode_many(msgs)
            ...engine, stores...            # durable now
            src.ack(msgs)                   # only now may the broker forget them

Why it is built this way:
- paho's network thread only appends (topic, payload, received_ns, mid, ...) to a queue in `on_message`;
  work there would stall keepalive (a known paho trap). Decoding happens in the consumer's thread.
- `manual_ack=True`: QoS 1 PUBACKs are sent by `ack()`, never automatically. A processor that crashes
  between poll and ack gets the messages again from its persistent session (duplicates are possible,
  loss is not; stores overwrite re-sent readings).
- Persistent session: a fixed client id with clean_session=False (MQTT 3.1.1, the default) keeps the
  subscription and queues QoS 1 messages at the broker while we are away. 3.1.1 is the default because
  it is what both Mosquitto and amqtt (MQTT 3.1.1 only) speak; Mosquitto also grants $share shared
  subscriptions to 3.1.1 clients (amqtt has none). protocol="5" uses clean_start=False with a session
  expiry interval and announces `max_pending` as Receive Maximum.
- Resubscribe in every on_connect: a broker that lost its state (restart without persistence, expired
  session) would otherwise leave us "connected but receiving nothing".
- Backpressure, never dropping: the broker sends at most its in-flight window of un-acked QoS 1 messages
  (Mosquitto's max_inflight_messages for 3.1.1 clients, our Receive Maximum for MQTT 5) and keeps the
  rest queued on its side. If more than `max_pending` are un-acked anyway (a broker with a larger
  window, QoS 0 floods), on_message waits up to `stall_s` per message for acks before accepting it:
  the network thread stops reading (TCP pushes back) yet keepalive still runs between messages.
- Acks are tied to the connection they belong to: packet ids are per connection, so after a reconnect
  an old id could name a different message. Messages from an earlier connection are not acked (the
  broker redelivers them, with the dup flag, in a persistent session).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any, Literal, NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ingest.topics import DEFAULT_SCHEME, TopicScheme, shared

log = logging.getLogger(__name__)

Protocol = Literal["3.1.1", "5"]


class Message(NamedTuple):
    """One received message. The first three fields are what ingest.decoders.Decoder.decode_many reads."""

    topic: str
    payload: bytes
    received_ns: int  # wall clock at receipt (used only for readings without their own time)
    mid: int
    qos: int
    dup: bool  # the broker says it may have delivered this before
    generation: int  # connection it arrived on; acks are only sent on that same connection


@dataclass
class SourceCounters:
    """Connection and delivery counts, for metrics and the console."""

    connects: int = 0
    disconnects: int = 0
    connect_failures: int = 0
    subscribe_failures: int = 0
    messages: int = 0
    redelivered: int = 0  # messages flagged dup by the broker
    acked: int = 0
    stale_acks: int = 0  # acks not sent because the message came on an earlier connection
    stalls: int = 0  # times on_message waited because more than max_pending were un-acked


def _is_failure(rc: ReasonCode | int) -> bool:
    return rc.is_failure if isinstance(rc, ReasonCode) else rc != 0


class MqttSource:
    """Subscribes to readings topics and hands messages to a polling consumer; see the module docstring."""

    def __init__(self, host: str = "127.0.0.1", port: int = 1883, *, client_id: str,
                 topics: str | Sequence[str] | None = None, qos: int = 1, clean_start: bool = False,
                 shared_group: str | None = None, username: str | None = None, password: str | None = None,
                 keepalive: int = 30, reconnect_min_s: int = 1, reconnect_max_s: int = 30,
                 max_pending: int = 1000, protocol: Protocol = "3.1.1",
                 session_expiry_s: int = 7 * 86400, stall_s: float | None = None,
                 scheme: TopicScheme = DEFAULT_SCHEME) -> None:
        if not client_id:
            raise ValueError("a fixed client_id is required: the persistent session is keyed by it")
        if qos not in (0, 1, 2):
            raise ValueError(f"qos must be 0, 1 or 2, not {qos!r}")
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self.host, self.port, self.client_id = host, port, client_id
        filters = [scheme.readings_filter()] if topics is None else [topics] if isinstance(topics, str) \
            else list(topics)
        self.topics = [shared(f, shared_group) for f in filters] if shared_group else filters
        self.qos = qos
        self.clean_start = clean_start
        self.keepalive = keepalive
        self.max_pending = max_pending
        self.protocol = protocol
        self.session_expiry_s = session_expiry_s
        self.stall_s = min(1.0, keepalive / 4) if stall_s is None else stall_s
        self.counters = SourceCounters()

        self._cond = threading.Condition()
        self._queue: collections.deque[Message] = collections.deque()
        self._pending = 0  # queued + polled but not acked
        self._generation = 0
        self._connected = False
        self._ready = threading.Event()  # connected and SUBACK received
        self._stopping = False
        self._started = False

        if protocol == "5":
            self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                       protocol=mqtt.MQTTv5, manual_ack=True)
        elif protocol == "3.1.1":
            self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                       protocol=mqtt.MQTTv311, clean_session=clean_start, manual_ack=True)
        else:
            raise ValueError(f"protocol must be '3.1.1' or '5', not {protocol!r}")
        if username is not None:
            self._client.username_pw_set(username, password)
        self._client.reconnect_delay_set(reconnect_min_s, reconnect_max_s)
        self._client.on_connect = self._on_connect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    # ---- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> MqttSource:
        """Connect in the background; a broker that is down now is retried with backoff."""
        if self._started:
            return self
        self._started = True
        self._stopping = False
        log.info("mqtt source %s: connecting to %s:%s (MQTT %s, %s session), topics %s",
                 self.client_id, self.host, self.port, self.protocol,
                 "clean" if self.clean_start else "persistent", self.topics)
        if self.protocol == "5":
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 0 if self.clean_start else self.session_expiry_s
            props.ReceiveMaximum = min(self.max_pending, 65535)
            self._client.connect_async(self.host, self.port, self.keepalive, clean_start=self.clean_start,
                                       properties=props)
        else:
            self._client.connect_async(self.host, self.port, self.keepalive)
        self._client.loop_start()
        return self

    def stop(self) -> None:
        """Disconnect cleanly. Un-acked messages stay with the broker's session for the next start."""
        if not self._started:
            return
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._client.disconnect()
        self._client.loop_stop()
        self._started = False
        log.info("mqtt source %s: stopped (%d un-acked message(s) left to the broker)", self.client_id,
                 self._pending)

    def __enter__(self) -> MqttSource:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until connected and the broker has answered the subscription (False on timeout)."""
        return self._ready.wait(timeout)

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def pending(self) -> int:
        """Messages received and not yet acked (queued or handed out by poll)."""
        return self._pending

    def stats(self) -> dict[str, Any]:
        return {**asdict(self.counters), "pending": self._pending, "connected": self._connected}

    # ---- consumer side ------------------------------------------------------------------------------
    def poll(self, max_messages: int = 1000, timeout: float | None = 1.0) -> list[Message]:
        """Up to `max_messages` messages, waiting up to `timeout` s for the first one ([] on timeout/stop).
        Every message returned must later be passed to ack(), once what came out of it is stored."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._queue and not self._stopping:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return []
                self._cond.wait(remaining)
            q = self._queue
            return [q.popleft() for _ in range(min(max_messages, len(q)))]

    def ack(self, messages: Iterable[Message]) -> None:
        """Acknowledge messages to the broker (QoS 1/2); QoS 0 messages only leave the pending count."""
        with self._cond:  # held while queueing PUBACKs so a reconnect cannot slip in between check and send
            n = 0
            for m in messages:
                n += 1
                if m.qos == 0:
                    continue
                if m.generation == self._generation and self._connected:
                    self._client.ack(m.mid, m.qos)
                    self.counters.acked += 1
                else:
                    self.counters.stale_acks += 1
            self._pending = max(0, self._pending - n)
            self._cond.notify_all()

    # ---- paho callbacks (network thread: keep them short) -----------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: ReasonCode,
                    properties: Properties | None) -> None:
        if _is_failure(reason_code):
            self.counters.connect_failures += 1
            log.error("mqtt source %s: broker %s:%s refused the connection: %s", self.client_id, self.host,
                      self.port, reason_code)
            return
        with self._cond:
            self._generation += 1
            self._connected = True
        self.counters.connects += 1
        session_present = bool(getattr(flags, "session_present", False))
        log.info("mqtt source %s: connected to %s:%s (session present: %s); subscribing to %s",
                 self.client_id, self.host, self.port, session_present, self.topics)
        # Always resubscribe: harmless on a kept session, essential when the broker forgot it.
        client.subscribe([(t, self.qos) for t in self.topics])

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self.counters.connect_failures += 1
        log.warning("mqtt source %s: cannot connect to %s:%s; retrying with backoff", self.client_id,
                    self.host, self.port)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: ReasonCode,
                       properties: Properties | None) -> None:
        with self._cond:
            was_connected = self._connected
            self._generation += 1
            self._connected = False
        self._ready.clear()
        if not was_connected:
            return
        self.counters.disconnects += 1
        if self._stopping:
            log.info("mqtt source %s: disconnected", self.client_id)
        else:
            log.warning("mqtt source %s: connection lost (%s); reconnecting", self.client_id, reason_code)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: list[ReasonCode],
                      properties: Properties | None) -> None:
        for topic, rc in zip(self.topics, reason_codes, strict=False):
            if _is_failure(rc):
                self.counters.subscribe_failures += 1
                log.error("mqtt source %s: subscription to %s refused: %s (check the broker ACL)",
                          self.client_id, topic, rc)
        if self._connected:
            self._ready.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:  # kept, and dead-lettered as a bad topic by the decoder
            topic = msg._topic.decode("utf-8", "backslashreplace")
        with self._cond:
            self._queue.append(Message(topic, msg.payload, time.time_ns(), msg.mid, msg.qos, bool(msg.dup),
                                       self._generation))
            self._pending += 1
            self.counters.messages += 1
            if msg.dup:
                self.counters.redelivered += 1
            self._cond.notify_all()
            if self._pending > self.max_pending and not self._stopping:
                self.counters.stalls += 1
                self._cond.wait_for(lambda: self._pending <= self.max_pending or self._stopping, self.stall_s)
