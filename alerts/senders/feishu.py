"""Feishu / Lark (飞书) custom bot: an interactive card coloured by grade, optional signature.

Format (open.feishu.cn, 自定义机器人使用指南 and message-card docs): `{"msg_type": "interactive",
"card": {"header": {"title": {"tag": "plain_text"}, "template": colour}, "elements": [...]}}` with
`lark_md` text; header template red/orange/yellow by grade, green once resolved. The whole request
must stay under 20 KB. Signing: the string `timestamp` (s) + "\\n" + secret is the HMAC-SHA256 *key*
over an empty message, base64; `timestamp` and `sign` go into the JSON body.
Answers carry `code` (older gateway: `StatusCode`), sometimes with HTTP 400: 0 is success; 11232
(frequency limited, 100 a minute / 5 a second per bot) and 9499 "too many request" are worth retrying
(9499 also means "Bad Request", a malformed body, which is not); 19001 (token), 19021 (signature or
clock more than an hour off), 19022 (IP) and 19024 (keyword) are not.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

from alerts.notification import Notification

from .format import DEFAULT_STYLE, Markdown, Style, digest, local_time, render, tz_name
from .http import HttpSender, RobotAnswer


def _retryable(code: int, msg: str) -> bool:
    return code == 11232 or (code == 9499 and "bad request" not in msg.lower())


FEISHU = RobotAnswer("Feishu", ("code", "StatusCode"), ("msg", "StatusMessage"), _retryable)
MARKDOWN = Markdown(heading="", quote="")  # lark_md: bold and links, no headings or quotes
LIMIT = 16_000  # bytes of card text; the request limit is 20 KB with the card's JSON around it


def sign(secret: str, timestamp_s: int) -> str:
    """The `sign` Feishu checks: HMAC-SHA256 keyed with "timestamp\\nsecret" over nothing, base64."""
    mac = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("ascii")


def _md(text: str) -> dict[str, Any]:
    return {"tag": "div", "text": {"tag": "lark_md", "content": text}}


class FeishuSender(HttpSender):
    """One card per notification: header = title in the grade's colour, body = summary and alert lines."""

    kind = "feishu"
    answer = FEISHU

    def __init__(self, name: str, url: str, *, secret: str | None = None, timeout: float = 5.0,
                 style: Style = DEFAULT_STYLE, clock: Callable[[], float] = time.time) -> None:
        super().__init__(name, url, timeout=timeout, secret=secret, style=style)
        self._clock = clock

    def payload(self, notification: Notification) -> dict[str, Any]:
        d = digest(notification, self.style)
        sent = local_time(notification.created_ns or time.time_ns(), self.style.utc_offset_h)
        card = {
            "config": {"wide_screen_mode": True},
            "header": {"title": {"tag": "plain_text", "content": d.title}, "template": d.grade.colour},
            "elements": [
                _md(render(d, MARKDOWN, limit=LIMIT, max_alerts=self.style.max_alerts, title=False)),
                {"tag": "hr"},
                {"tag": "note", "elements": [{"tag": "plain_text", "content":
                    f"Lifeline Sentinel · {d.group_key} · {sent} {tz_name(self.style.utc_offset_h)}"}]},
            ],
        }
        body: dict[str, Any] = {"msg_type": "interactive", "card": card}
        if self._secret:
            ts = int(self._clock())
            body.update(timestamp=str(ts), sign=sign(self._secret, ts))
        return body
