"""Replay files: CSV readings in long form (`time,sensor_id,value[,quality]`) or wide form (`time` then
one column per sensor id, as SCADA exports come). Values are in each sensor's catalog unit.

Rows are replayed in event-time order (stable), as they would have arrived live; rows we cannot use
become dead letters naming file, line and field. Times outside the window the MQTT decoder accepts
(2000..2200, `ingest.fields`) are refused too; a file has no receive clock, so there is no "too far
ahead" check here.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ingest.fields import MAX_TIME_NS, MIN_TIME_NS, TIME_WINDOW
from sentinel.catalog import Catalog
from sentinel.deadletter import DeadLetter
from sentinel.errors import InputError
from sentinel.readings import QUALITY_BAD, QUALITY_GOOD, QUALITY_UNCERTAIN, Batch, parse_time

_ISO_FAST = re.compile(r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?Z?$")
_QUALITY = {"": QUALITY_GOOD, "0": QUALITY_GOOD, "good": QUALITY_GOOD, "1": QUALITY_UNCERTAIN,
            "uncertain": QUALITY_UNCERTAIN, "2": QUALITY_BAD, "bad": QUALITY_BAD}

Progress = Callable[[int, int], None]  # (bytes read, total bytes)

_NAT = np.iinfo(np.int64).min  # "no time": the row was dead-lettered
_MIN_US, _MAX_US = MIN_TIME_NS // 1000, MAX_TIME_NS // 1000


@dataclass
class ReplayData:
    batch: Batch  # sorted by event time, canonical units
    dead_letters: list[DeadLetter] = field(default_factory=list)
    rows: int = 0
    form: str = "long"


class _Counting:
    """Iterates a text file's lines and counts characters read, for progress (tell() is off in iteration)."""

    def __init__(self, fh) -> None:
        self._fh, self.read = fh, 0

    def __iter__(self) -> _Counting:
        return self

    def __next__(self) -> str:
        line = next(self._fh)
        self.read += len(line)
        return line

    def tell(self) -> int:
        return self.read


def _times_to_ns(texts: list[str], source: str, lines: list[int],
                 dead: list[DeadLetter], received_ns: int) -> np.ndarray:
    """Time texts to int64 ns; a row whose time cannot be read or lies outside MIN_TIME_NS..MAX_TIME_NS
    gets _NAT and a dead letter (one per line: a wide row's cells share their time)."""
    out = np.full(len(texts), _NAT, dtype=np.int64)
    bad: dict[int, str] = {}  # row -> why its time is refused
    fast = [i for i, s in enumerate(texts) if _ISO_FAST.match(s)]
    if fast:
        norm = [texts[i].rstrip("Z").replace(" ", "T") for i in fast]
        # microseconds, not ns: datetime64[ns] silently wraps years past 2262 around (2999 -> 1829)
        try:
            us = np.array(norm, dtype="datetime64[us]").view(np.int64)
        except ValueError:  # well-shaped but no such date (month 13, 30 February): find it row by row
            us = np.full(len(fast), _NAT, dtype=np.int64)
            seen: dict[str, int | str] = {}
            for k, text in enumerate(norm):
                hit = seen.get(text)
                if hit is None:
                    try:
                        hit = int(np.datetime64(text, "us").astype(np.int64))
                    except ValueError as exc:
                        hit = str(exc)
                    seen[text] = hit
                if type(hit) is str:
                    bad[fast[k]] = hit
                else:
                    us[k] = hit
        fast_rows = np.array(fast, dtype=np.int64)
        inside = (us >= _MIN_US) & (us < _MAX_US)  # NaT (_NAT) is outside too
        out[fast_rows[inside]] = us[inside] * 1000
        for k in np.flatnonzero(~inside & (us != _NAT)).tolist():
            bad[fast[k]] = f"{texts[fast[k]]!r} is outside {TIME_WINDOW}"
    if len(fast) != len(texts):
        fast_set = set(fast)
        for i, s in enumerate(texts):
            if i in fast_set:
                continue
            try:
                ns = parse_time(s)
            except (ValueError, OverflowError) as exc:
                bad[i] = str(exc)
                continue
            if MIN_TIME_NS <= ns < MAX_TIME_NS:
                out[i] = ns
            else:
                bad[i] = f"{s!r} is outside {TIME_WINDOW}"
    last_line = None
    for i in sorted(bad):
        if lines[i] != last_line:
            last_line = lines[i]
            dead.append(DeadLetter.of(f"{source}:{lines[i]}", f"bad time: {bad[i]}", texts[i], received_ns, "time"))
    return out


def read_replay(path: str | Path, catalog: Catalog, *, received_ns: int = 0,
                progress: Progress | None = None) -> ReplayData:
    path = Path(path)
    source = str(path)
    total = path.stat().st_size
    with path.open(newline="", encoding="utf-8-sig") as raw:
        fh = _Counting(raw)
        reader = csv.reader(fh)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise InputError("empty readings file", source=source, line=1) from None
        if not header or header[0].lower() not in ("time", "timestamp", "ts"):
            raise InputError("the first column must be `time`", source=source, line=1, field=header[0])
        lower = [h.lower() for h in header]
        if "sensor_id" in lower and "value" in lower:
            data = _read_long(reader, fh, lower, source, catalog, received_ns, total, progress)
        else:
            data = _read_wide(reader, fh, header, source, catalog, received_ns, total, progress)
    if progress:
        progress(total, total)
    order = np.argsort(data.batch.time_ns, kind="stable")
    data.batch = data.batch.take(order)
    return data


class _Rows:
    """Accepted rows, turned into numpy columns every CHUNK rows so a year of data fits in memory."""

    CHUNK = 250_000

    def __init__(self, source: str, catalog: Catalog, dead: list[DeadLetter], received_ns: int) -> None:
        self.source, self.catalog, self.dead, self.received_ns = source, catalog, dead, received_ns
        self.times: list[str] = []
        self.sensors: list[int] = []
        self.values: list[float] = []
        self.quality: list[int] = []
        self.lines: list[int] = []
        self.batches: list[Batch] = []

    def add(self, time: str, sensor: int, value: float, quality: int, line: int) -> None:
        self.times.append(time)
        self.sensors.append(sensor)
        self.values.append(value)
        self.quality.append(quality)
        self.lines.append(line)
        if len(self.times) >= self.CHUNK:
            self.flush()

    def flush(self) -> None:
        if not self.times:
            return
        cat, times, values, lines = self.catalog, self.times, self.values, self.lines
        t = _times_to_ns(times, self.source, lines, self.dead, self.received_ns)
        s = np.asarray(self.sensors, dtype=np.int32)
        v = cat.to_canonical(s, np.asarray(values, dtype=np.float64))
        ok = t != _NAT
        in_range = (v >= cat.lo[s]) & (v <= cat.hi[s])
        for k in np.flatnonzero(ok & ~in_range):
            sensor = cat.sensors[s[k]]
            self.dead.append(DeadLetter.of(
                f"{self.source}:{lines[k]}",
                f"out of range: {values[k]:g} {sensor.unit} = {v[k]:g} canonical, outside "
                f"[{cat.lo[s[k]]:g}, {cat.hi[s[k]]:g}]", f"{times[k]},{sensor.sensor_id},{values[k]}",
                self.received_ns, "value"))
        keep = ok & in_range
        self.batches.append(Batch(s[keep], t[keep], v[keep], np.asarray(self.quality, dtype=np.uint8)[keep]))
        self.times, self.sensors, self.values, self.quality, self.lines = [], [], [], [], []

    def result(self, rows: int, form: str) -> ReplayData:
        self.flush()
        return ReplayData(Batch.concat(self.batches), self.dead, rows, form)


def _read_long(reader, fh, lower: list[str], source: str, catalog: Catalog, received_ns: int,
               total: int, progress: Progress | None) -> ReplayData:
    ti, si, vi = lower.index("time"), lower.index("sensor_id"), lower.index("value")
    qi = lower.index("quality") if "quality" in lower else None
    dead: list[DeadLetter] = []
    out = _Rows(source, catalog, dead, received_ns)
    index = catalog.index
    rows = 0
    for row in reader:
        rows += 1
        line = reader.line_num
        if progress and rows % 200_000 == 0:
            progress(fh.tell(), total)
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        try:
            sid, raw_v, raw_t = row[si].strip(), row[vi].strip(), row[ti].strip()
        except IndexError:
            dead.append(DeadLetter.of(f"{source}:{line}", "too few columns", ",".join(row), received_ns))
            continue
        i = index.get(sid)
        if i is None:
            dead.append(DeadLetter.of(f"{source}:{line}", f"unknown sensor {sid!r}", ",".join(row),
                                      received_ns, "sensor_id"))
            continue
        try:
            value = float(raw_v)
            if value != value:
                raise ValueError
        except ValueError:
            dead.append(DeadLetter.of(f"{source}:{line}", f"value {raw_v!r} is not a number", ",".join(row),
                                      received_ns, "value"))
            continue
        q = QUALITY_GOOD
        if qi is not None and qi < len(row):
            q = _QUALITY.get(row[qi].strip().lower(), -1)
            if q < 0:
                dead.append(DeadLetter.of(f"{source}:{line}", f"unknown quality {row[qi]!r}", ",".join(row),
                                          received_ns, "quality"))
                continue
        out.add(raw_t, i, value, q, line)
    return out.result(rows, "long")


def _read_wide(reader, fh, header: list[str], source: str, catalog: Catalog, received_ns: int,
               total: int, progress: Progress | None) -> ReplayData:
    dead: list[DeadLetter] = []
    cols: list[tuple[int, int]] = []
    for c, name in enumerate(header[1:], start=1):
        i = catalog.index.get(name)
        if i is None:
            dead.append(DeadLetter.of(f"{source}:1", f"unknown sensor column {name!r}; its values are skipped",
                                      name, received_ns, "sensor_id"))
        else:
            cols.append((c, i))
    out = _Rows(source, catalog, dead, received_ns)
    rows = 0
    for row in reader:
        rows += 1
        line = reader.line_num
        if progress and rows % 20_000 == 0:
            progress(fh.tell(), total)
        if not row or not row[0].strip():
            continue
        t = row[0].strip()
        for c, i in cols:
            if c >= len(row):
                break
            cell = row[c].strip()
            if not cell:
                continue
            try:
                value = float(cell)
                if value != value:
                    raise ValueError
            except ValueError:
                dead.append(DeadLetter.of(f"{source}:{line}", f"value {cell!r} is not a number", cell,
                                          received_ns, header[c]))
                continue
            out.add(t, i, value, QUALITY_GOOD, line)
    return out.result(rows, "wide")
