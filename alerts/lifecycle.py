"""Alert lifecycle: turn the engine's detections into one alert per incident, with ack and recovery.

Deduplication is per `Detection.key` (rule, subject): one open alert per key, however often the engine
repeats itself. Time is event time only: a cleared alert resolves once the *event-time watermark* has
moved `resolve_after_s` past the clear, never by the wall clock, so replay and live produce the same
changes, and batching detections differently produces the same changes (batch-size invariance).

Rules for transitions (why, in brief):
- raised: opens an alert; on a cleared-but-unresolved alert it reactivates it (a flapping condition stays
  one incident); on a firing alert at the same grade it is a duplicate and ignored; at another grade it
  is treated as the escalation/deescalation it implies, so the book always follows the engine.
- escalated: changes grade; with no open alert (e.g. an operator resolved it while the condition was
  still on) it opens a new one, because things got worse. deescalated with no open alert is ignored.
- cleared: marks `cleared_ns`; the alert resolves `resolve_after_s` of event time later unless raised again.
- acknowledge is sticky until resolution (escalations still notify, but "who is on it" stays).
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Sequence
from typing import Any

from alerts.model import Alert, AlertChange, ChangeKind, make_alert_id
from sentinel.detections import Detection
from sentinel.readings import NS
from sentinel.severity import Severity

log = logging.getLogger(__name__)

SNAPSHOT_VERSION = 1
Key = tuple[str, str]


class AlertError(LookupError):
    """A manual action named an alert that is unknown or already resolved."""


class AlertBook:
    """The set of open alerts and the rules that move them. Not thread-safe: own it from one thread."""

    def __init__(self, resolve_after_s: float = 900.0) -> None:
        if resolve_after_s < 0:
            raise ValueError("resolve_after_s must be >= 0")
        self.resolve_after_s = float(resolve_after_s)
        self._resolve_after_ns = round(resolve_after_s * NS)
        self._open: dict[Key, Alert] = {}
        self._key_of: dict[str, Key] = {}
        # (due_ns, rule_id, subject, alert_id): alerts waiting out their recovery; stale entries are skipped
        self._due: list[tuple[int, str, str, str]] = []
        # key -> (started_ns, seq) of its latest alert: keeps ids unique if one key re-opens in the same ns
        self._last_start: dict[Key, tuple[int, int]] = {}
        self.watermark_ns: int | None = None

    # -- queries -----------------------------------------------------------------------------------

    def open_alerts(self) -> list[Alert]:
        """Open (firing or acknowledged, possibly cleared and pending recovery) alerts, oldest first."""
        return sorted(self._open.values(), key=lambda a: (a.started_ns, a.rule_id, a.subject))

    def get(self, alert_id: str) -> Alert | None:
        key = self._key_of.get(alert_id)
        return self._open[key] if key is not None else None

    def __len__(self) -> int:
        return len(self._open)

    # -- the engine's side -------------------------------------------------------------------------

    def apply(self, detections: Sequence[Detection], watermark_ns: int) -> list[AlertChange]:
        """Fold detections in, then resolve every alert whose recovery period ended by `watermark_ns`.

        `watermark_ns` promises that no later call brings a detection older than it; recoveries due at a
        detection's time are resolved before that detection is applied, wherever the batch boundaries fall.
        """
        changes: list[AlertChange] = []
        wm = max(watermark_ns, self.watermark_ns if self.watermark_ns is not None else watermark_ns)
        for d in sorted(detections, key=Detection.sort_key):
            # never resolve past the horizon: a later call may still bring an older detection that
            # reactivates the alert, and live (small batches) must decide as replay (large ones) does
            self._resolve_due(min(d.time_ns, wm), changes)
            self._resolve_own(d, changes)
            self._apply_one(d, changes)
        self.watermark_ns = wm
        self._resolve_due(wm, changes)
        self._prune_last_start(wm)
        return changes

    def _apply_one(self, d: Detection, out: list[AlertChange]) -> None:
        a = self._open.get(d.key)
        if d.transition == "cleared":
            if a is None or a.cleared_ns is not None:
                log.debug("ignored clear of %s/%s: no firing alert", *d.key)
                return
            # the alert keeps saying what fired; the change itself records the recovery
            new = a.evolve(cleared_ns=d.time_ns, current_severity=None, updated_ns=d.time_ns)
            self._put(new)
            heapq.heappush(self._due, (d.time_ns + self._resolve_after_ns, d.rule_id, d.subject, a.alert_id))
            out.append(AlertChange(new, "cleared", d.time_ns))
            return
        sev = d.severity
        if sev is None:
            log.warning("ignored %s detection without severity for %s/%s", d.transition, *d.key)
            return
        if a is None:
            if d.transition == "deescalated":
                log.debug("ignored deescalation of %s/%s: no open alert", *d.key)
                return
            self._open_new(d, sev, out)
        elif a.cleared_ns is not None:
            self._change(a, d, sev, "reactivated", out, cleared_ns=None)
        elif sev == a.current_severity:
            log.debug("ignored duplicate %s of %s/%s", d.transition, *d.key)
        else:
            current = a.current_severity or sev
            self._change(a, d, sev, "escalated" if sev > current else "deescalated", out)

    def _open_new(self, d: Detection, sev: Severity, out: list[AlertChange]) -> None:
        prev = self._last_start.get(d.key)
        seq = prev[1] + 1 if prev is not None and prev[0] == d.time_ns else 0
        self._last_start[d.key] = (d.time_ns, seq)
        alert = Alert(
            alert_id=make_alert_id(d.rule_id, d.subject, d.time_ns, seq),
            rule_id=d.rule_id, kind=d.kind, network=d.network, zone=d.zone, subject=d.subject,
            sensor_id=d.sensor_id, severity=sev, current_severity=sev, state="firing",
            started_ns=d.time_ns, updated_ns=d.time_ns, value=d.value, message=d.message,
        )
        self._put(alert)
        out.append(AlertChange(alert, "opened", d.time_ns))

    def _change(self, a: Alert, d: Detection, sev: Severity, kind: ChangeKind, out: list[AlertChange],
                **extra: Any) -> None:
        # the alert's message says what fired at its worst; a de-escalation is recorded by the change
        message = a.message if kind == "deescalated" else d.message
        new = a.evolve(severity=max(a.severity, sev), current_severity=sev, updated_ns=d.time_ns,
                       value=d.value, message=message, **extra)
        self._put(new)
        out.append(AlertChange(new, kind, d.time_ns))

    def _resolve_due(self, limit_ns: int, out: list[AlertChange]) -> None:
        while self._due and self._due[0][0] <= limit_ns:
            due, rule_id, subject, alert_id = heapq.heappop(self._due)
            a = self._open.get((rule_id, subject))
            if a is None or a.alert_id != alert_id or a.cleared_ns is None:
                continue  # reactivated or resolved by hand since
            if a.cleared_ns + self._resolve_after_ns != due:
                continue  # cleared again later; a newer entry is queued
            new = a.evolve(state="resolved", resolved_ns=due, updated_ns=due)
            self._close(new)
            out.append(AlertChange(new, "resolved", due))

    def _resolve_own(self, d: Detection, out: list[AlertChange]) -> None:
        """A key's detections come in time order, so one at or after its own alert's recovery time
        proves the alert recovered first, whatever the horizon says about other keys."""
        a = self._open.get(d.key)
        if a is None or a.cleared_ns is None:
            return
        due = a.cleared_ns + self._resolve_after_ns
        if due <= d.time_ns:
            new = a.evolve(state="resolved", resolved_ns=due, updated_ns=due)
            self._close(new)
            out.append(AlertChange(new, "resolved", due))

    def _prune_last_start(self, wm: int) -> None:
        stale = [k for k, (t, _) in self._last_start.items() if t < wm and k not in self._open]
        for k in stale:
            del self._last_start[k]

    def _put(self, a: Alert) -> None:
        self._open[a.key] = a
        self._key_of[a.alert_id] = a.key

    def _close(self, a: Alert) -> None:
        del self._open[a.key]
        del self._key_of[a.alert_id]

    # -- the operator's side -----------------------------------------------------------------------

    def _require_open(self, alert_id: str) -> Alert:
        a = self.get(alert_id)
        if a is None:
            raise AlertError(f"no open alert {alert_id!r} (unknown or already resolved)")
        return a

    def acknowledge(self, alert_id: str, actor: str, note: str | None, time_ns: int) -> AlertChange:
        """Record who is on it. Re-acknowledging hands the alert over to the new actor."""
        if not actor:
            raise ValueError("acknowledge needs an actor (who is on it)")
        a = self._require_open(alert_id)
        new = a.evolve(state="acknowledged", acked_by=actor, ack_note=note, updated_ns=time_ns)
        self._put(new)
        return AlertChange(new, "acknowledged", time_ns, actor, note)

    def resolve(self, alert_id: str, actor: str, note: str | None, time_ns: int) -> AlertChange:
        """Close an alert by hand, even if its condition is still on (a later raise opens a new one)."""
        if not actor:
            raise ValueError("resolve needs an actor")
        a = self._require_open(alert_id)
        new = a.evolve(state="resolved", resolved_ns=time_ns, resolved_by=actor, resolve_note=note,
                       updated_ns=time_ns)
        self._close(new)
        return AlertChange(new, "resolved", time_ns, actor, note)

    # -- restart -----------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """JSON-able state: open alerts (incl. pending recoveries) and the watermark, so a restart from it
        neither re-alerts open incidents nor forgets to resolve cleared ones."""
        return {
            "version": SNAPSHOT_VERSION,
            "resolve_after_s": self.resolve_after_s,
            "watermark_ns": self.watermark_ns,
            "open": [a.to_state() for a in self.open_alerts()],
            "last_start": [[r, s, t, q] for (r, s), (t, q) in sorted(self._last_start.items())],
        }

    @classmethod
    def restore(cls, data: dict[str, Any], resolve_after_s: float | None = None) -> AlertBook:
        """Rebuild a book from `snapshot()`; `resolve_after_s` overrides the saved one (config changed)."""
        if data.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unsupported alert snapshot version {data.get('version')!r}")
        book = cls(data["resolve_after_s"] if resolve_after_s is None else resolve_after_s)
        book.watermark_ns = data.get("watermark_ns")
        for state in data.get("open", []):
            a = Alert.from_state(state)
            book._put(a)
            if a.cleared_ns is not None:
                book._due.append((a.cleared_ns + book._resolve_after_ns, a.rule_id, a.subject, a.alert_id))
        heapq.heapify(book._due)
        for r, s, t, q in data.get("last_start", []):
            book._last_start[(r, s)] = (int(t), int(q))
        return book
