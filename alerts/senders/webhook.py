"""Plain JSON webhook: the notification exactly as `Notification.to_dict()` shapes it.

For systems, not people (ticketing, SCADA gateways, a city's own dispatch): they get every field
(UTC ISO times, grade in both languages) and do their own wording. Any 2xx is a delivery.
"""

from __future__ import annotations

from typing import Any

from alerts.notification import Notification

from .http import HttpSender


class WebhookSender(HttpSender):
    """POSTs `Notification.to_dict()`; extra `headers` (e.g. Authorization) are secrets, never shown."""

    kind = "webhook"

    def payload(self, notification: Notification) -> dict[str, Any]:
        return notification.to_dict()
