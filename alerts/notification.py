"""What routing hands to a receiver: one message about a group of alerts, and the interface that sends it.

The router (alerts/routing/) decides *when* and *to whom* (grouping, inhibition, silences, escalation);
a `Sender` (alerts/senders/) only knows *how* to reach one kind of receiver (JSON webhook, DingTalk,
WeCom or Feishu robots, e-mail, MQTT). Keeping the two apart is what lets one incident become one
message per receiver instead of a storm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from alerts.model import Alert, AlertChange
from sentinel.readings import iso

Reason = Literal["firing", "resolved", "repeat", "escalation"]
REASONS: tuple[str, ...] = ("firing", "resolved", "repeat", "escalation")


@dataclass(frozen=True)
class Notification:
    """One message to one receiver about one group of alerts (e.g. every alert of zone water/DMA1).

    `alerts` is the group's state as it is now (what a reader must see); `changes` are the changes since
    this group was last notified (what happened). `reason` says why this message exists.
    """

    receiver: str
    group_key: str  # e.g. "water/DMA1" for group_by [network, zone]
    reason: Reason
    alerts: tuple[Alert, ...]
    changes: tuple[AlertChange, ...] = ()
    created_ns: int = 0  # wall clock when routing decided to send
    labels: dict[str, str] = field(default_factory=dict)  # the group's common labels, e.g. network, zone

    @property
    def worst(self) -> Alert | None:
        """The most severe firing alert (or the most severe one at all), for titles and colours."""
        pool = [a for a in self.alerts if a.is_open] or list(self.alerts)
        return max(pool, key=lambda a: (int(a.severity), -a.started_ns), default=None)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form a plain webhook receives (and the shape every sender starts from)."""
        return {
            "receiver": self.receiver, "group_key": self.group_key, "reason": self.reason,
            "labels": dict(self.labels), "created": iso(self.created_ns) if self.created_ns else None,
            "alerts": [a.to_dict() for a in self.alerts],
            "changes": [c.to_dict() for c in self.changes],
        }


class DeliveryError(RuntimeError):
    """A sender could not deliver; `retryable` False means trying again cannot help (bad URL, 4xx)."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class Sender(Protocol):
    """Delivers one notification, synchronously: returns when the receiver accepted it, raises
    DeliveryError otherwise. Retrying, recording and spacing attempts is the dispatcher's job."""

    kind: str  # "webhook", "dingtalk", "wecom", "feishu", "email", "mqtt"

    def describe(self) -> str:
        """Where it sends, with secrets redacted (tokens in URLs, passwords): safe for logs and the UI."""
        ...

    def send(self, notification: Notification) -> None: ...

    def close(self) -> None: ...
