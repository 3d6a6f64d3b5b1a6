"""HTTP hygiene for the console: strict query strings, honest 405s, and security headers.

The spec is the reference: a query parameter it does not list for the operation, or one given twice, is
refused with 422 (a typo such as `?zones=` would otherwise silently show everything), and a 405 names
every method the spec lists for the path (Starlette's names only the first route's).
"""

from __future__ import annotations

import re

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def _error(field: str, message: str) -> dict[str, str | None]:
    return {"file": None, "line": None, "field": field, "message": message}


def install_http_hygiene(app: FastAPI) -> None:
    routes: list[tuple[re.Pattern[str], dict[str, set[str]]]] = []  # path pattern -> method -> query names

    def spec_of(path: str) -> dict[str, set[str]] | None:
        """The methods the spec lists for `path`, each with the query parameters it takes."""
        if not routes:
            for p, item in app.openapi()["paths"].items():
                parts = ("[^/]+" if part.startswith("{") else re.escape(part) for part in p.split("/"))
                query = {m.upper(): {q["name"] for q in op.get("parameters", []) if q["in"] == "query"}
                         for m, op in item.items()}
                routes.append((re.compile("^" + "/".join(parts) + "$"), query))
        return next((q for rx, q in routes if rx.match(path)), None)

    def bad_query(request: Request) -> JSONResponse | None:
        keys = [k for k, _ in request.query_params.multi_items()]
        known = (spec_of(request.scope["path"]) or {}).get(request.method)
        twice = sorted({k for k in keys if keys.count(k) > 1})
        unknown = sorted(set(keys) - known) if known is not None else []
        if not twice and not unknown:
            return None
        listed = ", ".join(sorted(known or ())) or "none"
        errors = ([_error(f"query.{k}", "given more than once") for k in twice]
                  + [_error(f"query.{k}", f"unknown parameter (this operation takes: {listed})") for k in unknown])
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return JSONResponse({"detail": detail, "errors": errors}, status_code=422)

    @app.middleware("http")
    async def _hygiene(request: Request, call_next):  # type: ignore[no-untyped-def]
        if request.url.path.startswith("/api/") and (refused := bad_query(request)) is not None:
            return refused
        response = await call_next(request)
        if response.status_code == 405 and (methods := spec_of(request.scope["path"])):
            response.headers["Allow"] = ", ".join(sorted(methods))
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if not request.url.path.startswith("/api/"):
            response.headers.setdefault("Content-Security-Policy", CSP)
        return response
