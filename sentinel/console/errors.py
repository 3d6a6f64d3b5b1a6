"""Documented error responses, so the OpenAPI spec lists every status a route can answer with.

Every 422 has one shape, `{detail, errors: [{file, line, field, message}]}`: a request the schema rejects,
a time that is not a time, a zone the catalog does not know, or a rules file with errors.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from sentinel.console.models import ErrorOut, InvalidOut

WHY = {
    400: "the body is not JSON",
    401: "no token, or one unknown, expired or revoked",
    403: "the token's role may not do this",
    404: "no such thing",
    409: "conflicts with the current state (e.g. the alert is already resolved)",
    503: "the store or the processor is not available to this console",
}
AUTH = (401, 403)


def errs(*codes: int, body: bool = False) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {c: {"model": ErrorOut, "description": WHY[c]} for c in codes}
    if body:
        out[400] = {"model": ErrorOut, "description": WHY[400]}
    out[422] = {"model": InvalidOut, "description": "not valid; `errors` says where (for rules: file, line, field)"}
    return out


async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's own 422, in the console's shape. The offending input is not echoed (it may be a password)."""
    errors = [{"file": None, "line": None, "field": ".".join(str(p) for p in e.get("loc", ())) or None,
               "message": str(e.get("msg", "invalid"))} for e in exc.errors()]
    detail = "; ".join(f"{x['field']}: {x['message']}" for x in errors[:5]) or "invalid request"
    return JSONResponse({"detail": detail, "errors": errors}, status_code=422)
