"""One JSON POST, judged the way the receiver means it, and the base every HTTP sender builds on.

Retryable: network errors, timeouts, 5xx, 408/425/429, and a robot's own "slow down" codes. Not
retryable: other 4xx, redirects, and robot errors such as a bad token or signature (trying again
cannot help). Chat robots answer HTTP 200 with an error code in the JSON body (DingTalk/WeCom
`errcode`, Feishu `code`, older Feishu `StatusCode`), so a 200 alone is not a delivery.

Webhook URLs are secrets (the token is in them): errors only ever show `redact_url(url)`, and any
text that came from elsewhere (exception texts, the robot's message) is scrubbed of the URL's parts
and of signing secrets before it is put in a DeliveryError.
"""

from __future__ import annotations

import http.client
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from alerts.notification import DeliveryError, Notification
from alerts.notifiers import _secrets, redact_url  # _secrets: the URL's parts that must never be shown

from .format import DEFAULT_STYLE, Style

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({408, 425, 429})
MAX_ANSWER = 64 * 1024  # robots answer a few hundred bytes; never buffer a huge error page
_MASK = "…"


class HttpDeliveryError(DeliveryError):
    """A failed POST, with the HTTP status and the robot's own error code when there was one."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None,
                 code: int | None = None) -> None:
        super().__init__(message, retryable=retryable)
        self.status, self.code = status, code


@dataclass(frozen=True)
class RobotAnswer:
    """Where a chat robot puts its verdict in its JSON answer, and which codes mean "slow down"."""

    robot: str  # for messages: "DingTalk"
    code_keys: tuple[str, ...]  # first one present wins
    message_keys: tuple[str, ...]
    retryable: Callable[[int, str], bool]

    def verdict(self, raw: bytes) -> tuple[int, str] | None:
        """(code, message) from the answer, or None when it is not this robot's JSON."""
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None
        if not isinstance(doc, dict):
            return None
        code = next((doc[k] for k in self.code_keys if k in doc), None)
        if isinstance(code, bool) or not isinstance(code, int):
            return None
        msg = next((str(doc[k]) for k in self.message_keys if doc.get(k)), "")
        return code, msg[:300]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects become errors: a moved webhook must be reconfigured, not followed (urllib would turn the
    POST into a body-less GET, and the alert could go somewhere nobody checked)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


class Scrubber:
    """Removes a URL's secret parts (and signing secrets) from texts that came from elsewhere."""

    def __init__(self, url: str, extra: Sequence[str] = ()) -> None:
        self._secrets = sorted({*_secrets(url), *(s for s in extra if s)}, key=len, reverse=True)
        self.shown = redact_url(url)
        self.shown = self(self.shown)  # also masks a query's token where it repeats in the path

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, self.shown if secret.startswith(("http:", "https:")) else _MASK)
        return text


def post_json(url: str, payload: Any, *, timeout: float, scrub: Scrubber, answer: RobotAnswer | None = None,
              headers: dict[str, str] | None = None) -> None:
    """POST `payload` as UTF-8 JSON; return when the receiver accepted it, raise HttpDeliveryError if not."""
    where = scrub.shown
    req = urllib.request.Request(url, data=dumps(payload), method="POST", headers={
        "Content-Type": "application/json; charset=utf-8", **(headers or {})})
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            status, reason, raw = resp.status, resp.reason, resp.read(MAX_ANSWER)
    except urllib.error.HTTPError as exc:
        status, reason = exc.code, exc.reason
        try:
            raw = exc.read(MAX_ANSWER)
        except (OSError, http.client.HTTPException):
            raw = b""
        finally:
            exc.close()
    except (http.client.InvalidURL, ValueError) as exc:  # their texts quote the URL: never shown
        raise HttpDeliveryError(f"{where}: invalid URL ({type(exc).__name__})", retryable=False) from None
    except (OSError, http.client.HTTPException) as exc:  # refused, reset, DNS, TLS, timeout
        detail = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise HttpDeliveryError(scrub(f"{where}: {type(exc).__name__}: {detail}"), retryable=True) from None
    _judge(where, status, str(reason), raw, answer, scrub)


def _judge(where: str, status: int, reason: str, raw: bytes, answer: RobotAnswer | None, scrub: Scrubber) -> None:
    verdict = answer.verdict(raw) if answer is not None else None
    code, msg = verdict if verdict is not None else (None, "")
    robot_says = f"{answer.robot} error {code}: {scrub(msg)}" if answer is not None and code else ""
    if 200 <= status < 300:
        if answer is None or code == 0:
            return
        if verdict is None:
            raise HttpDeliveryError(f"{where}: HTTP {status} but the answer is not {answer.robot} robot JSON "
                                    f"(wrong URL or a proxy in the way?)", retryable=False, status=status)
        raise HttpDeliveryError(f"{where}: {robot_says}", retryable=answer.retryable(code, msg),
                                status=status, code=code)
    if 300 <= status < 400:
        raise HttpDeliveryError(f"{where}: HTTP {status} redirect; configure the final URL", retryable=False,
                                status=status)
    retry = status >= 500 or status in RETRYABLE_STATUS
    if answer is not None and code:
        retry = retry or answer.retryable(code, msg)
    text = f"{where}: HTTP {status} {scrub(reason)}" + (f"; {robot_says}" if robot_says else "")
    raise HttpDeliveryError(text, retryable=retry, status=status, code=code)


class HttpSender:
    """Base of the HTTP senders: one URL (a secret), one JSON payload per notification, an optional
    signing secret. Subclasses say what to send (`payload`) and how to sign (`signed_url`)."""

    kind = "webhook"
    answer: RobotAnswer | None = None

    def __init__(self, name: str, url: str, *, timeout: float = 5.0, secret: str | None = None,
                 headers: dict[str, str] | None = None, style: Style = DEFAULT_STYLE) -> None:
        if not url.lower().startswith(("http://", "https://")):
            raise ValueError(f"{self.kind} receiver {name!r}: url must be http(s): {redact_url(url)!r}")
        self.name, self.timeout, self.style = name, timeout, style
        self._url, self._secret, self._headers = url, secret, dict(headers or {})  # secrets: never shown
        # header values long enough to be credentials (Authorization, X-Api-Key) are scrubbed too
        self._scrub = Scrubber(url, [secret or "", *(v for v in self._headers.values() if len(v) >= 8)])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()!r})"

    def describe(self) -> str:
        signed = " (signed)" if self._secret else ""
        return f"{self.kind} receiver {self.name!r} → {self._scrub.shown}{signed}"

    def payload(self, notification: Notification) -> dict[str, Any]:
        raise NotImplementedError

    def signed_url(self) -> str:
        """The URL of one request: robots that sign per request add timestamp and signature here."""
        return self._url

    def send(self, notification: Notification) -> None:
        post_json(self.signed_url(), self.payload(notification), timeout=self.timeout, scrub=self._scrub,
                  answer=self.answer, headers=self._headers)
        log.debug("%s: delivered %s %s", self.describe(), notification.reason, notification.group_key)

    def close(self) -> None:
        """Nothing to release: every send opens and closes its own connection."""
