"""The SQLite store: durable on return, re-sent data never duplicates, readable while written (WAL)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from alerts.lifecycle import AlertBook
from sentinel.catalog import Catalog, Sensor
from sentinel.deadletter import DeadLetter
from sentinel.detections import Detection
from sentinel.readings import NS, Batch
from sentinel.severity import Severity
from sentinel.stores.base import Store
from sentinel.stores.sqlite import SQLiteStore

T0 = 1_718_000_000 * NS
CATALOG = Catalog.from_sensors([
    Sensor(sensor_id="W-DMA1-P01", network="water", zone="DMA1", quantity="pressure", unit="kPa"),
    Sensor(sensor_id="W-DMA1-F01", network="water", zone="DMA1", quantity="flow", unit="m3/h", role="inlet"),
    Sensor(sensor_id="G-N1-CH4", network="gas", zone="N1", quantity="gas_concentration", unit="%LEL"),
])


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "sentinel.db"


@pytest.fixture
def store(db: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(db, CATALOG)
    yield s
    s.close()


def _detection(t_s: int, transition: str, sev: Severity | None = Severity.RED) -> Detection:
    return Detection("burst-pressure-drop", "pressure_drop", "water", "DMA1", "W-DMA1-P01", "W-DMA1-P01",
                     T0 + t_s * NS, transition, sev, 180.0, 3.5, f"{transition}")  # type: ignore[arg-type]


def test_it_is_a_store(store: SQLiteStore) -> None:
    assert isinstance(store, Store)


def test_wal_mode_is_on_and_readers_see_committed_writes(store: SQLiteStore, db: Path) -> None:
    store.write_readings(Batch.of([0], [T0], [310.0]))
    reader = sqlite3.connect(db)
    assert reader.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert reader.execute("SELECT sensor_id, value FROM readings").fetchall() == [("W-DMA1-P01", 310.0)]
    reader.close()


def test_readings_round_trip_by_sensor_and_half_open_window(store: SQLiteStore) -> None:
    # arrival order is not time order, and sensors interleave
    store.write_readings(Batch.of([0, 1, 0, 0, 2], [T0 + 2 * NS, T0, T0, T0 + NS, T0],
                                  [302.0, 55.5, 300.0, float("nan"), 1.5], [0, 0, 0, 2, 0]))
    t, v = store.readings("W-DMA1-P01", T0, T0 + 2 * NS)
    assert t.dtype == np.int64 and v.dtype == np.float64
    assert t.tolist() == [T0, T0 + NS]
    assert v[0] == 300.0 and np.isnan(v[1])
    t, v = store.readings("W-DMA1-F01", T0, T0 + 10 * NS)
    assert t.tolist() == [T0] and v.tolist() == [55.5]
    t, v = store.readings("nobody", T0, T0 + 10 * NS)
    assert len(t) == len(v) == 0


def test_re_sent_readings_overwrite_instead_of_duplicating(store: SQLiteStore) -> None:
    batch = Batch.of([0, 0, 1], [T0, T0 + NS, T0], [300.0, 301.0, 55.0])
    store.write_readings(batch)
    store.write_readings(batch)
    store.write_readings(Batch.of([0], [T0], [299.0]))  # a correction for the same instant
    assert store.counts()["readings"] == 3
    assert store.readings("W-DMA1-P01", T0, T0 + 1)[1].tolist() == [299.0]
    store.write_readings(Batch.of([1, 1], [T0, T0], [54.0, 56.0]))  # repeated within a batch: last wins
    assert store.readings("W-DMA1-F01", T0, T0 + 1)[1].tolist() == [56.0]


def test_writes_are_durable_when_the_call_returns(db: Path) -> None:
    first = SQLiteStore(db, CATALOG)
    first.write_readings(Batch.of([2], [T0], [12.0]))
    first.write_dead_letters([DeadLetter.of("mqtt:x", "unknown sensor", b"{}", T0)])
    # a second connection (another process, the CLI) sees it before the writer closes
    other = SQLiteStore(db, CATALOG)
    assert other.counts()["readings"] == 1 and other.counts()["dead_letters"] == 1
    other.close()
    first.close()


def test_100k_readings_write_well_under_a_second(store: SQLiteStore) -> None:
    n = 100_000
    rng = np.random.default_rng(7)
    batch = Batch.of(np.arange(n) % 3, T0 + np.arange(n, dtype=np.int64) * NS, rng.normal(300, 5, n))
    start = time.perf_counter()
    store.write_readings(batch)
    elapsed = time.perf_counter() - start
    assert store.counts()["readings"] == n
    assert elapsed < 1.0, f"{elapsed:.2f}s"


def test_replayed_detections_are_stored_once(store: SQLiteStore) -> None:
    dets = [_detection(0, "raised"), _detection(60, "escalated"), _detection(120, "cleared", None)]
    store.write_detections(dets)
    store.write_detections(dets)
    assert store.counts()["detections"] == 3


def test_alert_changes_upsert_current_state_and_keep_history(store: SQLiteStore) -> None:
    book = AlertBook(resolve_after_s=600)
    (opened,) = book.apply([_detection(0, "raised", Severity.ORANGE)], T0)
    store.write_alert_changes([opened])
    assert [a.state for a in store.alerts()] == ["firing"]
    assert store.alerts("firing")[0] == opened.alert

    ack = book.acknowledge(opened.alert.alert_id, "zhang.wei", "on site", T0 + 30 * NS)
    later = book.apply([_detection(60, "escalated"), _detection(120, "cleared", None)], T0 + 120 * NS)
    store.write_alert_changes([ack, *later])
    store.write_alert_changes([ack, *later])  # replayed: no duplicates
    (current,) = store.alerts()
    assert current.state == "acknowledged" and current.acked_by == "zhang.wei"
    assert current.severity is Severity.RED and current.cleared_ns == T0 + 120 * NS
    assert store.alerts("firing") == []

    store.write_alert_changes(book.apply([], T0 + 720 * NS))
    assert store.alerts("resolved")[0].resolved_ns == T0 + 720 * NS
    history = store.alert_history(opened.alert.alert_id)
    assert [c.change for c in history] == ["opened", "acknowledged", "escalated", "cleared", "resolved"]
    assert history[1].actor == "zhang.wei" and history[1].note == "on site"
    assert store.counts() | {"readings": 0} == {"readings": 0, "detections": 0, "alerts": 1,
                                                "alert_changes": 5, "dead_letters": 0, "alerts_open": 0}


def test_dead_letters_are_kept_newest_first_and_not_duplicated(store: SQLiteStore) -> None:
    letters = [DeadLetter.of("mqtt:sentinel/water/DMA1/P1", "undecodable JSON", b"\xff{", T0 + i * NS,
                             field=None if i else "value") for i in range(3)]
    store.write_dead_letters(letters)
    store.write_dead_letters(letters[:1])
    assert store.counts()["dead_letters"] == 3
    newest = store.dead_letters(limit=2)
    assert [d.received_ns for d in newest] == [T0 + 2 * NS, T0 + NS]
    assert store.dead_letters(10)[-1] == letters[0]


def test_the_connection_belongs_to_the_thread_that_opened_it(store: SQLiteStore) -> None:
    errors: list[BaseException] = []

    def elsewhere() -> None:
        try:
            store.counts()
        except sqlite3.ProgrammingError as exc:
            errors.append(exc)

    t = threading.Thread(target=elsewhere)
    t.start()
    t.join()
    assert len(errors) == 1


def test_two_processes_opening_a_new_store_at_once_both_get_it(tmp_path) -> None:
    """Faust workers sharing one store start together: neither may fail with 'database is locked'."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    code = ("import sys, time; from sentinel.stores.sqlite import SQLiteStore\n"
            "start = float(sys.argv[2])\n"
            "for i in range(30):\n"
            "    while time.time() < start + 0.05 * i: pass\n"  # every process opens file i at once
            "    SQLiteStore(sys.argv[1] + f'/s{i}.sqlite').close()\n")
    start = str(time.time() + 3)
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), start], cwd=repo,
                              stderr=subprocess.PIPE, text=True) for _ in range(6)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, "\n".join(errors)
