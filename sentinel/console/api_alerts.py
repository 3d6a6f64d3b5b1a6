"""Alerts (list, detail, acknowledge, resolve, notes) and silences: what operators look at and do."""

from __future__ import annotations

import time
from collections import Counter
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request

from alerts.lifecycle import AlertError
from alerts.model import Alert
from sentinel.catalog import Catalog
from sentinel.console.auth import Operator, Principal, Viewer
from sentinel.console.context import Console, console
from sentinel.console.errors import AUTH, errs
from sentinel.console.models import (
    LABEL,
    AckIn,
    AlertDetailOut,
    AlertListOut,
    AlertOut,
    Grade,
    NetworkName,
    NoteIn,
    NoteOut,
    ResolveIn,
    SilenceIn,
    SilenceListOut,
    SilenceOut,
    alert_out,
    change_out,
    silence_out,
)
from sentinel.console.params import when
from sentinel.console.rules_manager import rule_to_dict
from sentinel.readings import iso

router = APIRouter(tags=["alerts"])
AlertId = Annotated[str, Path(min_length=1, max_length=64, description="the alert's id (16 hex digits)")]
SilenceId = Annotated[str, Path(max_length=64, pattern=LABEL)]
MAX_SILENCE_NS = 30 * 86400 * 10**9
BOUNDARY_ROLES = ("inlet", "outlet", "makeup", "supply", "return")


def involved_sensors(a: Alert, catalog: Catalog, limit: int = 6) -> list[str]:
    """The alert's own sensor, or for a zone alert the zone's boundary meters (what its rule sums)."""
    if a.sensor_id:
        return [a.sensor_id] if a.sensor_id in catalog.index else []
    zone = [s for s in catalog.sensors if s.network == a.network and s.zone == a.zone]
    boundary = [s for s in zone if s.role in BOUNDARY_ROLES and s.quantity == "flow"]
    return [s.sensor_id for s in (boundary or zone)][:limit]


def _alert_or_404(con: Console, alert_id: str) -> Alert:
    a = con.reader.alert(alert_id)
    if a is None:
        raise HTTPException(404, f"no alert {alert_id!r}")
    return a


@router.get("/api/alerts", response_model=AlertListOut, responses=errs(*AUTH, 503))
def list_alerts(request: Request, p: Viewer,
                state: Literal["open", "firing", "acknowledged", "resolved", "all"] = "open",
                network: NetworkName | None = None, zone: Annotated[str | None, Query(max_length=128)] = None,
                severity: Annotated[Grade | None, Query(description="peak grade")] = None,
                rule_id: Annotated[str | None, Query(max_length=96)] = None,
                limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> AlertListOut:
    """Alerts newest first; `open` (the default) is what is still firing or acknowledged."""
    con = console(request)
    now = time.time_ns()
    alerts = con.reader.alerts(state=state, network=network, zone=zone, severity=severity, rule_id=rule_id,
                               limit=limit)
    out = [alert_out(a, con.silences.muting(a, now) if a.is_open else None) for a in alerts]
    return AlertListOut(alerts=out, counts=dict(Counter(a.severity.label for a in alerts)))


@router.get("/api/alerts/{alert_id}", response_model=AlertDetailOut, responses=errs(*AUTH, 404, 503))
def get_alert(request: Request, alert_id: AlertId, p: Viewer) -> AlertDetailOut:
    """One alert with its history, notes, the rule that raised it and the sensors to chart."""
    con = console(request)
    a = _alert_or_404(con, alert_id)
    rule = next((r for r in con.active_rules().rules if r.id == a.rule_id), None)
    now = time.time_ns()
    silence = con.silences.muting(a, now) if a.is_open else None
    return AlertDetailOut(
        alert=alert_out(a, silence), history=[change_out(c) for c in con.reader.history(alert_id)],
        notes=[{**n.__dict__, "time": iso(n.time_ns)} for n in con.ops.notes(alert_id)],
        rule=rule_to_dict(rule) if rule else None, sensors=involved_sensors(a, con.catalog),
        silence=silence_out(silence, "active") if silence else None)


def _act(con: Console, p: Principal, alert_id: str, action: str, note: str | None) -> AlertOut:
    fn = con.actions.acknowledge if action == "acknowledge" else con.actions.resolve
    try:
        change = fn(alert_id, p.actor, note)
    except AlertError as exc:
        known = con.reader.alert(alert_id)
        raise HTTPException(409 if known else 404, str(exc)) from None
    a = change.alert
    con.ops.audit(p.actor, p.role, f"alert.{action}", f"alert:{alert_id}",
                  {"note": note, "rule": a.rule_id, "subject": a.subject, "zone": f"{a.network}/{a.zone}",
                   "severity": a.severity.label})
    return AlertOut(**alert_out(a, con.silences.muting(a, time.time_ns()) if a.is_open else None))


ACT_ERRS = errs(*AUTH, 404, 409, 503, body=True)


@router.post("/api/alerts/{alert_id}/acknowledge", response_model=AlertOut, responses=ACT_ERRS)
def acknowledge(body: AckIn, request: Request, alert_id: AlertId, p: Operator) -> AlertOut:
    """Say someone is on it (who and why are recorded; notifications stop repeating)."""
    return _act(console(request), p, alert_id, "acknowledge", body.note)


@router.post("/api/alerts/{alert_id}/resolve", response_model=AlertOut, responses=ACT_ERRS)
def resolve(body: ResolveIn, request: Request, alert_id: AlertId, p: Operator) -> AlertOut:
    """Close it by hand, with the reason (if the condition comes back, a new alert opens)."""
    return _act(console(request), p, alert_id, "resolve", body.note)


@router.post("/api/alerts/{alert_id}/notes", status_code=201, response_model=NoteOut,
             responses=errs(*AUTH, 404, 503, body=True))
def add_note(body: NoteIn, request: Request, alert_id: AlertId, p: Operator) -> NoteOut:
    """A note on an alert (open or closed): what was seen, who was called."""
    con = console(request)
    _alert_or_404(con, alert_id)
    n = con.ops.add_note(alert_id, p.actor, body.text)
    con.ops.audit(p.actor, p.role, "alert.note", f"alert:{alert_id}", {"note": body.text})
    return NoteOut(**n.__dict__, time=iso(n.time_ns))


# -- silences -------------------------------------------------------------------------------------------

@router.get("/api/silences", response_model=SilenceListOut, responses=errs(*AUTH))
def list_silences(request: Request, p: Viewer,
                  state: Literal["current", "active", "pending", "expired", "all"] = "current") -> SilenceListOut:
    """`current` = active or yet to start."""
    views = console(request).silences.views(time.time_ns(), state)
    return SilenceListOut(silences=[silence_out(v.silence, v.status, v.expired_by) for v in views])


@router.post("/api/silences", status_code=201, response_model=SilenceOut, responses=errs(*AUTH, body=True))
def add_silence(body: SilenceIn, request: Request, p: Operator) -> SilenceOut:
    """Mute notifications for a zone, a sensor (or a rule, a subject) during a maintenance window. Alerts
    still open and show on the board, marked muted."""
    con = console(request)
    now = time.time_ns()
    start = when(body.starts_at, "starts_at") or now
    end = when(body.ends_at, "ends_at")
    if end is None:
        if body.duration_minutes is None:
            raise HTTPException(422, "give ends_at or duration_minutes")
        end = start + int(body.duration_minutes * 60e9)
    if end <= max(start, now):
        raise HTTPException(422, "the silence must end in the future and after it starts")
    if end - start > MAX_SILENCE_NS:
        raise HTTPException(422, "a silence lasts at most 30 days; make a new one after")
    matchers = {k: v for k in ("network", "zone", "sensor_id", "subject", "rule") if (v := getattr(body, k))}
    try:
        s = con.silences.add(matchers, start, end, p.actor, body.comment)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    con.ops.audit(p.actor, p.role, "silence.add", f"silence:{s.id}",
                  {"matchers": matchers, "starts": iso(start), "ends": iso(end), "comment": body.comment})
    return SilenceOut(**silence_out(s, "active" if s.is_active(now) else "pending"))


@router.get("/api/silences/{silence_id}", response_model=SilenceOut, responses=errs(*AUTH, 404))
def get_silence(request: Request, silence_id: SilenceId,
                p: Viewer) -> SilenceOut:
    v = console(request).silences.get(silence_id, time.time_ns())
    if v is None:
        raise HTTPException(404, f"no silence {silence_id!r}")
    return SilenceOut(**silence_out(v.silence, v.status, v.expired_by))


@router.delete("/api/silences/{silence_id}", response_model=SilenceOut, responses=errs(*AUTH, 404, 409))
def expire_silence(request: Request, silence_id: SilenceId,
                   p: Operator) -> SilenceOut:
    """End a silence now. It is kept, with who ended it, for the record."""
    con = console(request)
    now = time.time_ns()
    v = con.silences.get(silence_id, now)
    if v is None:
        raise HTTPException(404, f"no silence {silence_id!r}")
    if v.status == "expired":
        raise HTTPException(409, f"silence {silence_id} has already ended")
    s = con.silences.expire(silence_id, p.actor, now)
    con.ops.audit(p.actor, p.role, "silence.expire", f"silence:{s.id}", {"matchers": dict(s.matchers)})
    return SilenceOut(**silence_out(s, "expired", p.actor))
