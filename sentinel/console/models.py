"""The API's request and response shapes: they make the OpenAPI spec exact, which the contract tests hold
the server to. Times travel twice: `*_ns` (exact, what the store keeps) and ISO-8601 UTC (for people)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from alerts.model import Alert, AlertChange
from alerts.routing.silences import Silence
from sentinel.readings import iso

Role = Literal["viewer", "operator", "engineer"]
Grade = Literal["yellow", "orange", "red"]
NetworkName = Literal["water", "heat", "gas"]
LABEL = r"^[A-Za-z0-9_.:\-]+$"


class ErrorOut(BaseModel):
    detail: str


class LocatedError(BaseModel):
    file: str | None
    line: int | None
    field: str | None
    message: str


class InvalidOut(BaseModel):
    detail: str
    errors: list[LocatedError] = []


# -- access -------------------------------------------------------------------------------------------

class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class IssuedTokenOut(BaseModel):
    token: str = Field(description="the secret; shown this once, never again")
    token_id: str
    username: str
    role: Role
    kind: Literal["session", "api"]
    name: str
    expires_ns: int
    expires_at: str


class MeOut(BaseModel):
    username: str
    role: Role
    actor: str = Field(description="the name your actions are recorded under")
    token_id: str
    token_kind: Literal["session", "api"]
    can: list[str]


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=64, pattern=LABEL)
    role: Role | None = Field(default=None, description="at most your own role; default: your role")
    ttl_days: float | None = Field(default=None, gt=0, le=366)


class TokenOut(BaseModel):
    id: str
    username: str
    role: Role
    kind: Literal["session", "api"]
    name: str
    created_at: str
    expires_at: str
    last_used_at: str | None


class AuditOut(BaseModel):
    id: int
    time_ns: int
    time: str
    actor: str
    role: str
    action: str
    target: str
    detail: dict[str, Any]


class AuditListOut(BaseModel):
    entries: list[AuditOut]


# -- alerts -------------------------------------------------------------------------------------------

class SilenceOut(BaseModel):
    id: str
    matchers: dict[str, str]
    starts_ns: int
    ends_ns: int
    starts_at: str
    ends_at: str
    created_by: str
    comment: str
    status: Literal["active", "pending", "expired"]
    expired_by: str | None = None


class AlertOut(BaseModel):
    alert_id: str
    rule_id: str
    kind: str
    network: str
    zone: str
    subject: str
    sensor_id: str | None
    severity: Grade = Field(description="the worst grade while open")
    current_severity: Grade | None = Field(description="the grade now; null while the condition is clear")
    grade_zh: str
    state: Literal["firing", "acknowledged", "resolved"]
    started_ns: int
    updated_ns: int
    cleared_ns: int | None
    resolved_ns: int | None
    started: str
    updated: str
    cleared: str | None
    resolved: str | None
    acked_by: str | None
    ack_note: str | None
    resolved_by: str | None
    resolve_note: str | None
    value: float | None
    message: str
    silenced_by: str | None = Field(default=None, description="id of an active silence muting it")


class AlertListOut(BaseModel):
    alerts: list[AlertOut]
    counts: dict[str, int] = Field(description="alerts listed per grade")


class ChangeOut(BaseModel):
    change: str
    time_ns: int
    time: str
    actor: str | None
    note: str | None
    severity: Grade
    current_severity: Grade | None
    state: str


class StreamChangeOut(ChangeOut):
    alert: AlertOut


class NoteOut(BaseModel):
    id: int
    alert_id: str
    time_ns: int
    time: str
    author: str
    text: str


class RuleOut(BaseModel):
    id: str
    kind: str
    description: str
    enabled: bool
    severity: Grade
    for_s: float
    select: dict[str, list[str]]
    params: dict[str, Any] = Field(description="the kind's parameters: limits per grade, windows, ...")
    subjects: int | None = None


class AlertDetailOut(BaseModel):
    alert: AlertOut
    history: list[ChangeOut]
    notes: list[NoteOut]
    rule: RuleOut | None = Field(description="the rule as active now (null if it no longer exists)")
    sensors: list[str] = Field(description="sensors worth charting for this alert")
    silence: SilenceOut | None


class AckIn(BaseModel):
    note: str | None = Field(default=None, max_length=2000, description="why / what is being done")


class ResolveIn(BaseModel):
    note: str = Field(min_length=1, max_length=2000, description="why it can be closed")


class NoteIn(BaseModel):
    text: str = Field(min_length=1, max_length=2000)


class SilenceIn(BaseModel):
    """Mute alerts matching every given label, from `starts_at` (default now) to `ends_at` or for
    `duration_minutes`. At least one matcher; `comment` says why (a maintenance window, a work order)."""

    network: NetworkName | None = None
    zone: str | None = Field(default=None, min_length=1, max_length=128, pattern=LABEL)
    sensor_id: str | None = Field(default=None, min_length=1, max_length=128, pattern=LABEL)
    subject: str | None = Field(default=None, min_length=1, max_length=128, pattern=LABEL)
    rule: str | None = Field(default=None, min_length=1, max_length=96, pattern=LABEL)
    starts_at: str | None = Field(default=None, max_length=40, description="ISO-8601 or epoch; default now")
    ends_at: str | None = Field(default=None, max_length=40)
    duration_minutes: float | None = Field(default=None, ge=1, le=30 * 24 * 60)
    comment: str = Field(min_length=1, max_length=1000)


class SilenceListOut(BaseModel):
    silences: list[SilenceOut]


# -- catalog ------------------------------------------------------------------------------------------

class SensorOut(BaseModel):
    sensor_id: str
    network: str
    zone: str
    quantity: str
    unit: str
    canonical_unit: str
    role: str
    interval_s: float
    lat: float | None
    lon: float | None
    tags: list[str]


class ZoneOut(BaseModel):
    key: str
    network: str
    zone: str
    sensors: int
    lat: float | None
    lon: float | None
    worst: Grade | None = Field(description="grade of the worst open alert")
    open: dict[str, int]
    silenced: bool


class ReadingsOut(BaseModel):
    sensor_id: str
    quantity: str
    unit: str
    start_ns: int
    end_ns: int
    time_ns: list[int]
    value: list[float | None]
    downsampled: bool


# -- rules --------------------------------------------------------------------------------------------

class RulesTextIn(BaseModel):
    text: str = Field(max_length=1_000_000, description="a rules file (YAML)")
    name: str = Field(default="rules.yaml", min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.\-]+$")
    comment: str = Field(default="", max_length=1000)


class RulesValidationOut(BaseModel):
    valid: bool
    rules: list[RuleOut]
    unmatched: list[str] = Field(description="enabled rules that select nothing in this catalog")


class RuleVersionOut(BaseModel):
    version: int
    name: str
    comment: str
    digest: str
    uploaded_by: str
    uploaded_at: str
    active: bool
    text: str | None = None


class ActivationOut(BaseModel):
    id: int
    version: int
    action: str
    actor: str
    time: str
    comment: str


class ActivateIn(BaseModel):
    comment: str = Field(default="", max_length=1000)


class RulesStateOut(BaseModel):
    managed: bool = Field(description="whether rules can be changed here")
    managed_file: str | None
    active_version: int | None
    rollback_to: int | None
    rules: list[RuleOut]
    versions: list[RuleVersionOut]
    activations: list[ActivationOut]


class DryAlertOut(BaseModel):
    rule_id: str
    subject: str
    network: str
    zone: str
    severity: Grade
    started: str
    resolved: str | None


class DiffSide(BaseModel):
    count: int
    severity: Grade | None
    first_start: str | None


class DiffRow(BaseModel):
    rule_id: str
    subject: str
    active: DiffSide
    candidate: DiffSide


class DiffOut(BaseModel):
    added: list[DiffRow]
    removed: list[DiffRow]
    changed: list[DiffRow]


class DryRunOut(BaseModel):
    version: int
    start: str | None
    end: str | None
    readings: int
    active: list[DryAlertOut]
    candidate: list[DryAlertOut]
    diff: DiffOut
    note: str


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    store: str
    actions: bool
    rules_managed: bool


# -- conversions --------------------------------------------------------------------------------------

def _iso(ns: int | None) -> str | None:
    return iso(ns) if ns is not None else None


def alert_out(a: Alert, silence: Silence | None = None) -> dict[str, Any]:
    d = a.to_dict()
    d["silenced_by"] = silence.id if silence else None
    return d


def change_out(c: AlertChange) -> dict[str, Any]:
    return {"change": c.change, "time_ns": c.time_ns, "time": iso(c.time_ns), "actor": c.actor, "note": c.note,
            "severity": c.alert.severity.label, "state": c.alert.state,
            "current_severity": c.alert.current_severity.label if c.alert.current_severity else None}


def silence_out(s: Silence, status: str, expired_by: str | None = None) -> dict[str, Any]:
    return {**s.to_state(), "starts_at": iso(s.starts_ns), "ends_at": iso(s.ends_ns), "status": status,
            "expired_by": expired_by}
