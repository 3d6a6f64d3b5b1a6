"""Replay files as SCADA exports come: long or wide, any time notation, read in bounded memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ingest import replay as replay_files
from ingest.fields import MAX_TIME_NS, MIN_TIME_NS
from ingest.replay import read_replay
from sentinel.catalog import parse_catalog_csv
from sentinel.readings import NS, QUALITY_BAD

T0 = 1_735_689_600 * NS  # 2025-01-01T00:00:00Z

CATALOG = parse_catalog_csv("sensor_id,network,zone,quantity,unit\nP1,water,DMA1,pressure,bar\n"
                            "F1,water,DMA1,flow,L/s\n")


def test_times_in_any_notation_mean_the_same_instant(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("time,sensor_id,value,quality\n"
                    "2025-01-01T08:00:00+08:00,P1,3.0,good\n"
                    "2025-01-01 00:01:00,P1,3.1,\n"
                    "1735689720,P1,3.2,bad\n"
                    "1735689780000,P1,3.3,0\n")
    data = read_replay(path, CATALOG)
    assert list((data.batch.time_ns - data.batch.time_ns[0]) // 60_000_000_000) == [0, 1, 2, 3]
    np.testing.assert_allclose(data.batch.value, [300.0, 310.0, 320.0, 330.0])
    assert data.batch.quality[2] == QUALITY_BAD


def test_rows_are_replayed_in_event_time_order(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("time,sensor_id,value\n2025-01-01T00:02:00Z,P1,3\n2025-01-01T00:00:00Z,P1,1\n"
                    "2025-01-01T00:01:00Z,F1,2\n")
    data = read_replay(path, CATALOG)
    assert list(np.diff(data.batch.time_ns) > 0) == [True, True]


def test_a_large_file_is_read_in_chunks_with_the_same_result(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "r.csv"
    rows = [f"2025-01-01T00:{m // 60:02d}:{m % 60:02d}Z,{'P1' if m % 2 else 'F1'},{m % 17}" for m in range(1000)]
    rows[500] = "2025-01-01T00:08:20Z,P1,oops"
    path.write_text("time,sensor_id,value\n" + "\n".join(rows) + "\n")
    whole = read_replay(path, CATALOG)
    monkeypatch.setattr(replay_files._Rows, "CHUNK", 7)
    chunked = read_replay(path, CATALOG)
    for field in ("sensor", "time_ns", "value", "quality"):
        np.testing.assert_array_equal(getattr(whole.batch, field), getattr(chunked.batch, field))
    assert [d.source for d in chunked.dead_letters] == [f"{path}:502"]


@pytest.mark.parametrize(("text", "expected_ns"), [
    ("1735689600", 1_735_689_600_000_000_000),
    ("1735689600.25", 1_735_689_600_250_000_000),
    ("1735689600250", 1_735_689_600_250_000_000),
    ("1735689600250.5", 1_735_689_600_250_500_000),
    ("1735689600250500", 1_735_689_600_250_500_000),
    ("1735689600250500123", 1_735_689_600_250_500_123),
    ("2025-01-01T08:00:00.25+08:00", 1_735_689_600_250_000_000),
])
def test_epoch_numbers_are_read_by_magnitude(text: str, expected_ns: int) -> None:
    from sentinel.readings import parse_time

    assert parse_time(text) == expected_ns


def test_an_impossible_date_dead_letters_only_its_row(tmp_path: Path) -> None:
    """`2025-13-01` has the fast-path shape; numpy refuses the whole column, so rows are parsed one by one."""
    path = tmp_path / "r.csv"
    path.write_text("time,sensor_id,value\n2025-01-01T00:00:00Z,P1,3.1\n2025-13-01T00:00:00Z,P1,3.2\n"
                    "2025-01-01 00:01:00,F1,2\n2025-02-29T00:00:00Z,P1,3.3\n2025-01-01T00:02:00Z,P1,3.4\n")
    data = read_replay(path, CATALOG)
    assert data.batch.time_ns.tolist() == [T0 + k * 60 * NS for k in range(3)]
    np.testing.assert_allclose(data.batch.value, [310.0, 7.2, 340.0])  # F1 is in L/s
    assert [(d.source, d.field, d.payload) for d in data.dead_letters] == [
        (f"{path}:3", "time", "2025-13-01T00:00:00Z"), (f"{path}:5", "time", "2025-02-29T00:00:00Z")]
    assert all(d.reason.startswith("bad time: ") for d in data.dead_letters)
    assert "Month out of range" in data.dead_letters[0].reason


def test_an_impossible_date_in_a_wide_file_dead_letters_its_line_once(tmp_path: Path) -> None:
    path = tmp_path / "w.csv"
    path.write_text("time,P1,F1\n2025-01-01 00:00,3.1,2\n2025-02-30 00:00,3.2,3\n2025-01-01 00:01,3.3,4\n")
    data = read_replay(path, CATALOG)
    assert data.form == "wide"
    assert data.batch.time_ns.tolist() == [T0, T0, T0 + 60 * NS, T0 + 60 * NS]
    ((source, reason, field),) = [(d.source, d.reason, d.field) for d in data.dead_letters]
    assert (source, field) == (f"{path}:3", "time") and "Day out of range" in reason


@pytest.mark.parametrize("text", ["2999-01-01T00:00:00Z", "2262-04-12T00:00:00Z", "1600-01-01T00:00:00Z",
                                  "2200-01-01T00:00:00Z", "1999-12-31T23:59:59Z", "0", "-1",
                                  "2999-01-01T08:00:00+08:00", "32503680000", "99999999999999999999"])
def test_times_outside_2000_to_2200_are_dead_letters_never_wrapped_around(tmp_path: Path, text: str) -> None:
    path = tmp_path / "r.csv"
    path.write_text(f"time,sensor_id,value\n2025-01-01T00:00:00Z,P1,3.1\n{text},P1,3.2\n"
                    "2199-12-31T23:59:59Z,P1,3.3\n2000-01-01T00:00:00Z,P1,3.4\n")
    data = read_replay(path, CATALOG)
    assert data.batch.time_ns.tolist() == [MIN_TIME_NS, T0, MAX_TIME_NS - NS]
    (d,) = data.dead_letters
    assert (d.source, d.field, d.payload) == (f"{path}:3", "time", text)
    assert d.reason.startswith("bad time: ")
    if text[0].isdigit() and len(text) > 5 and text[4] == "-":
        assert d.reason == f"bad time: {text!r} is outside 2000-01-01T00:00:00Z..2200-01-01T00:00:00Z"


def test_bad_times_in_any_chunk_give_the_same_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "r.csv"
    rows = [f"2025-01-01T00:{m // 60:02d}:{m % 60:02d}Z,P1,{m % 17}" for m in range(100)]
    rows[10], rows[41], rows[77] = "2025-13-01T00:00:00Z,P1,1", "2999-01-01T00:00:00Z,P1,1", "0,P1,1"
    path.write_text("time,sensor_id,value\n" + "\n".join(rows) + "\n")
    whole = read_replay(path, CATALOG)
    monkeypatch.setattr(replay_files._Rows, "CHUNK", 7)
    chunked = read_replay(path, CATALOG)
    np.testing.assert_array_equal(whole.batch.time_ns, chunked.batch.time_ns)
    assert len(whole.batch) == 97
    assert [d.source for d in whole.dead_letters] == [d.source for d in chunked.dead_letters] == [
        f"{path}:12", f"{path}:43", f"{path}:79"]
