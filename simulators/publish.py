"""Publish a SimResult to an MQTT broker the way field RTUs would, for end-to-end tests and live demos.

Topics (ingest.topics): `sentinel/data/<network>/<zone>/<sensor_id>` carries one reading
`{"sensor_id", "time", "value", "unit"}`; `sentinel/data/<network>/<zone>/batch` carries
`{"readings": [...]}` with the readings of one zone inside one batch window (default 60 s, at most
`max_batch` per message). Values are in the sensor's own unit, times ISO-8601 UTC with 'Z'.

QoS 1 with a bounded window of unacknowledged messages: we never run ahead of the broker by more
than `max_inflight` messages, so a slow broker slows us down instead of growing an unbounded queue,
and every message counted as acked really reached the broker.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import paho.mqtt.client as mqtt

from ingest.topics import TopicScheme
from simulators.events import NS
from simulators.files import iso_strings
from simulators.synthetic import SimResult


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    due_ns: int  # data time at which an RTU could send it: its newest reading (unshifted)
    readings: int


@dataclass(frozen=True)
class PublishProgress:
    messages_sent: int
    readings_sent: int
    messages_acked: int
    messages_total: int
    readings_total: int
    data_time_ns: int  # data time of the last message sent (unshifted), 0 before the first
    elapsed_s: float
    stopped: bool = False
    time_shift_ns: int = 0  # added to every published time (shift_to_now)


class MessagePlan:
    """The messages of a result in send order, encoded lazily (a week of readings is ~250k)."""

    def __init__(self, result: SimResult, *, batch: bool = True, max_batch: int = 200,
                 batch_window_s: float = 60.0, time_shift_ns: int = 0) -> None:
        if max_batch < 1 or batch_window_s <= 0:
            raise ValueError("max_batch must be >= 1 and batch_window_s > 0")
        r = result.readings
        self._ids = [s.sensor_id for s in result.catalog]
        self._units = [s.unit for s in result.catalog]
        self._times, inv = iso_strings(r.time_ns + time_shift_ns)
        self._time_of = inv
        self._time_ns, self._sensor, self._value = r.time_ns, r.sensor, r.value
        zone_keys = sorted({(s.network, s.zone) for s in result.catalog})
        zone_of_sensor = np.array([zone_keys.index((s.network, s.zone)) for s in result.catalog],
                                  dtype=np.int64)
        self._zone_topics = [TopicScheme().batch_topic(n, z).rsplit("/", 1)[0] for n, z in zone_keys]
        self._zone = zone_of_sensor[r.sensor] if len(r) else np.empty(0, dtype=np.int64)
        self.batch = batch
        if batch and len(r):
            bucket = (r.time_ns - r.time_ns[0]) // int(batch_window_s * NS)
            self._order = np.argsort(bucket * len(zone_keys) + self._zone, kind="stable")
            key = (bucket * len(zone_keys) + self._zone)[self._order]
            starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
            ends = np.r_[starts[1:], len(key)]
            pieces = [np.arange(s, e, max_batch) for s, e in zip(starts, ends, strict=True)]
            self._starts = np.concatenate(pieces) if pieces else np.empty(0, dtype=np.int64)
            self._ends = np.minimum(self._starts + max_batch, np.repeat(ends, [len(p) for p in pieces]))
        else:
            self._order = np.arange(len(r))
            self._starts = np.arange(len(r))
            self._ends = self._starts + 1
        self.readings_total = len(r)

    def __len__(self) -> int:
        return len(self._starts)

    def _reading(self, k: int) -> dict[str, object]:
        s = int(self._sensor[k])
        return {"sensor_id": self._ids[s], "time": self._times[self._time_of[k]],
                "value": float(self._value[k]), "unit": self._units[s]}

    def __iter__(self) -> Iterator[Message]:
        for a, b in zip(self._starts.tolist(), self._ends.tolist(), strict=True):
            rows = self._order[a:b]
            due = int(self._time_ns[rows].max())
            if self.batch:
                topic = f"{self._zone_topics[self._zone[rows[0]]]}/batch"
                body: object = {"readings": [self._reading(int(k)) for k in rows]}
            else:
                k = int(rows[0])
                topic = f"{self._zone_topics[self._zone[k]]}/{self._ids[self._sensor[k]]}"
                body = self._reading(k)
            yield Message(topic, json.dumps(body, separators=(",", ":")).encode(), due, len(rows))


class _Window:
    """Counts messages sent but not yet acknowledged (PUBACK) and blocks while the window is full."""

    def __init__(self) -> None:
        self.sent, self.acked = 0, 0
        self.cond = threading.Condition()

    def on_ack(self) -> None:
        with self.cond:
            self.acked += 1
            self.cond.notify_all()

    def wait_below(self, limit: int, timeout_s: float, stop: threading.Event | None) -> bool:
        """Wait until fewer than `limit` are outstanding (1: all acked); False if stopped first.
        Raises TimeoutError when no PUBACK arrives for timeout_s."""
        deadline = time.monotonic() + timeout_s
        with self.cond:
            last = self.acked
            while self.sent - self.acked >= limit:
                if stop is not None and stop.is_set():
                    return False
                if self.acked != last:
                    last, deadline = self.acked, time.monotonic() + timeout_s
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no PUBACK for {timeout_s:g} s; "
                                       f"{self.sent - self.acked} messages unacknowledged")
                self.cond.wait(0.1)
        return True


def _connect(host: str, port: int, client_id: str, keepalive: int, timeout_s: float, max_inflight: int,
             username: str | None, password: str | None, on_ack: Callable[[], None]) -> mqtt.Client:
    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    client.max_inflight_messages_set(max_inflight)
    if username is not None:
        client.username_pw_set(username, password)
    connected = threading.Event()
    failure: list[str] = []

    def on_connect(_c: mqtt.Client, _u: object, _f: object, reason: mqtt.ReasonCode, _p: object) -> None:
        if reason.is_failure:
            failure.append(str(reason))
        connected.set()

    client.on_connect = on_connect
    client.on_publish = lambda _c, _u, _mid, _rc, _p: on_ack()
    try:
        client.connect(host, port, keepalive)
    except OSError as exc:  # refused, unresolvable, unreachable: one exception type for callers
        raise ConnectionError(f"MQTT broker {host}:{port} unreachable: {exc}") from exc
    client.loop_start()
    if not connected.wait(timeout_s) or failure:
        client.loop_stop()
        client.disconnect()
        why = failure[0] if failure else f"no CONNACK within {timeout_s:g} s"
        raise ConnectionError(f"MQTT broker {host}:{port} refused or unreachable: {why}")
    return client


def publish(result: SimResult, host: str = "localhost", port: int = 1883, *, batch: bool = True,
            speed: float = 0.0, shift_to_now: bool = False, client_id: str = "sentinel-sim",
            progress: Callable[[PublishProgress], None] | None = None,
            stop_event: threading.Event | None = None, max_inflight: int = 100, max_batch: int = 200,
            batch_window_s: float = 60.0, qos: int = 1, keepalive: int = 30, connect_timeout_s: float = 10.0,
            ack_timeout_s: float = 30.0, progress_every_s: float = 1.0, username: str | None = None,
            password: str | None = None) -> PublishProgress:
    """Send every reading; returns the final counts once all messages are acknowledged (or on stop).

    speed: 1.0 replays in real time relative to the data's own clock, 60 runs 60x faster, 0 or inf
    sends as fast as the in-flight window allows. shift_to_now: publish times moved by a whole number
    of seconds so the scenario start maps to the moment publishing begins (for live demos).
    """
    shift_ns = 0
    if shift_to_now:
        shift_ns = (int(time.time()) - int(result.scenario.start.timestamp())) * NS
    plan = MessagePlan(result, batch=batch, max_batch=max_batch, batch_window_s=batch_window_s,
                       time_shift_ns=shift_ns)
    paced = speed > 0 and math.isfinite(speed)
    window = _Window()
    client = _connect(host, port, client_id, keepalive, connect_timeout_s, max_inflight, username, password,
                      window.on_ack)
    t0 = time.monotonic()
    first_due = int(result.readings.time_ns[0]) if len(result.readings) else 0
    sent = readings = 0
    data_time, stopped, last_report = 0, False, t0

    def report() -> PublishProgress:
        p = PublishProgress(sent, readings, window.acked, len(plan), plan.readings_total, data_time,
                            time.monotonic() - t0, stopped, shift_ns)
        if progress is not None:
            progress(p)
        return p

    sleeper = stop_event or threading.Event()
    try:
        for msg in plan:
            if stop_event is not None and stop_event.is_set():
                stopped = True
                break
            if paced:
                delay = t0 + (msg.due_ns - first_due) / NS / speed - time.monotonic()
                if delay > 0 and sleeper.wait(delay):
                    stopped = True
                    break
            if not window.wait_below(max_inflight, ack_timeout_s, stop_event):
                stopped = True
                break
            with window.cond:
                window.sent += 1
            client.publish(msg.topic, msg.payload, qos=qos)
            sent, readings, data_time = sent + 1, readings + msg.readings, msg.due_ns
            if progress is not None and time.monotonic() - last_report >= progress_every_s:
                last_report = time.monotonic()
                report()
        window.wait_below(1, ack_timeout_s, None)  # drain: every sent message acknowledged
    finally:
        client.disconnect()
        client.loop_stop()
    return report()
