"""Who is asking, and may they: bearer tokens (or the page's session cookie) mapped to roles.

Roles form a ladder: viewer (read), operator (+ acknowledge, resolve, notes, silences), engineer
(+ rules). The page authenticates with an HttpOnly cookie, so script on the page never holds the token;
because browsers send cookies on cross-site requests too, a cookie only counts for a change when the
request also carries the `X-Sentinel-Console` header, which a cross-site form cannot add (CSRF guard).
Tokens are never logged: they are read from headers here and only their hash reaches the database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sentinel.console.context import console
from sentinel.console.ops_db import ROLES, role_allows

SESSION_COOKIE = "sentinel_session"
CSRF_HEADER = "x-sentinel-console"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CAN = {"viewer": ["read"], "operator": ["acknowledge", "resolve", "note", "silence"], "engineer": ["rules"]}

bearer = HTTPBearer(auto_error=False, description="a token from POST /api/auth/login or POST /api/tokens")


@dataclass(frozen=True)
class Principal:
    username: str
    role: str
    token_id: str
    kind: str
    name: str

    @property
    def actor(self) -> str:
        """How actions are attributed: the person, or person/token-name for a machine token."""
        return self.username if self.kind == "session" else f"{self.username}/{self.name}"

    @property
    def can(self) -> list[str]:
        return [c for r in ROLES[: ROLES.index(self.role) + 1] for c in CAN[r]]


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def principal(request: Request,
              creds: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]) -> Principal:
    token = None
    if creds is not None:
        token = creds.credentials
    elif (cookie := request.cookies.get(SESSION_COOKIE)) is not None:
        if request.method not in SAFE_METHODS and request.headers.get(CSRF_HEADER) != "1":
            raise HTTPException(403, f"a change made with the session cookie needs the {CSRF_HEADER} header")
        token = cookie
    if not token:
        raise unauthorized("log in (POST /api/auth/login) or send Authorization: Bearer <token>")
    info = console(request).ops.resolve_token(token)
    if info is None:
        raise unauthorized("token unknown, expired or revoked: log in again")
    return Principal(info.username, info.role, info.id, info.kind, info.name)


def require(role: str) -> Callable[[Principal], Principal]:
    """A dependency that lets through `role` and the roles above it."""

    def dep(p: Annotated[Principal, Depends(principal)]) -> Principal:
        if not role_allows(p.role, role):
            raise HTTPException(403, f"needs role {role} (you are {p.role})")
        return p

    dep.__name__ = f"require_{role}"
    return dep


Viewer = Annotated[Principal, Depends(require("viewer"))]
Operator = Annotated[Principal, Depends(require("operator"))]
Engineer = Annotated[Principal, Depends(require("engineer"))]
