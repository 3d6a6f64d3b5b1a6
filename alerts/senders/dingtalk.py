"""DingTalk (钉钉) group robot: markdown message, optional 加签 signing, @-mentions for red alerts.

Format (open.dingtalk.com, custom robot "message types"): `{"msgtype": "markdown", "markdown":
{"title", "text"}, "at": {"atMobiles", "isAtAll"}}`; a mention only highlights when the number is also
written as `@138…` in the text, and is sent only while a red alert is unacknowledged. DingTalk's
markdown has no colours, so the grade is its emoji and label, and lines need a blank line between them
to break. Signing: `timestamp` (ms) + "\\n" + secret, HMAC-SHA256 keyed with the secret, base64, sent
URL-encoded as `&timestamp=…&sign=…`.
Answers are HTTP 200 with `errcode`: 0 is success, 130101 ("send too fast", 20 messages a minute per
robot) and -1 (system busy) are worth retrying; 300001/300005 (token) or 310000 (sign, keyword, IP) are not.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any

from alerts.notification import Notification
from sentinel.severity import Severity

from .format import DEFAULT_STYLE, Markdown, Style, digest, render
from .http import HttpSender, RobotAnswer

DINGTALK = RobotAnswer("DingTalk", ("errcode",), ("errmsg",), lambda code, msg: code in (130101, -1))
MARKDOWN = Markdown(sep="\n\n")
LIMIT = 16_000  # bytes; DingTalk cuts long markdown on phones long before its own size limit


def _unacknowledged_red(notification: Notification) -> bool:
    """Mentions wake people: only for a red alert nobody has acknowledged yet."""
    return any(a.state == "firing" and a.severity is Severity.RED for a in notification.alerts)


def sign(secret: str, timestamp_ms: int) -> str:
    """The `sign` DingTalk checks (base64, not yet URL-encoded)."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("ascii")


class DingTalkSender(HttpSender):
    """One markdown message per notification; `at_mobiles`/`at_all` only while a red alert is unacknowledged."""

    kind = "dingtalk"
    answer = DINGTALK

    def __init__(self, name: str, url: str, *, secret: str | None = None, at_mobiles: Sequence[str] = (),
                 at_all: bool = False, timeout: float = 5.0, style: Style = DEFAULT_STYLE,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(name, url, timeout=timeout, secret=secret, style=style)
        self.at_mobiles, self.at_all, self._clock = tuple(at_mobiles), at_all, clock

    def signed_url(self) -> str:
        if not self._secret:
            return self._url
        ts = int(self._clock() * 1000)
        query = urllib.parse.urlencode({"timestamp": ts, "sign": sign(self._secret, ts)})
        return f"{self._url}{'&' if '?' in self._url else '?'}{query}"

    def payload(self, notification: Notification) -> dict[str, Any]:
        d = digest(notification, self.style)
        mention = (self.at_mobiles or self.at_all) and _unacknowledged_red(notification)
        tail = " ".join(f"@{m}" for m in self.at_mobiles) if mention else ""
        text = render(d, MARKDOWN, limit=LIMIT - len(tail.encode()) - 2, max_alerts=self.style.max_alerts)
        body: dict[str, Any] = {"msgtype": "markdown",
                                "markdown": {"title": d.title, "text": f"{text}\n\n{tail}" if tail else text}}
        if mention:
            body["at"] = {"atMobiles": list(self.at_mobiles), "isAtAll": self.at_all}
        return body
