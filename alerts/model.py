"""Alerts: what operators see, one per (rule, subject) incident, and the changes notifiers and stores receive.

Everything here is plain immutable data with a lossless dict form (`to_state`/`from_state`) for
snapshots and stores, and a human/JSON form (`to_dict`) with ISO times for notifications.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

from sentinel.readings import iso
from sentinel.severity import Severity

AlertState = Literal["firing", "acknowledged", "resolved"]
ALERT_STATES: tuple[str, ...] = ("firing", "acknowledged", "resolved")

ChangeKind = Literal[
    "opened", "escalated", "deescalated", "cleared", "reactivated", "acknowledged", "resolved",
]
CHANGE_KINDS: tuple[str, ...] = (
    "opened", "escalated", "deescalated", "cleared", "reactivated", "acknowledged", "resolved",
)


def make_alert_id(rule_id: str, subject: str, started_ns: int, seq: int = 0) -> str:
    """Deterministic id, so a replay of the same input yields the same ids (and store upserts match).

    `seq` only disambiguates the rare second incident of one key starting at the very same nanosecond.
    """
    raw = f"{rule_id}\x1f{subject}\x1f{started_ns}" + (f"\x1f{seq}" if seq else "")
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:16]


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _sev(s: Severity | None) -> str | None:
    return s.label if s is not None else None


def _parse_sev(s: str | None) -> Severity | None:
    return Severity.parse(s) if s is not None else None


@dataclass(frozen=True, slots=True)
class Alert:
    """One incident of a rule on a subject, from first raise to resolution.

    `severity` is the worst grade seen while open (it never drops, so routing and reports see the peak);
    `current_severity` follows escalations/deescalations and is None while the condition is cleared.
    `cleared_ns` is set while the condition is gone but the alert waits out its recovery period.
    """

    alert_id: str
    rule_id: str
    kind: str
    network: str
    zone: str
    subject: str
    sensor_id: str | None
    severity: Severity
    state: AlertState
    started_ns: int
    updated_ns: int
    value: float
    message: str
    current_severity: Severity | None = None
    cleared_ns: int | None = None
    resolved_ns: int | None = None
    acked_by: str | None = None
    ack_note: str | None = None
    resolved_by: str | None = None
    resolve_note: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.rule_id, self.subject

    @property
    def is_open(self) -> bool:
        return self.state != "resolved"

    def evolve(self, **changes: Any) -> Alert:
        return replace(self, **changes)

    def to_state(self) -> dict[str, Any]:
        """Lossless JSON-able form (ns integers, severity labels) for snapshots and stores."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["severity"] = self.severity.label
        d["current_severity"] = _sev(self.current_severity)
        d["value"] = _finite(self.value)
        return d

    @classmethod
    def from_state(cls, d: dict[str, Any]) -> Alert:
        d = dict(d)
        d["severity"] = Severity.parse(d["severity"])
        d["current_severity"] = _parse_sev(d.get("current_severity"))
        d["value"] = float("nan") if d.get("value") is None else float(d["value"])
        if d["state"] not in ALERT_STATES:
            raise ValueError(f"unknown alert state {d['state']!r}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """The shape notifications carry: ISO UTC times next to the exact ns, grade in both languages."""
        d = self.to_state()
        d["grade_zh"] = self.severity.grade_zh
        for name in ("started", "updated", "cleared", "resolved"):
            ns = getattr(self, f"{name}_ns")
            d[name] = iso(ns) if ns is not None else None
        return d


@dataclass(frozen=True, slots=True)
class AlertChange:
    """One step in an alert's life: the alert as it is after the change, what changed, when and by whom."""

    alert: Alert
    change: ChangeKind
    time_ns: int
    actor: str | None = None  # operator for acknowledged/manual resolved; None when the engine decided
    note: str | None = None

    def to_state(self) -> dict[str, Any]:
        return {"alert": self.alert.to_state(), "change": self.change, "time_ns": self.time_ns,
                "actor": self.actor, "note": self.note}

    @classmethod
    def from_state(cls, d: dict[str, Any]) -> AlertChange:
        if d["change"] not in CHANGE_KINDS:
            raise ValueError(f"unknown alert change {d['change']!r}")
        return cls(Alert.from_state(d["alert"]), d["change"], int(d["time_ns"]),
                   d.get("actor"), d.get("note"))

    def to_dict(self) -> dict[str, Any]:
        return {"change": self.change, "time": iso(self.time_ns), "time_ns": self.time_ns,
                "actor": self.actor, "note": self.note, "alert": self.alert.to_dict()}


def alert_change_to_dict(change: AlertChange) -> dict[str, Any]:
    """The JSON shape every notifier (webhook, MQTT, console API) sends for a change."""
    return change.to_dict()
