"""WeCom (企业微信) group robot: markdown message with the grade in WeCom's colours.

Format (developer.work.weixin.qq.com, 群机器人配置说明): `{"msgtype": "markdown", "markdown":
{"content"}}`, content at most 4096 UTF-8 bytes; `<font color="info|comment|warning">` (green, grey,
orange-red) are the only colours, so red and orange are `warning` (told apart by emoji and label),
yellow `comment`, resolved `info`. Over-long groups drop whole alert lines and say "…还有 N 条".
Answers are HTTP 200 with `errcode`: 0 is success, 45009 (frequency limit, 20 messages a minute) and
-1 (system busy) are worth retrying; 93000 (invalid webhook url / key) and the rest are not.
"""

from __future__ import annotations

from typing import Any

from alerts.notification import Notification

from .format import Grade, Markdown, digest, render
from .http import HttpSender, RobotAnswer

WECOM = RobotAnswer("WeCom", ("errcode",), ("errmsg",), lambda code, msg: code in (45009, -1))
LIMIT = 4096  # bytes of markdown.content


def _colour(text: str, grade: Grade) -> str:
    return f'<font color="{grade.wecom}">{text}</font>'


MARKDOWN = Markdown(colour=_colour)


class WeComSender(HttpSender):
    """One markdown message per notification, always within WeCom's 4096-byte limit."""

    kind = "wecom"
    answer = WECOM

    def payload(self, notification: Notification) -> dict[str, Any]:
        text = render(digest(notification, self.style), MARKDOWN, limit=LIMIT, max_alerts=self.style.max_alerts)
        return {"msgtype": "markdown", "markdown": {"content": text}}
