"""Leakage figures in and out of the stores: readings from a SQLite store, daily rows back to it
(`leakage_daily`), and the `leakage` measurement for InfluxDB.

Both outputs are keyed by (zone, local day) - SQLite by primary key, InfluxDB by series + the day's
local midnight as the point time - so recomputing a day overwrites it instead of adding a second row.
Days that could not be computed are written too, with their status and no numbers: a gap in a
leakage chart must read "no data", not "no leakage".

InfluxDB ``leakage`` (bucket `sentinel`)
    tags    network   water
            zone      the DMA
    fields  status    string: ok | incomplete | missing
            note      string ("" when nothing to say)
            coverage  float, share of the day's buckets with a net inflow (0-1)
            mnf_m3h, night_use_m3h, ndf_h, p_night_kpa, leakage_m3, inflow_m3, share_pct, target_pct
                      floats (left out when unknown)
            ndf_source string: fixed | pressure
            above_target boolean
    time    the local day's midnight (UTC ns)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sentinel.catalog import Catalog
from sentinel.leakage import DayLeakage
from sentinel.readings import Batch
from sentinel.stores.influx_schema import float_field, line, string_field

if TYPE_CHECKING:
    from sentinel.stores.influx import InfluxStore

LEAKAGE = "leakage"
LEAKAGE_TAGS = ("network", "zone")

SCHEMA = """
CREATE TABLE IF NOT EXISTS leakage_daily (
    network       TEXT NOT NULL,
    zone          TEXT NOT NULL,
    day           TEXT NOT NULL,     -- local date, YYYY-MM-DD
    start_ns      INTEGER NOT NULL,  -- local midnight, UTC ns
    status        TEXT NOT NULL,     -- ok | incomplete | missing
    note          TEXT NOT NULL,
    coverage      REAL NOT NULL,     -- share of the day's buckets with a net inflow
    mnf_m3h       REAL,
    mnf_at_ns     INTEGER,
    night_use_m3h REAL,
    ndf_h         REAL,
    ndf_source    TEXT,              -- fixed | pressure
    p_night_kpa   REAL,
    leakage_m3    REAL,
    inflow_m3     REAL,
    share_pct     REAL,
    above_target  INTEGER,           -- 0/1, NULL when unknown
    target_pct    REAL NOT NULL,
    PRIMARY KEY (network, zone, day)
);
"""
COLUMNS = ("network", "zone", "day", "start_ns", "status", "note", "coverage", "mnf_m3h", "mnf_at_ns",
           "night_use_m3h", "ndf_h", "ndf_source", "p_night_kpa", "leakage_m3", "inflow_m3", "share_pct",
           "above_target", "target_pct")


def _connect(path: str | Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA busy_timeout = 5000")  # the processor may be writing readings
    conn.execute("PRAGMA journal_mode = WAL")  # as SQLiteStore: readers never block the writer
    return conn


def write_leakage_sqlite(path: str | Path, days: Sequence[DayLeakage], target_pct: float) -> int:
    """Upsert the days into `leakage_daily` (created if missing); returns the rows written."""
    rows = [("water", d.zone, d.day, d.start_ns, d.status, d.note, d.coverage, d.mnf_m3h, d.mnf_at_ns,
             d.night_use_m3h, d.ndf_h, d.ndf_source, d.p_night_kpa, d.leakage_m3, d.inflow_m3, d.share_pct,
             None if d.above_target is None else int(d.above_target), target_pct) for d in days]
    conn = _connect(path)
    try:
        with conn:
            conn.executescript(SCHEMA)
            conn.executemany(f"INSERT OR REPLACE INTO leakage_daily ({', '.join(COLUMNS)}) "
                             f"VALUES ({', '.join('?' * len(COLUMNS))})", rows)
    finally:
        conn.close()
    return len(rows)


def read_leakage_sqlite(path: str | Path) -> list[dict[str, object]]:
    """The stored rows, by zone then day (for checks and other tools)."""
    conn = _connect(path)
    try:
        cur = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM leakage_daily ORDER BY network, zone, day")
        return [dict(zip(COLUMNS, r, strict=True)) for r in cur.fetchall()]
    finally:
        conn.close()


def read_store_readings(path: str | Path, catalog: Catalog, sensors: Sequence[int]) -> Batch:
    """The named sensors' readings from a SQLite store's `readings` table, in time order (read-only)."""
    if not Path(path).exists():
        raise FileNotFoundError(f"no store at {path}")
    ids = [catalog.sensors[i].sensor_id for i in sensors]
    conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        rows = conn.execute(f"SELECT sensor_id, time_ns, value, quality FROM readings WHERE sensor_id IN "
                            f"({', '.join('?' * len(ids))}) ORDER BY time_ns", ids).fetchall() if ids else []
    finally:
        conn.close()
    if not rows:
        return Batch.empty()
    sid, t, v, q = zip(*rows, strict=True)
    index = catalog.index
    value = np.array([np.nan if x is None else x for x in v], dtype=np.float64)
    return Batch.of([index[s] for s in sid], t, value, q)


def encode_leakage(days: Sequence[DayLeakage], target_pct: float) -> list[str]:
    """``leakage`` line-protocol points, one per zone-day (see the module doc)."""
    out = []
    for d in days:
        fields: dict[str, str | None] = {
            "status": string_field(d.status), "note": string_field(d.note), "coverage": float_field(d.coverage),
            "target_pct": float_field(target_pct),
            "ndf_source": None if d.ndf_source is None else string_field(d.ndf_source),
            "above_target": None if d.above_target is None else str(d.above_target).lower()}
        for name in ("mnf_m3h", "night_use_m3h", "ndf_h", "p_night_kpa", "leakage_m3", "inflow_m3", "share_pct"):
            value = getattr(d, name)
            fields[name] = None if value is None else float_field(value)
        out.append(line(LEAKAGE, {"network": "water", "zone": d.zone}, fields, d.start_ns))
    return out


def write_leakage_influx(store: InfluxStore, days: Sequence[DayLeakage], target_pct: float) -> int:
    """Hand the points to the store's own batching, retries and spool, then flush; returns points written.

    InfluxStore has no public "write these lines" call, so this uses its internal `_accept`, the one
    every write_* method goes through."""
    lines = encode_leakage(days, target_pct)
    store._accept(lines)
    store.flush()
    return len(lines)
