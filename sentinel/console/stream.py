"""Server-sent events: alert changes as they land in the store, and audit entries, pushed to the board.

The store is the source of truth for every console process (the processor may be elsewhere), so the
stream polls it by rowid rather than hooking the pipeline: a console beside Faust workers sees what a
console inside the processor sees. Event ids are `<change rowid>.<audit id>`, so a reconnecting
EventSource resumes exactly where it left off (Last-Event-ID). Heartbeats keep proxies from closing an
idle stream, tell the page the link is alive, and re-check the token (a revoked token's stream ends).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse

from sentinel.console.auth import Principal, Viewer
from sentinel.console.context import Console, console
from sentinel.console.errors import AUTH, errs
from sentinel.console.models import alert_out, change_out
from sentinel.console.store_reader import StoreUnavailable
from sentinel.readings import iso

router = APIRouter(tags=["stream"])
BATCH = 200


def sse(event: str, data: Any, event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"


def _parse_last_id(value: str | None) -> tuple[int, int] | None:
    try:
        a, b = (value or "").split(".")
        return max(0, int(a)), max(0, int(b))
    except ValueError:
        return None


def _store_cursor(con: Console) -> int:
    try:
        return con.reader.last_change_rowid()
    except StoreUnavailable:
        return 0


def _token_alive(con: Console, token_id: str) -> bool:
    t = con.ops.token(token_id)
    return t is not None and t.revoked_ns is None and t.expires_ns > time.time_ns()


async def _events(con: Console, p: Principal, change_id: int, audit_id: int) -> AsyncIterator[str]:
    yield "retry: 2000\n\n"
    yield sse("hello", {"user": p.username, "role": p.role, "time": iso(time.time_ns())}, f"{change_id}.{audit_id}")
    last_beat = time.monotonic()
    while True:
        try:
            rows = await to_thread.run_sync(con.reader.changes_after, change_id, BATCH)
            store_ok = True
        except StoreUnavailable:
            rows, store_ok = [], False
        now = time.time_ns()
        for rowid, ch in rows:
            change_id = rowid
            muted = con.silences.muting(ch.alert, now) if ch.alert.is_open else None
            yield sse("change", {**change_out(ch), "alert": alert_out(ch.alert, muted)}, f"{change_id}.{audit_id}")
        entries = await to_thread.run_sync(partial(con.ops.audit_entries, after_id=audit_id, limit=BATCH))
        for e in entries:
            audit_id = e.id
            yield sse("audit", {**e.__dict__, "time": iso(e.time_ns)}, f"{change_id}.{audit_id}")
        if time.monotonic() - last_beat >= con.cfg.heartbeat_s:
            last_beat = time.monotonic()
            if not await to_thread.run_sync(_token_alive, con, p.token_id):
                yield sse("bye", {"reason": "token expired or revoked"})
                return
            yield sse("heartbeat", {"time": iso(now), "store": store_ok}, f"{change_id}.{audit_id}")
        if len(rows) < BATCH and len(entries) < BATCH:
            await asyncio.sleep(con.cfg.stream_poll_s)


@router.get("/api/stream", response_class=StreamingResponse, responses={
    200: {"content": {"text/event-stream": {}}, "description": "events `hello`, `change` (an alert change with the "
          "alert), `audit` (an audit entry), `heartbeat`, `bye`; ids resume via Last-Event-ID"},
    **errs(*AUTH)})
async def stream(request: Request, p: Viewer,
                 last_event_id: Annotated[str | None, Header(max_length=64)] = None) -> StreamingResponse:
    """Live alert changes and audit entries (text/event-stream). The page authenticates with its cookie."""
    con = console(request)
    resume = _parse_last_id(last_event_id)
    if resume is None:
        resume = (await to_thread.run_sync(_store_cursor, con), await to_thread.run_sync(con.ops.last_audit_id))
    return StreamingResponse(_events(con, p, *resume), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
