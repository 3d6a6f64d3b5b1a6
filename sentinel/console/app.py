"""The operator console as an ASGI app: the page (plain HTML/JS/CSS, no build) and its REST + SSE API.

It reads the processor's store through read-only connections and changes alerts only through
`AlertActions` (the processor's own thread), so it runs equally inside `sentinel run` or alone beside a
store that other processes write (then acknowledge/resolve answer 503 and say why).
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from alerts.routing.silences import SilenceBook
from sentinel.catalog import Catalog
from sentinel.console import api_access, api_alerts, api_catalog, api_rules, stream
from sentinel.console.actions import ActionsUnavailable, AlertActions, NoActions
from sentinel.console.config import ConsoleConfig
from sentinel.console.context import Console, console
from sentinel.console.errors import validation_error
from sentinel.console.hygiene import install_http_hygiene
from sentinel.console.models import HealthOut
from sentinel.console.ops_db import OpsDB
from sentinel.console.rules_manager import RulesInvalid, RulesManager
from sentinel.console.silences import SilenceService
from sentinel.console.store_reader import StoreReader, StoreUnavailable

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
DESCRIPTION = """Lifeline Sentinel 管网哨兵 operator console API.

Authenticate with `POST /api/auth/login` (session token, also set as a cookie for the page) or a machine
token from `POST /api/tokens`, sent as `Authorization: Bearer <token>`. Roles: **viewer** reads;
**operator** also acknowledges, resolves, adds notes and silences; **engineer** also changes rules. Every
change is recorded in the audit trail (`GET /api/audit`) under the actor's name.
"""


def create_app(cfg: ConsoleConfig, *, store_path: str | Path, catalog: Catalog, actions: AlertActions | None = None,
               rules: RulesManager | None = None, silences: SilenceBook | None = None) -> FastAPI:
    """`actions`: how acknowledge/resolve reach the processor (PipelineActions), None for a read-only console;
    `rules`: lets engineers change the processor's rules file; `silences`: the book the router consults."""
    ops = rules.ops if rules is not None and rules.ops.path == Path(cfg.ops_db) else OpsDB(cfg.ops_db)
    con = Console(cfg=cfg, ops=ops, reader=StoreReader(store_path, catalog), catalog=catalog,
                  actions=actions if actions is not None else NoActions(), rules=rules,
                  silences=SilenceService(ops, silences, catalog))
    app = FastAPI(title="Lifeline Sentinel console 管网哨兵", version="1.0", description=DESCRIPTION,
                  openapi_url="/api/openapi.json", docs_url=None, redoc_url=None)
    app.state.console = con
    for r in (api_access.router, api_alerts.router, api_catalog.router, api_rules.router, stream.router):
        app.include_router(r)

    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]

    @app.exception_handler(StoreUnavailable)
    async def _store(_: Request, exc: StoreUnavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(ActionsUnavailable)
    async def _actions(_: Request, exc: ActionsUnavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(RulesInvalid)
    async def _rules(_: Request, exc: RulesInvalid) -> JSONResponse:
        return JSONResponse({"detail": f"{len(exc.errors)} error(s) in the rules", "errors": exc.located()},
                            status_code=422)

    install_http_hygiene(app)

    @app.get("/api/health", response_model=HealthOut, tags=["health"])
    def health(request: Request) -> HealthOut:
        """Liveness for a load balancer; no login needed, nothing confidential."""
        c = console(request)
        try:
            c.reader.last_change_rowid()
            store = "ok"
        except StoreUnavailable as exc:  # the reason (a path) is for the log, not for anonymous callers
            log.warning("console health: %s", exc)
            store = "unavailable"
        return HealthOut(status="ok" if store == "ok" else "degraded", store=store,
                         actions=not isinstance(c.actions, NoActions), rules_managed=c.rules is not None)

    @app.get("/", include_in_schema=False)
    def index() -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


__all__ = ["Console", "create_app"]
