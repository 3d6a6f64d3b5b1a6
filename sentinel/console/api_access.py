"""Login, logout, tokens for machines, and the audit trail."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response

from sentinel.console.auth import SESSION_COOKIE, Viewer
from sentinel.console.context import console
from sentinel.console.errors import AUTH, errs
from sentinel.console.models import AuditListOut, IssuedTokenOut, LoginIn, MeOut, TokenIn, TokenOut
from sentinel.console.ops_db import TokenInfo, role_allows
from sentinel.readings import iso

log = logging.getLogger(__name__)
router = APIRouter(tags=["access"])


def _issued(plain: str, info: TokenInfo) -> IssuedTokenOut:
    return IssuedTokenOut(token=plain, token_id=info.id, username=info.username, role=info.role, kind=info.kind,
                          name=info.name, expires_ns=info.expires_ns, expires_at=iso(info.expires_ns))


def _token_out(t: TokenInfo) -> TokenOut:
    return TokenOut(id=t.id, username=t.username, role=t.role, kind=t.kind, name=t.name, created_at=iso(t.created_ns),
                    expires_at=iso(t.expires_ns), last_used_at=iso(t.last_used_ns) if t.last_used_ns else None)


@router.post("/api/auth/login", response_model=IssuedTokenOut, responses=errs(401, body=True))
def login(body: LoginIn, request: Request, response: Response) -> IssuedTokenOut:
    """Exchange username and password for a session token (also set as an HttpOnly cookie for the page)."""
    con = console(request)
    user = con.ops.authenticate(body.username, body.password)
    client = request.client.host if request.client else "?"
    if user is None:
        # name the account only if it exists: people type passwords into the user field
        known = con.ops.user(body.username) is not None
        who = body.username if known else "(unknown user)"
        con.ops.audit(who, "-", "auth.login_failed", f"user:{who}", {"client": client})
        log.warning("console: failed login for %s from %s", who, client)
        raise HTTPException(401, "wrong username or password, or the account is disabled",
                            headers={"WWW-Authenticate": "Bearer"})
    plain, info = con.ops.issue_token(user.username, user.role, "session", "login", con.cfg.session_ttl_s)
    con.ops.audit(user.username, user.role, "auth.login", f"token:{info.id}", {"client": client})
    response.set_cookie(SESSION_COOKIE, plain, max_age=int(con.cfg.session_ttl_s), httponly=True, samesite="strict",
                        secure=con.cfg.cookie_secure, path="/")
    return _issued(plain, info)


@router.post("/api/auth/logout", status_code=204, responses=errs(*AUTH))
def logout(request: Request, response: Response, p: Viewer) -> Response:
    """End this login session (its token stops working). Machine tokens are revoked with DELETE /api/tokens/{id}."""
    con = console(request)
    if p.kind == "session" and con.ops.revoke_token(p.token_id):
        con.ops.audit(p.actor, p.role, "auth.logout", f"token:{p.token_id}", {})
    out = Response(status_code=204)
    out.delete_cookie(SESSION_COOKIE, path="/")
    return out


@router.get("/api/me", response_model=MeOut, responses=errs(*AUTH))
def me(p: Viewer) -> MeOut:
    return MeOut(username=p.username, role=p.role, actor=p.actor, token_id=p.token_id, token_kind=p.kind, can=p.can)


@router.get("/api/tokens", response_model=list[TokenOut], responses=errs(*AUTH))
def list_tokens(request: Request, p: Viewer) -> list[TokenOut]:
    """Your live tokens (sessions and machine tokens); never the secrets."""
    return [_token_out(t) for t in console(request).ops.tokens(p.username)]


@router.post("/api/tokens", status_code=201, response_model=IssuedTokenOut, responses=errs(*AUTH, body=True))
def create_token(body: TokenIn, request: Request, p: Viewer) -> IssuedTokenOut:
    """A token for a machine (a wallboard, a script), with at most your role. The secret is shown once."""
    con = console(request)
    role = body.role or p.role
    if not role_allows(p.role, role):
        raise HTTPException(403, f"a token can have at most your role ({p.role})")
    ttl = min(body.ttl_days * 86400.0 if body.ttl_days else con.cfg.api_token_ttl_s, con.cfg.api_token_max_ttl_s)
    try:
        plain, info = con.ops.issue_token(p.username, role, "api", body.name, ttl)
    except (KeyError, PermissionError) as exc:
        raise HTTPException(403, str(exc)) from None
    con.ops.audit(p.actor, p.role, "token.create", f"token:{info.id}",
                  {"name": info.name, "role": info.role, "expires": iso(info.expires_ns)})
    return _issued(plain, info)


@router.delete("/api/tokens/{token_id}", status_code=204, responses=errs(*AUTH, 404))
def revoke_token(token_id: str, request: Request, p: Viewer) -> Response:
    """Revoke one of your tokens."""
    con = console(request)
    t = con.ops.token(token_id)
    if t is None or t.username != p.username or t.revoked_ns is not None:
        raise HTTPException(404, f"you have no live token {token_id!r}")
    con.ops.revoke_token(token_id)
    con.ops.audit(p.actor, p.role, "token.revoke", f"token:{token_id}", {"name": t.name})
    return Response(status_code=204)


@router.get("/api/audit", response_model=AuditListOut, responses=errs(*AUTH))
def audit(request: Request, p: Viewer, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
          before_id: Annotated[int | None, Query(ge=0, le=2**62, description="entries older than this id")] = None,
          actor: Annotated[str | None, Query(max_length=200)] = None,
          action: Annotated[str | None, Query(max_length=100)] = None,
          target: Annotated[str | None, Query(max_length=300)] = None) -> AuditListOut:
    """Every change, newest first: who (and in which role), what, on what, and the details."""
    entries = console(request).ops.audit_entries(limit=limit, before_id=before_id, actor=actor, action=action,
                                                 target=target)
    return AuditListOut(entries=[{**e.__dict__, "time": iso(e.time_ns)} for e in entries])
