"""Rules over the API: engineers upload, validate, dry-run, activate and roll back; everyone may read."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request

from alerts.model import Alert
from sentinel.console.auth import Engineer, Viewer
from sentinel.console.context import Console, console
from sentinel.console.errors import AUTH, errs
from sentinel.console.models import (
    ActivateIn,
    ActivationOut,
    DryRunOut,
    RulesStateOut,
    RulesTextIn,
    RulesValidationOut,
    RuleVersionOut,
)
from sentinel.console.ops_db import Activation, RuleVersion
from sentinel.console.rules_manager import (
    ActiveRulesBroken,
    NothingToRollBack,
    RulesInvalid,
    RulesManager,
    rule_to_dict,
)
from sentinel.readings import iso

router = APIRouter(tags=["rules"])
Version = Annotated[int, Path(ge=1, le=2**62)]
COLD = ("Both rule sets start cold on the same readings (learned baselines empty, as after a restart without "
        "a state file), so the difference is the rules' alone; ewma/cusum/night_flow rules need their warm-up "
        "before they can fire.")


def _manager(con: Console) -> RulesManager:
    if con.rules is None:
        raise HTTPException(503, "rules are not managed by this console: start it with the processor's rules file "
                                 "(--rules-file) to change them here")
    return con.rules


def _version_out(rv: RuleVersion, active: int | None, text: bool = False) -> RuleVersionOut:
    return RuleVersionOut(version=rv.version, name=rv.name, comment=rv.comment, digest=rv.digest,
                          uploaded_by=rv.uploaded_by, uploaded_at=iso(rv.uploaded_ns), active=rv.version == active,
                          text=rv.text if text else None)


def _activation_out(a: Activation) -> ActivationOut:
    return ActivationOut(id=a.id, version=a.version, action=a.action, actor=a.actor, time=iso(a.time_ns),
                         comment=a.comment)


@router.get("/api/rules", response_model=RulesStateOut, responses=errs(*AUTH))
def rules_state(request: Request, p: Viewer) -> RulesStateOut:
    """The active rules (with their thresholds), and, when managed here, every version and activation."""
    con = console(request)
    rules = [rule_to_dict(r) for r in con.active_rules().rules]
    m = con.rules
    if m is None:
        return RulesStateOut(managed=False, managed_file=None, active_version=None, rollback_to=None, rules=rules,
                             versions=[], activations=[])
    stack = m.stack()
    active = stack[-1] if stack else None
    return RulesStateOut(managed=True, managed_file=str(m.active_path), active_version=active,
                         rollback_to=stack[-2] if len(stack) > 1 else None, rules=rules,
                         versions=[_version_out(v, active) for v in m.ops.rule_versions()],
                         activations=[_activation_out(a) for a in reversed(m.ops.activations())][:50])


@router.post("/api/rules/validate", response_model=RulesValidationOut,
             responses=errs(*AUTH, 503, body=True))
def validate(body: RulesTextIn, request: Request, p: Engineer) -> RulesValidationOut:
    """Check a rules file against the schema, the other rule files and the catalog; nothing is stored."""
    v = _manager(console(request)).validate(body.text, body.name)
    return RulesValidationOut(**v.summary())


@router.post("/api/rules/versions", status_code=201, response_model=RuleVersionOut,
             responses=errs(*AUTH, 503, body=True))
def upload(body: RulesTextIn, request: Request, p: Engineer) -> RuleVersionOut:
    """Store a validated rules file as a new version (not active until activated)."""
    con = console(request)
    m = _manager(con)
    rv = m.upload(body.text, body.name, body.comment, p.actor)
    con.ops.audit(p.actor, p.role, "rules.upload", f"rules:v{rv.version}",
                  {"name": rv.name, "digest": rv.digest[:16], "comment": rv.comment})
    return _version_out(rv, m.active_version())


@router.get("/api/rules/versions/{version}", response_model=RuleVersionOut, responses=errs(*AUTH, 404, 503))
def get_version(request: Request, version: Version, p: Viewer) -> RuleVersionOut:
    m = _manager(console(request))
    rv = m.ops.rule_version(version)
    if rv is None:
        raise HTTPException(404, f"no rules version {version}")
    return _version_out(rv, m.active_version(), text=True)


def _dry(a: Alert) -> dict:
    return {"rule_id": a.rule_id, "subject": a.subject, "network": a.network, "zone": a.zone,
            "severity": a.severity.label, "started": iso(a.started_ns),
            "resolved": iso(a.resolved_ns) if a.resolved_ns else None}


@router.post("/api/rules/versions/{version}/dry-run", response_model=DryRunOut,
             responses=errs(*AUTH, 404, 409, 503))
def dry_run(request: Request, version: Version, p: Engineer,
            hours: Annotated[float, Query(gt=0, le=24 * 31)] = 6.0) -> DryRunOut:
    """Replay the last `hours` of stored readings through this version and through the active rules, and
    show what each would have raised and the difference."""
    con = console(request)
    m = _manager(con)
    if m.ops.rule_version(version) is None:
        raise HTTPException(404, f"no rules version {version}")
    hours = min(hours, con.cfg.dry_run_max_hours)
    try:
        run = m.dry_run(version, hours, con.cfg.dry_run_max_readings)
    except ActiveRulesBroken as exc:
        raise HTTPException(409, str(exc)) from None
    except RulesInvalid:
        raise
    except ValueError as exc:  # too many readings
        raise HTTPException(422, str(exc)) from None
    return DryRunOut(version=version, start=iso(run.start_ns) if run.readings else None,
                     end=iso(run.end_ns) if run.readings else None, readings=run.readings,
                     active=[_dry(a) for a in run.active], candidate=[_dry(a) for a in run.candidate],
                     diff=run.diff(), note=COLD if run.readings else "no readings in the store yet")


@router.post("/api/rules/versions/{version}/activate", response_model=ActivationOut,
             responses=errs(*AUTH, 404, 503, body=True))
def activate(body: ActivateIn, request: Request, version: Version,
             p: Engineer) -> ActivationOut:
    """Make this version the processor's rules (written atomically; the processor reloads it within seconds)."""
    con = console(request)
    m = _manager(con)
    if m.ops.rule_version(version) is None:
        raise HTTPException(404, f"no rules version {version}")
    previous = m.active_version()
    a = m.activate(version, p.actor, body.comment)
    con.ops.audit(p.actor, p.role, "rules.activate", f"rules:v{version}",
                  {"previous": previous, "comment": body.comment, "file": str(m.active_path)})
    return _activation_out(a)


@router.post("/api/rules/rollback", response_model=ActivationOut,
             responses=errs(*AUTH, 409, 503, body=True))
def rollback(body: ActivateIn, request: Request, p: Engineer) -> ActivationOut:
    """Go back to the version active before the current one."""
    con = console(request)
    m = _manager(con)
    previous = m.active_version()
    try:
        a = m.rollback(p.actor, body.comment)
    except NothingToRollBack as exc:
        raise HTTPException(409, str(exc)) from None
    con.ops.audit(p.actor, p.role, "rules.rollback", f"rules:v{a.version}",
                  {"from": previous, "comment": body.comment, "file": str(m.active_path)})
    return _activation_out(a)
