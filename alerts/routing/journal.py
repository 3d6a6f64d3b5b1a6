"""The delivery journal: one row per attempt to deliver a notification, so nothing fails silently.

Operators answer "did the duty phone get it?" from here: every attempt is `ok`, `retry` (failed, will try
again) or `failed` (gave up), with the error and the payload sent. SQLite in WAL mode so the console can
read while the dispatcher writes.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

Status = Literal["ok", "retry", "failed"]


@dataclass(frozen=True)
class DeliveryRecord:
    """One attempt. `payload` is the notification as sent (`Notification.to_dict()`)."""

    created_ns: int
    receiver: str
    group_key: str
    reason: str
    attempt: int
    status: Status
    error: str | None
    payload: dict[str, Any]
    id: int | None = None


class DeliveryJournal(Protocol):
    """Where the dispatcher records attempts. Called from the dispatcher's threads: must be thread-safe."""

    def record(self, entry: DeliveryRecord) -> None: ...

    def close(self) -> None: ...


class MemoryJournal:
    """Attempts in a list: for tests and for running without a database."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: list[DeliveryRecord] = []

    def record(self, entry: DeliveryRecord) -> None:
        with self._lock:
            self._rows.append(entry)

    def rows(self) -> list[DeliveryRecord]:
        with self._lock:
            return list(self._rows)

    def close(self) -> None:
        pass


_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_ns INTEGER NOT NULL,
    receiver TEXT NOT NULL,
    group_key TEXT NOT NULL,
    reason TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'retry', 'failed')),
    error TEXT,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_created ON deliveries (created_ns);
CREATE INDEX IF NOT EXISTS deliveries_status ON deliveries (status, created_ns);
"""
_COLUMNS = "id, created_ns, receiver, group_key, reason, attempt, status, error, payload"


class SqliteJournal:
    """The `deliveries` table in a SQLite file (it may share the file with the alert store)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def record(self, entry: DeliveryRecord) -> None:
        payload = json.dumps(entry.payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        with self._lock:
            self._db.execute(
                "INSERT INTO deliveries (created_ns, receiver, group_key, reason, attempt, status, error, payload)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (entry.created_ns, entry.receiver, entry.group_key, entry.reason, entry.attempt, entry.status,
                 entry.error, payload))

    def rows(self, *, receiver: str | None = None, status: Status | None = None, since_ns: int | None = None,
             limit: int = 1000) -> list[DeliveryRecord]:
        """Attempts in the order they were made, optionally filtered."""
        where, args = [], []
        for column, value in (("receiver", receiver), ("status", status)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if since_ns is not None:
            where.append("created_ns >= ?")
            args.append(since_ns)
        sql = f"SELECT {_COLUMNS} FROM deliveries" + (f" WHERE {' AND '.join(where)}" if where else "")
        with self._lock:
            found = self._db.execute(f"{sql} ORDER BY id LIMIT ?", (*args, limit)).fetchall()
        return [DeliveryRecord(created_ns=r[1], receiver=r[2], group_key=r[3], reason=r[4], attempt=r[5],
                               status=r[6], error=r[7], payload=json.loads(r[8]), id=r[0]) for r in found]

    def prune(self, before_ns: int) -> int:
        """Drop attempts older than `before_ns` (keep the journal from growing forever)."""
        with self._lock:
            return self._db.execute("DELETE FROM deliveries WHERE created_ns < ?", (before_ns,)).rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()
