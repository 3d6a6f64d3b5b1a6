"""Read-only access to the processor's SQLite store (schema: sentinel/stores/sqlite.py).

The console never writes the store: it opens its own `mode=ro` connection per call, which WAL lets run
beside the processor's (or Faust workers') writer without blocking it, and which cannot corrupt it.
Operator actions reach the store only through the pipeline (sentinel/console/actions.py).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from alerts.model import Alert, AlertChange
from sentinel.catalog import Catalog
from sentinel.readings import Batch
from sentinel.stores.sqlite import _ALERT_COLS


class StoreUnavailable(RuntimeError):
    """The store file is missing or not (yet) a sentinel store."""


class StoreReader:
    def __init__(self, path: str | Path, catalog: Catalog) -> None:
        self.path = Path(path)
        self.catalog = catalog

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        if not self.path.exists():
            raise StoreUnavailable(f"no store at {self.path} yet (is the processor running with --db {self.path}?)")
        try:
            conn = sqlite3.connect(self.path.resolve().as_uri() + "?mode=ro", uri=True, timeout=5.0)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open {self.path}: {exc}") from None
        try:
            yield conn
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                raise StoreUnavailable(f"{self.path} is not a sentinel store (yet): {exc}") from None
            raise
        finally:
            conn.close()

    # -- alerts ---------------------------------------------------------------------------------------

    def alerts(self, *, state: str = "open", network: str | None = None, zone: str | None = None,
               severity: str | None = None, rule_id: str | None = None, limit: int = 500) -> list[Alert]:
        """Newest first. `state`: open (firing or acknowledged), firing, acknowledged, resolved or all."""
        where, args = [], []
        if state == "open":
            where.append("state != 'resolved'")
        elif state != "all":
            where.append("state = ?")
            args.append(state)
        for col, val in (("network", network), ("zone", zone), ("severity", severity), ("rule_id", rule_id)):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        sql = f"SELECT {', '.join(_ALERT_COLS)} FROM alerts"
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._db() as c:
            rows = c.execute(sql + " ORDER BY started_ns DESC, alert_id LIMIT ?", [*args, limit]).fetchall()
        return [Alert.from_state(dict(zip(_ALERT_COLS, r, strict=True))) for r in rows]

    def alert(self, alert_id: str) -> Alert | None:
        with self._db() as c:
            row = c.execute(f"SELECT {', '.join(_ALERT_COLS)} FROM alerts WHERE alert_id = ?", (alert_id,)).fetchone()
        return Alert.from_state(dict(zip(_ALERT_COLS, row, strict=True))) if row else None

    def history(self, alert_id: str) -> list[AlertChange]:
        with self._db() as c:
            rows = c.execute("SELECT change, time_ns, actor, note, alert FROM alert_changes WHERE alert_id = ?"
                             " ORDER BY time_ns, rowid", (alert_id,)).fetchall()
        return [AlertChange.from_state({"change": ch, "time_ns": t, "actor": a, "note": n, "alert": json.loads(s)})
                for ch, t, a, n, s in rows]

    def changes_after(self, rowid: int, limit: int = 500) -> list[tuple[int, AlertChange]]:
        """Alert changes stored after `rowid`, in store order: what the event stream pushes next."""
        with self._db() as c:
            rows = c.execute("SELECT rowid, change, time_ns, actor, note, alert FROM alert_changes WHERE rowid > ?"
                             " ORDER BY rowid LIMIT ?", (rowid, limit)).fetchall()
        return [(r, AlertChange.from_state({"change": ch, "time_ns": t, "actor": a, "note": n,
                                            "alert": json.loads(s)})) for r, ch, t, a, n, s in rows]

    def last_change_rowid(self) -> int:
        with self._db() as c:
            return int(c.execute("SELECT coalesce(max(rowid), 0) FROM alert_changes").fetchone()[0])

    # -- readings -------------------------------------------------------------------------------------

    def readings(self, sensor_id: str, start_ns: int, end_ns: int) -> tuple[np.ndarray, np.ndarray]:
        """(time_ns, value) in [start_ns, end_ns), time-ordered; NULL values are NaN."""
        with self._db() as c:
            rows = c.execute("SELECT time_ns, value FROM readings WHERE sensor_id = ? AND time_ns >= ? AND time_ns < ?"
                             " ORDER BY time_ns", (sensor_id, start_ns, end_ns)).fetchall()
        if not rows:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        t, v = zip(*rows, strict=True)
        return np.array(t, dtype=np.int64), np.array([np.nan if x is None else x for x in v], dtype=np.float64)

    def latest_reading_ns(self) -> int | None:
        """Event time of the newest reading of any catalog sensor (one index probe per sensor)."""
        best: int | None = None
        with self._db() as c:
            for s in self.catalog.sensors:
                t = c.execute("SELECT max(time_ns) FROM readings WHERE sensor_id = ?", (s.sensor_id,)).fetchone()[0]
                if t is not None and (best is None or t > best):
                    best = int(t)
        return best

    def batch(self, start_ns: int, end_ns: int, max_rows: int) -> Batch:
        """Every catalog sensor's readings in [start_ns, end_ns] as one batch in time order (the order they
        would have arrived in); ValueError beyond `max_rows`."""
        sensors, times, values, quality = [], [], [], []
        n = 0
        with self._db() as c:
            for i, s in enumerate(self.catalog.sensors):
                rows = c.execute("SELECT time_ns, value, quality FROM readings WHERE sensor_id = ? AND time_ns >= ?"
                                 " AND time_ns <= ? ORDER BY time_ns", (s.sensor_id, start_ns, end_ns)).fetchall()
                if not rows:
                    continue
                n += len(rows)
                if n > max_rows:
                    raise ValueError(f"more than {max_rows:,} readings in that window; ask for fewer hours")
                t, v, q = zip(*rows, strict=True)
                sensors.append(np.full(len(rows), i, dtype=np.int32))
                times.append(np.array(t, dtype=np.int64))
                values.append(np.array([np.nan if x is None else x for x in v], dtype=np.float64))
                quality.append(np.array(q, dtype=np.uint8))
        if not sensors:
            return Batch.empty()
        b = Batch(np.concatenate(sensors), np.concatenate(times), np.concatenate(values), np.concatenate(quality))
        return b.take(np.lexsort((b.sensor, b.time_ns)))

    def counts(self) -> dict[str, int]:
        with self._db() as c:
            return {
                "alerts_open": c.execute("SELECT count(*) FROM alerts WHERE state != 'resolved'").fetchone()[0],
                "alerts_total": c.execute("SELECT count(*) FROM alerts").fetchone()[0],
                "last_change_id": c.execute("SELECT coalesce(max(rowid), 0) FROM alert_changes").fetchone()[0],
            }
