"""Notifiers: tell people and systems about alert changes. Delivery failures are kept, never dropped.

Every notifier sends the same JSON shape (`alert_change_to_dict`). `notify` may block (the webhook
retries with backoff); wrap a slow notifier in `ThreadedNotifier` so the engine never waits on it.

Webhook URLs are secrets (DingTalk `?access_token=`, WeCom `?key=`, Feishu/Lark `/hook/<token>`): logs,
errors and FailedDelivery only ever show `redact_url(url)`.
"""

from __future__ import annotations

import http.client
import json
import logging
import queue
import random
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TextIO, runtime_checkable

from alerts.model import AlertChange, alert_change_to_dict
from sentinel.readings import iso

if TYPE_CHECKING:
    import paho.mqtt.client as mqtt

__all__ = [
    "ConsoleNotifier", "FailedDelivery", "MqttNotifier", "Notifier", "ThreadedNotifier",
    "WebhookNotifier", "alert_change_to_dict", "format_change", "redact_url",
]

log = logging.getLogger(__name__)


@runtime_checkable
class Notifier(Protocol):
    def notify(self, changes: Sequence[AlertChange]) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class FailedDelivery:
    """A payload that could not be delivered after every retry, kept for re-delivery or spooling."""

    target: str  # webhook URL as redact_url shows it (no secrets), or MQTT topic
    payload: bytes
    error: str
    attempts: int
    failed_at: float  # wall clock (s): delivery is an I/O matter, not event time


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def format_change(change: AlertChange) -> str:
    """One line an operator reads at a glance, e.g.
    `[RED 一级] OPENED water/DMA1 W-DMA1-P01 rule burst-pressure-drop: <message> since <iso>`."""
    a = change.alert
    grade = f"[{a.severity.name} {a.severity.grade_zh}]"
    head = f"{grade} {change.change.upper()} {a.network}/{a.zone} {a.subject} rule {a.rule_id}"
    parts = [f"{head}: {a.message} since {iso(a.started_ns)}"]
    if change.change in ("escalated", "deescalated", "reactivated") and a.current_severity is not None:
        parts.append(f"now {a.current_severity.name} {a.current_severity.grade_zh}")
    if change.actor:
        parts.append(f"by {change.actor}" + (f" ({change.note})" if change.note else ""))
    elif a.acked_by:
        parts.append(f"acked by {a.acked_by}")
    if change.change in ("cleared", "resolved"):
        parts.append(f"at {iso(change.time_ns)}")
    return "; ".join(parts)


class ConsoleNotifier:
    """Readable lines to a stream (default stderr) or, if `logger` is given, to logging (RED at WARNING)."""

    def __init__(self, stream: TextIO | None = None, logger: logging.Logger | None = None) -> None:
        self._stream = stream if stream is not None or logger is not None else sys.stderr
        self._logger = logger

    def notify(self, changes: Sequence[AlertChange]) -> None:
        for c in changes:
            line = format_change(c)
            if self._logger is not None:
                level = logging.WARNING if c.alert.severity.name == "RED" else logging.INFO
                self._logger.log(level, "%s", line)
            if self._stream is not None:
                self._stream.write(line + "\n")
        if self._stream is not None:
            self._stream.flush()

    def close(self) -> None:
        if self._stream is not None:
            self._stream.flush()


_RETRYABLE_HTTP = frozenset({408, 425, 429})
_MASK = "\u2026"  # …
# Tokens in the path: Feishu/Lark `/open-apis/bot/v2/hook/<token>` (the segment after `hook` is always
# masked), Slack `/services/T…/B…/<token>`, Discord `/api/webhooks/<id>/<token>` (a last segment after one
# of these that looks like a token: digits in it or 8+ characters; WeCom's `/cgi-bin/webhook/send` stays)
_HOOK_SEGMENTS = frozenset({"hook", "hooks", "webhook", "webhooks", "services"})


def _split(url: str) -> tuple[str, str, str, str, str] | None:
    try:
        parts = urllib.parse.urlsplit(url.strip())
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return None
    return parts.scheme, parts.netloc, parts.path, parts.query, parts.fragment


def _token_segment(segments: list[str]) -> int | None:
    """Index of the path segment holding a hook token: the last non-empty one, after a hook segment."""
    last = max((i for i, seg in enumerate(segments) if seg), default=None)
    if last is None or last == 0:
        return None
    if segments[last - 1].lower() == "hook":
        return last
    seg = segments[last]
    looks_like_token = len(seg) >= 8 or any(c.isdigit() for c in seg)
    if looks_like_token and _HOOK_SEGMENTS.intersection(s.lower() for s in segments[:last]):
        return last
    return None


def redact_url(url: str) -> str:
    """`scheme://host[:port]/path` with any query shown as `?…`, user:password and fragment dropped, and
    the last path segment masked when it is a hook token (`/open-apis/bot/v2/hook/…`): safe to log."""
    split = _split(url)
    if split is None:
        return "<unparseable url>"
    scheme, netloc, path, query, _ = split
    host = netloc.rpartition("@")[2]
    segments = path.split("/")
    token = _token_segment(segments)
    if token is not None:
        segments[token] = _MASK
    return f"{scheme}://{host}{'/'.join(segments)}" + (f"?{_MASK}" if query else "")


def _secrets(url: str) -> list[str]:
    """The parts of `url` that must never be shown, longest first (to scrub them from error texts)."""
    split = _split(url)
    if split is None:
        return [url]
    _, netloc, path, query, fragment = split
    found = [url, url.strip(), path + "?" + query if query else "", query, fragment]
    found += [v for _, v in urllib.parse.parse_qsl(query, keep_blank_values=True)]
    segments = path.split("/")
    token = _token_segment(segments)
    found += [netloc.rpartition("@")[0], "" if token is None else segments[token]]
    return sorted({f for f in found if len(f) >= 3}, key=len, reverse=True)


class WebhookNotifier:
    """POSTs `{"changes": [...]}` as JSON. Retries network errors, 5xx, 408/425/429 with exponential
    backoff plus jitter (`backoff * 2**n`, half of it randomised, so many senders don't retry in step).

    After the last attempt (or a non-retryable 4xx) the payload goes to `failed` and `on_failure`, and is
    logged at error: a dead webhook never raises into, or silently loses data for, the caller.
    """

    def __init__(self, url: str, timeout: float = 5.0, retries: int = 3, backoff: float = 0.5, *,
                 headers: dict[str, str] | None = None,
                 on_failure: Callable[[FailedDelivery], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not url.lower().startswith(("http://", "https://")):
            raise ValueError(f"webhook url must be http(s): {redact_url(url)!r}")
        if retries < 0 or timeout <= 0 or backoff < 0:
            raise ValueError("need retries >= 0, timeout > 0, backoff >= 0")
        self._url = url  # secret: only _post uses it
        self.url = redact_url(url)  # what logs, errors and FailedDelivery show
        self._secrets = _secrets(url)
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self._headers = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        self._on_failure = on_failure
        self._sleep = sleep
        self._rng = random.Random()
        self.failed: list[FailedDelivery] = []

    def __repr__(self) -> str:
        return f"WebhookNotifier({self.url!r})"

    def notify(self, changes: Sequence[AlertChange]) -> None:
        if changes:
            self._deliver(_dumps({"changes": [alert_change_to_dict(c) for c in changes]}))

    def retry_failed(self) -> int:
        """Try every kept payload once more (with the usual retries); returns how many are still failing."""
        pending, self.failed = self.failed, []
        for f in pending:
            self._deliver(f.payload)
        return len(self.failed)

    def _deliver(self, body: bytes) -> bool:
        attempts, error = 0, ""
        for attempt in range(self.retries + 1):
            if attempt:
                delay = self.backoff * 2 ** (attempt - 1)
                self._sleep(delay / 2 + self._rng.uniform(0, delay / 2))
            attempts += 1
            retry, error = self._post(body)
            if not error:
                return True
            log.warning("webhook %s attempt %d/%d failed: %s", self.url, attempts, self.retries + 1, error)
            if not retry:
                break
        failure = FailedDelivery(self.url, body, error, attempts, time.time())
        self.failed.append(failure)
        log.error("webhook %s: giving up after %d attempt(s): %s; payload kept (%d failed)",
                  self.url, attempts, error, len(self.failed))
        if self._on_failure is not None:
            try:
                self._on_failure(failure)
            except Exception:
                log.exception("webhook on_failure callback raised")
        return False

    def _post(self, body: bytes) -> tuple[bool, str]:
        """(retryable, error); error is "" on success."""
        try:
            req = urllib.request.Request(self._url, data=body, headers=self._headers, method="POST")
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                resp.read()
            return False, ""
        except urllib.error.HTTPError as exc:
            exc.close()
            return exc.code >= 500 or exc.code in _RETRYABLE_HTTP, self._scrub(f"HTTP {exc.code} {exc.reason}")
        except http.client.InvalidURL as exc:  # its text quotes the path and query: scrubbed below
            return False, self._scrub(f"{type(exc).__name__}: {exc}")
        except (OSError, ValueError, http.client.HTTPException) as exc:  # URLError, refused, timeout, bad host
            return True, self._scrub(f"{type(exc).__name__}: {exc}")

    def _scrub(self, text: str) -> str:
        """An error text without the URL's secrets (http.client quotes the path and query in some)."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, self.url if secret.startswith(("http:", "https:")) else _MASK)
        return text

    def close(self) -> None:
        if self.failed:
            log.error("webhook %s closing with %d undelivered payload(s)", self.url, len(self.failed))


class MqttNotifier:
    """Publishes each change as JSON to `<prefix>/<network>/<zone>` with QoS 1.

    The client is owned (connected, looped, reconnected) by the caller. While disconnected paho keeps
    QoS 1 messages and sends them on reconnect; a message paho refuses (queue full, bad topic) goes to
    `failed` and is logged at error.
    """

    def __init__(self, client: mqtt.Client, prefix: str = "sentinel/alerts", qos: int = 1,
                 retain: bool = False) -> None:
        self._client, self.prefix, self.qos, self.retain = client, prefix.rstrip("/"), qos, retain
        self.failed: list[FailedDelivery] = []

    def topic_for(self, change: AlertChange) -> str:
        return f"{self.prefix}/{change.alert.network}/{change.alert.zone}"

    def notify(self, changes: Sequence[AlertChange]) -> None:
        import paho.mqtt.client as mqtt

        ok = (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN)  # NO_CONN: queued by paho for reconnect
        for c in changes:
            topic, payload = self.topic_for(c), _dumps(alert_change_to_dict(c))
            try:
                rc = self._client.publish(topic, payload, qos=self.qos, retain=self.retain).rc
                error = "" if rc in ok else mqtt.error_string(rc)
            except (ValueError, OSError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            if error:
                self.failed.append(FailedDelivery(topic, payload, error, 1, time.time()))
                log.error("mqtt publish to %s failed: %s; payload kept (%d failed)",
                          topic, error, len(self.failed))

    def close(self) -> None:
        if self.failed:
            log.error("mqtt notifier closing with %d undelivered payload(s)", len(self.failed))


class ThreadedNotifier:
    """Runs a (possibly slow) notifier on its own thread so the engine never waits on delivery.

    The queue is unbounded on purpose: alert changes are few, and dropping them is worse than memory.
    `close()` delivers everything queued, then closes the inner notifier.
    """

    _STOP = object()

    def __init__(self, inner: Notifier, name: str = "notifier") -> None:
        self.inner = inner
        self._q: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def notify(self, changes: Sequence[AlertChange]) -> None:
        if changes:
            self._q.put(list(changes))

    def _run(self) -> None:
        while (item := self._q.get()) is not self._STOP:
            if isinstance(item, threading.Event):
                item.set()
                continue
            try:
                self.inner.notify(item)
            except Exception:
                log.exception("notifier %r raised; %d change(s) not delivered", self.inner, len(item))

    def join(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far is delivered (for tests and orderly shutdown)."""
        done = threading.Event()
        self._q.put(done)
        return done.wait(timeout)

    def close(self) -> None:
        self._q.put(self._STOP)
        self._thread.join()
        self.inner.close()
