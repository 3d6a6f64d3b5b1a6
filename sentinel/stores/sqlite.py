"""The default store: one SQLite file in WAL mode, so the CLI/console can read while the pipeline writes.

Threading: a `SQLiteStore` owns one connection and must be used from the thread that created it
(sqlite3's own check enforces this). Other processes or threads open their own `SQLiteStore` (or a
read-only connection) on the same file; WAL lets readers run alongside the single writer.

Durability: every write method commits before returning (synchronous=NORMAL in WAL: a power cut can
lose the last commits, an application crash cannot). Re-sent data overwrites or is ignored, never
duplicated: readings by (sensor_id, time_ns), detections by (rule_id, subject, time_ns, transition),
alert history by (alert_id, change, time_ns), dead letters by a digest of their content.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from alerts.model import Alert, AlertChange
from sentinel.catalog import Catalog
from sentinel.deadletter import DeadLetter
from sentinel.detections import Detection
from sentinel.readings import Batch

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    sensor_id TEXT NOT NULL,
    time_ns   INTEGER NOT NULL,
    value     REAL,                 -- canonical unit; NULL for NaN
    quality   INTEGER NOT NULL,
    PRIMARY KEY (sensor_id, time_ns)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS detections (
    rule_id    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    network    TEXT NOT NULL,
    zone       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    sensor_id  TEXT,
    time_ns    INTEGER NOT NULL,
    transition TEXT NOT NULL,
    severity   TEXT,                -- yellow/orange/red, NULL when cleared
    value      REAL,
    score      REAL,
    message    TEXT NOT NULL,
    UNIQUE (rule_id, subject, time_ns, transition)
);
CREATE INDEX IF NOT EXISTS detections_time ON detections (time_ns);

CREATE TABLE IF NOT EXISTS alerts (
    alert_id         TEXT PRIMARY KEY,
    rule_id          TEXT NOT NULL,
    kind             TEXT NOT NULL,
    network          TEXT NOT NULL,
    zone             TEXT NOT NULL,
    subject          TEXT NOT NULL,
    sensor_id        TEXT,
    severity         TEXT NOT NULL,  -- worst seen while open
    current_severity TEXT,
    state            TEXT NOT NULL,  -- firing/acknowledged/resolved
    started_ns       INTEGER NOT NULL,
    updated_ns       INTEGER NOT NULL,
    cleared_ns       INTEGER,
    resolved_ns      INTEGER,
    acked_by         TEXT,
    ack_note         TEXT,
    resolved_by      TEXT,
    resolve_note     TEXT,
    value            REAL,
    message          TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_state ON alerts (state, started_ns);

CREATE TABLE IF NOT EXISTS alert_changes (
    alert_id TEXT NOT NULL,
    change   TEXT NOT NULL,
    time_ns  INTEGER NOT NULL,
    actor    TEXT,
    note     TEXT,
    rule_id  TEXT NOT NULL,
    subject  TEXT NOT NULL,
    severity TEXT NOT NULL,
    state    TEXT NOT NULL,
    alert    TEXT NOT NULL,          -- JSON snapshot of the alert after the change (Alert.to_state)
    PRIMARY KEY (alert_id, change, time_ns)
);
CREATE INDEX IF NOT EXISTS alert_changes_time ON alert_changes (time_ns);

CREATE TABLE IF NOT EXISTS dead_letters (
    id          INTEGER PRIMARY KEY,
    digest      BLOB NOT NULL UNIQUE, -- of all fields: a re-sent letter is not stored twice
    source      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    field       TEXT,
    payload     TEXT NOT NULL,
    received_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_received ON dead_letters (received_ns);
"""

_ALERT_COLS = ("alert_id", "rule_id", "kind", "network", "zone", "subject", "sensor_id", "severity",
               "current_severity", "state", "started_ns", "updated_ns", "cleared_ns", "resolved_ns",
               "acked_by", "ack_note", "resolved_by", "resolve_note", "value", "message")
_TABLES = ("readings", "detections", "alerts", "alert_changes", "dead_letters")


def _while_locked(fn: Callable[[], None], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    pause = 0.05
    while True:
        try:
            fn()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 1.0)


class SQLiteStore:
    """`sentinel.stores.base.Store` on one SQLite file (see the module doc for threading and durability)."""

    def __init__(self, path: str | Path, catalog: Catalog | None = None) -> None:
        """`catalog` maps reading indices to sensor ids; a store opened only to read may omit it."""
        self.path = Path(path)
        self.catalog = catalog
        self._ids = np.array([s.sensor_id for s in catalog.sensors] if catalog else [], dtype=object)
        self._id_rank = np.argsort(np.argsort(self._ids, kind="stable"), kind="stable")  # text order of ids
        self._conn = sqlite3.connect(self.path, isolation_level=None)  # we BEGIN/COMMIT ourselves
        self._conn.execute("PRAGMA busy_timeout = 5000")  # wait for a reader's checkpoint, don't fail
        _while_locked(self._prepare)
        self._conn.execute("PRAGMA synchronous = NORMAL")

    def _prepare(self) -> None:
        """WAL mode and the schema. Two processes opening a new file at once (Faust workers sharing a
        store) can find it locked: switching to WAL does not wait on the busy timeout."""
        mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise sqlite3.OperationalError(f"{self.path}: could not enable WAL (journal_mode={mode})")
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise sqlite3.OperationalError(
                f"{self.path}: schema version {version} is newer than this code's {SCHEMA_VERSION}")
        self._conn.executescript(SCHEMA)
        self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # -- writes (each one a transaction, committed on return) ---------------------------------------

    def _write(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._conn:  # rolls back on error; commits otherwise
            self._conn.execute("BEGIN")
            self._conn.executemany(sql, rows)

    def write_readings(self, batch: Batch) -> None:
        if not len(batch):
            return
        # Insert in primary-key order: B-tree appends instead of random page hits (~2x faster). The sort
        # is stable, so a reading repeated within the batch still ends with its last-arrived value.
        order = np.lexsort((batch.time_ns, self._id_rank[batch.sensor]))
        b = batch.take(order)
        # SQLite itself stores a bound NaN as NULL (and readings() turns it back into NaN)
        rows = zip(self._ids[b.sensor].tolist(), b.time_ns.tolist(), b.value.tolist(), b.quality.tolist(),
                   strict=True)
        self._write("INSERT OR REPLACE INTO readings VALUES (?, ?, ?, ?)", rows)

    def write_detections(self, detections: Sequence[Detection]) -> None:
        if not detections:
            return
        rows = [(d.rule_id, d.kind, d.network, d.zone, d.subject, d.sensor_id, d.time_ns, d.transition,
                 d.severity.label if d.severity else None, d.value, d.score, d.message) for d in detections]
        self._write("INSERT OR REPLACE INTO detections VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def write_alert_changes(self, changes: Sequence[AlertChange]) -> None:
        """Append to the history and upsert each alert's current state (in order, so the last change wins)."""
        if not changes:
            return
        hist: list[tuple[Any, ...]] = []
        current: dict[str, tuple[Any, ...]] = {}
        for c in changes:
            st = c.alert.to_state()
            hist.append((c.alert.alert_id, c.change, c.time_ns, c.actor, c.note, c.alert.rule_id,
                         c.alert.subject, st["severity"], c.alert.state, json.dumps(st, ensure_ascii=False)))
            current[c.alert.alert_id] = tuple(st[k] for k in _ALERT_COLS)
        marks = ", ".join("?" * len(_ALERT_COLS))
        with self._conn:
            self._conn.execute("BEGIN")
            self._conn.executemany(
                "INSERT OR REPLACE INTO alert_changes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", hist)
            self._conn.executemany(
                f"INSERT OR REPLACE INTO alerts ({', '.join(_ALERT_COLS)}) VALUES ({marks})",
                current.values())

    def write_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        rows = []
        for d in letters:
            digest = hashlib.sha1(
                "\x1f".join((d.source, d.reason, d.field or "\x00", d.payload, str(d.received_ns))).encode(),
                usedforsecurity=False).digest()
            rows.append((digest, d.source, d.reason, d.field, d.payload, d.received_ns))
        self._write("INSERT OR IGNORE INTO dead_letters (digest, source, reason, field, payload, received_ns)"
                    " VALUES (?, ?, ?, ?, ?, ?)", rows)

    def flush(self) -> None:
        """Nothing is buffered: every write already committed."""

    def close(self) -> None:
        self._conn.close()

    # -- queries for the CLI and console ------------------------------------------------------------

    def alerts(self, state: str | None = None) -> list[Alert]:
        """Current alerts (optionally one state: firing/acknowledged/resolved), oldest first."""
        sql = f"SELECT {', '.join(_ALERT_COLS)} FROM alerts"
        args: tuple[str, ...] = ()
        if state is not None:
            sql, args = sql + " WHERE state = ?", (state,)
        rows = self._conn.execute(sql + " ORDER BY started_ns, rule_id, subject", args).fetchall()
        return [Alert.from_state(dict(zip(_ALERT_COLS, r, strict=True))) for r in rows]

    def alert_history(self, alert_id: str) -> list[AlertChange]:
        rows = self._conn.execute(
            "SELECT change, time_ns, actor, note, alert FROM alert_changes WHERE alert_id = ?"
            " ORDER BY time_ns, rowid", (alert_id,)).fetchall()
        return [AlertChange.from_state({"change": ch, "time_ns": t, "actor": a, "note": n,
                                        "alert": json.loads(s)}) for ch, t, a, n, s in rows]

    def readings(self, sensor_id: str, start_ns: int, end_ns: int) -> tuple[np.ndarray, np.ndarray]:
        """(time_ns int64, value float64) of one sensor in [start_ns, end_ns), time-ordered; NULL -> NaN."""
        rows = self._conn.execute(
            "SELECT time_ns, value FROM readings WHERE sensor_id = ? AND time_ns >= ? AND time_ns < ?"
            " ORDER BY time_ns", (sensor_id, start_ns, end_ns)).fetchall()
        if not rows:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        t, v = zip(*rows, strict=True)
        return np.array(t, dtype=np.int64), np.array(v, dtype=np.float64)  # None -> nan

    def counts(self) -> dict[str, int]:
        """Rows per table, plus open alerts (`alerts_open`)."""
        out = {t: self._conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in _TABLES}
        out["alerts_open"] = self._conn.execute(
            "SELECT count(*) FROM alerts WHERE state != 'resolved'").fetchone()[0]
        return out

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The newest `limit` dead letters, newest first."""
        rows = self._conn.execute(
            "SELECT source, reason, field, payload, received_ns FROM dead_letters"
            " ORDER BY received_ns DESC, id DESC LIMIT ?", (limit,)).fetchall()
        return [DeadLetter(*r) for r in rows]

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
