"""Payload decoders: one MQTT message in, a columnar Batch of canonical readings plus dead letters out.

Formats are detected from the bytes (first non-blank byte `{` or `[` means JSON, anything else is
line protocol), so a device may send any of them on any readings topic:

  (a) one JSON reading   {"sensor_id"?: str, "time"?: ISO-8601 | epoch s/ms/ns, "value": number,
                          "unit"?: str, "quality"?: "good"|"uncertain"|"bad"|0|1|2}
  (b) JSON batch         {"readings": [reading, ...]} or [reading, ...]; an element may also be the
      logger form        {"sensor_id": str, "start": time, "interval_s": number, "values": [number|null, ...],
                          "unit"?: str, "quality"?: ...}   (what battery loggers send every 15-60 min)
  (c) line protocol      measurement,sensor_id=ID[,unit=bar][,other tags] value=1.23[,quality=0i] [time_ns]
                         (tag `sensor_id` or `sensor`; timestamp in ns; no timestamp = received time)

The sensor comes from the reading, else from the topic. A missing `time` means the received time
(as Telegraf does for clock-less devices). A time outside 2000..2200, or more than `max_future_s`
(default 600 s) ahead of the message's received time, is a bad time: one device with its clock set a
century ahead must not drag the engine's event-time watermark along with it. Values are converted to
the quantity's canonical unit with the catalog's compiled scale/offset, or with the reading's own `unit`.

Every reading that cannot be used becomes one DeadLetter; the rest of its message is kept. A dead
letter's reason is "<kind>: <detail>", the kind being one of the REASONS below (counters group by kind).
Checks run in this order and the first failure wins: topic, payload syntax, sensor, zone, time, value,
quality, unit, range.

The batch path is columnar on purpose (json.loads + list comprehensions + numpy, no per-reading
pydantic): a 1000-reading JSON batch decodes in ~1.2 ms, of which json.loads is ~0.5 ms, and
`Decoder.decode_many` validates runs of single-reading messages together (~4 us per message), so the
MQTT consumer should hand it whole polls (tests/test_decoders.py prints the figures).

Use one `Decoder(catalog)` per catalog (it caches topic, zone and unit lookups); the module-level
`decode`/`decode_many` keep one for the catalog object used last.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ingest.fields import (
    INT64_MAX,
    INT64_MIN,
    MAX_TIME_NS,
    MIN_TIME_NS,
    NUMBER_TYPES,
    one_quality,
    one_time_ns,
    qualities,
    times_ns,
    values_f64,
)
from ingest.lineprotocol import LineProtocolError, parse_line  # re-exported for callers and tests
from ingest.topics import DEFAULT_SCHEME, ReadingTopic, TopicError, TopicScheme
from sentinel.catalog import Catalog
from sentinel.deadletter import DeadLetter
from sentinel.readings import NS, Batch, iso
from sentinel.units import CANONICAL_UNIT, QUANTITIES, UnitError, conversion

# ---- dead-letter reason kinds ----------------------------------------------------------------------
BAD_TOPIC = "bad topic"
UNDECODABLE_JSON = "undecodable JSON"
UNDECODABLE_LP = "undecodable line protocol"
BAD_PAYLOAD = "bad payload"  # valid syntax, wrong shape (e.g. an empty message, "readings" not a list)
UNKNOWN_SENSOR = "unknown sensor"
WRONG_ZONE = "sensor not in topic zone"
BAD_TIME = "bad time"
BAD_VALUE = "bad value"
BAD_QUALITY = "bad quality"
UNKNOWN_UNIT = "unknown unit"
OUT_OF_RANGE = "out of range"
REASONS = (BAD_TOPIC, UNDECODABLE_JSON, UNDECODABLE_LP, BAD_PAYLOAD, UNKNOWN_SENSOR, WRONG_ZONE,
           BAD_TIME, BAD_VALUE, BAD_QUALITY, UNKNOWN_UNIT, OUT_OF_RANGE)

# How far a reading's time may be ahead of its message's received time (device and processor clocks
# drift apart; more than this is a clock set wrong, and would move every event-time watermark with it).
DEFAULT_MAX_FUTURE_S = 600.0


def reason_kind(reason: str) -> str:
    """The stable kind of a dead-letter reason ("out of range: 612 kPa ..." -> "out of range")."""
    return reason.split(":", 1)[0]


@dataclass
class IngestCounters:
    """What ingestion did, for metrics and the console. Dead letters are counted by reason kind."""

    messages: int = 0
    readings_ok: int = 0
    dead_letters: dict[str, int] = field(default_factory=dict)

    @property
    def dead_letters_total(self) -> int:
        return sum(self.dead_letters.values())

    def add_dead(self, kind: str, n: int = 1) -> None:
        self.dead_letters[kind] = self.dead_letters.get(kind, 0) + n

    def merge(self, other: IngestCounters) -> IngestCounters:
        """Add `other` into self (in place) and return self, so totals fold: `total.merge(d.counts)`."""
        self.messages += other.messages
        self.readings_ok += other.readings_ok
        for kind, n in other.dead_letters.items():
            self.add_dead(kind, n)
        return self

    def as_dict(self) -> dict[str, Any]:
        return {"messages": self.messages, "readings_ok": self.readings_ok,
                "dead_letters_total": self.dead_letters_total,
                "dead_letters": dict(sorted(self.dead_letters.items()))}


@dataclass(frozen=True, slots=True)
class Decoded:
    """The readings of one or more messages (canonical units, arrival order) and what was refused."""

    batch: Batch
    dead_letters: list[DeadLetter]
    counts: IngestCounters


class _Msg(NamedTuple):
    """Where a reading came from (a NamedTuple: one is made per message, so it must be cheap)."""

    src: str  # dead-letter source
    rt: ReadingTopic
    received_ns: int
    zone: int  # catalog zone code of the topic's network/zone, -1 if the catalog has no such zone
    sensor: str | None  # the topic's sensor id, if it names one


# where(i) -> (dead-letter source, raw text of the reading, received_ns, topic)
Where = Callable[[int], tuple[str, str, int, ReadingTopic]]


@dataclass
class _Columns:
    """Readings of one or more messages before validation, column by column."""

    sensors: list  # raw sensor ids (any JSON value; None = not given anywhere)
    times: np.ndarray  # int64 ns
    time_errors: dict[int, str]
    values: np.ndarray  # float64, raw units
    value_errors: dict[int, str]
    quality: np.ndarray  # uint8
    quality_errors: dict[int, str]
    units: list | None  # per-reading unit overrides, None entries = catalog unit
    topic_zone: np.ndarray | int  # catalog zone code of the (network, zone) the topic names; -1 unknown
    where: Where
    received: np.ndarray | int  # int64 ns: each reading's message received time (one int: all alike)


_FAILED = object()
_JSON_DECODE = json.JSONDecoder().decode  # JSON over MQTT is UTF-8 (RFC 8259); skips encoding sniffing
_BLANK = b" \t\r\n"


class Decoder:
    """Decodes messages against one catalog; holds the lookups built from it (build once, reuse)."""

    def __init__(self, catalog: Catalog, scheme: TopicScheme = DEFAULT_SCHEME, *,
                 max_future_s: float = DEFAULT_MAX_FUTURE_S) -> None:
        """max_future_s: readings stamped more than this ahead of their message's received time are
        dead-lettered as a bad time (`math.inf` turns the check off, e.g. for tests with a fake clock)."""
        self.catalog = catalog
        self.scheme = scheme
        self.max_future_s = max_future_s
        self._max_future_ns = _future_ns(max_future_s)
        self._index = catalog.index
        self._zone_index = {z: i for i, z in enumerate(catalog.zones)}
        self._unit_cache: dict[tuple[int, str], tuple[float, float] | str] = {}
        self._topic_cache: dict[str, tuple[ReadingTopic, int, str | None] | TopicError] = {}

    # ---- entry points --------------------------------------------------------------------------
    def decode(self, topic: str, payload: bytes, received_ns: int, *, source: str | None = None,
               max_future_s: float | None = None) -> Decoded:
        """Decode one message. Never raises on bad input: it dead-letters instead. `max_future_s`
        overrides the decoder's own for this call."""
        return self._run([(topic, payload, received_ns, source)], max_future_s)

    def decode_many(self, messages: Iterable[Sequence], *, max_future_s: float | None = None) -> Decoded:
        """Decode many messages, each `(topic, payload, received_ns, ...)` (an ingest.mqtt_source.Message
        fits), into one Batch in arrival order. Runs of single-reading messages are validated as one
        column set, so a stream of one-reading messages costs a few microseconds per message, not tens.
        `max_future_s` overrides the decoder's own for this call."""
        return self._run(((m[0], m[1], m[2], None) for m in messages), max_future_s)

    def _run(self, items: Iterable[tuple[str, bytes, int, str | None]], max_future_s: float | None) -> Decoded:
        future_ns = self._max_future_ns if max_future_s is None else _future_ns(max_future_s)
        dead: list[DeadLetter] = []
        parts: list[Batch] = []
        rows: list[dict] = []  # pending single JSON readings ...
        msgs: list[_Msg] = []  # ... and where each came from
        n = 0

        def flush() -> None:
            if rows:
                parts.append(self._validate(self._singles_columns(rows, msgs), dead, future_ns))
                rows.clear()
                msgs.clear()

        for topic, payload, received_ns, source in items:
            n += 1
            src = source if source is not None else f"mqtt:{topic}"
            parsed = self._topic(topic)
            if isinstance(parsed, TopicError):
                dead.append(DeadLetter.of(src, f"{BAD_TOPIC}: {parsed}", payload, received_ns, "topic"))
                continue
            msg = _Msg(src, parsed[0], received_ns, parsed[1], parsed[2])
            body = payload.lstrip(_BLANK)
            if body.startswith(b"\xef\xbb\xbf"):
                body = body[3:].lstrip(_BLANK)
            if not body:
                dead.append(DeadLetter.of(src, f"{BAD_PAYLOAD}: empty message", payload, received_ns))
            elif body[:1] in (b"{", b"["):
                doc = self._load_json(body, payload, msg, dead)
                if doc is _FAILED:
                    continue
                if type(doc) is dict and "readings" not in doc and "values" not in doc:
                    rows.append(doc)
                    msgs.append(msg)
                    continue
                flush()
                for cols in self._doc_columns(doc, payload, msg, dead):
                    parts.append(self._validate(cols, dead, future_ns))
            else:
                flush()
                cols = self._lp_columns(body, payload, msg, dead)
                if cols is not None:
                    parts.append(self._validate(cols, dead, future_ns))
        flush()
        batch = parts[0] if len(parts) == 1 else Batch.concat(parts)
        counts = IngestCounters(messages=n, readings_ok=len(batch))
        for d in dead:
            counts.add_dead(reason_kind(d.reason))
        return Decoded(batch, dead, counts)

    def _topic(self, topic: str) -> tuple[ReadingTopic, int, str | None] | TopicError:
        """Parsed topic, its catalog zone code and default sensor (cached: topics repeat)."""
        hit = self._topic_cache.get(topic)
        if hit is None:
            try:
                rt = self.scheme.parse(topic)
                hit = (rt, self._zone_index.get(f"{rt.network}/{rt.zone}", -1), rt.sensor_id)
            except TopicError as exc:
                hit = exc
            if len(self._topic_cache) >= 100_000:  # bounded: topics are sensors, but be safe
                self._topic_cache.clear()
            self._topic_cache[topic] = hit
        return hit

    # ---- JSON ----------------------------------------------------------------------------------
    @staticmethod
    def _load_json(body: bytes, payload: bytes, msg: _Msg, dead: list[DeadLetter]) -> Any:
        try:
            return _JSON_DECODE(body.decode("utf-8"))
        except json.JSONDecodeError as exc:
            reason = f"{UNDECODABLE_JSON}: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        except (ValueError, RecursionError) as exc:  # invalid UTF-8, >4300-digit integers, deep nesting
            reason = f"{UNDECODABLE_JSON}: {str(exc)[:200]}"
        dead.append(DeadLetter.of(msg.src, reason, payload, msg.received_ns))
        return _FAILED

    def _singles_columns(self, rows: list[dict], msgs: list[_Msg]) -> _Columns:
        """Single-reading messages (possibly from many topics) as one column set."""
        sensors = [r.get("sensor_id", m.sensor) for r, m in zip(rows, msgs, strict=True)]
        times, time_errors = times_ns([r.get("time") for r in rows], [m.received_ns for m in msgs])
        values, value_errors = values_f64([r.get("value") for r in rows])
        quality, quality_errors = qualities([r.get("quality") for r in rows], len(rows))
        units = [r.get("unit") for r in rows]
        if len(msgs) == 1:
            topic_zone: np.ndarray | int = msgs[0].zone
            received: np.ndarray | int = msgs[0].received_ns
        else:
            topic_zone = np.array([m.zone for m in msgs], dtype=np.int64)
            received = np.array([m.received_ns for m in msgs], dtype=np.int64)

        def where(i: int) -> tuple[str, str, int, ReadingTopic]:
            m = msgs[i]
            return m.src, json.dumps(rows[i], ensure_ascii=False), m.received_ns, m.rt

        return _Columns(sensors, times, time_errors, values, value_errors, quality, quality_errors,
                        _no_units(units), topic_zone, where, received)

    def _doc_columns(self, doc: Any, payload: bytes, msg: _Msg, dead: list[DeadLetter]) -> list[_Columns]:
        """A JSON batch ({"readings": [...]} or a list) or one logger-form object."""
        if isinstance(doc, dict) and "readings" in doc:
            items = doc["readings"]
            if not isinstance(items, list):
                dead.append(DeadLetter.of(msg.src, f"{BAD_PAYLOAD}: \"readings\" must be a list", payload,
                                          msg.received_ns, "readings"))
                return []
            indexed = True
        elif isinstance(doc, list):
            items, indexed = doc, True
        else:
            items, indexed = [doc], False

        if set(map(type, items)) <= {dict} and not any("values" in item for item in items):
            # the common case, kept free of per-item Python work
            return [self._row_columns(items, None, msg)] if items else []
        out: list[_Columns] = []
        rows: list[dict] = []
        positions: list[int] = []
        for i, item in enumerate(items):
            label = f"[{i}]" if indexed else ""
            if not isinstance(item, dict):
                dead.append(DeadLetter.of(msg.src + label, f"{BAD_PAYLOAD}: a reading must be a JSON object, "
                                          f"not {type(item).__name__}", json.dumps(item), msg.received_ns))
            elif "values" in item:
                if rows:
                    out.append(self._row_columns(rows, positions, msg))
                    rows, positions = [], []
                cols = self._logger_columns(item, label, msg, dead)
                if cols is not None:
                    out.append(cols)
            else:
                rows.append(item)
                positions.append(i)
        if rows:
            out.append(self._row_columns(rows, positions, msg))
        return out

    def _row_columns(self, rows: list[dict], positions: list[int] | None, msg: _Msg) -> _Columns:
        """The readings of one JSON batch; `positions` maps row -> index in the message's list."""
        default = msg.sensor
        sensors = [r.get("sensor_id", default) for r in rows]
        times, time_errors = times_ns([r.get("time") for r in rows], msg.received_ns)
        values, value_errors = values_f64([r.get("value") for r in rows])
        quality, quality_errors = qualities([r.get("quality") for r in rows], len(rows))
        units = [r.get("unit") for r in rows]

        def where(i: int) -> tuple[str, str, int, ReadingTopic]:
            pos = i if positions is None else positions[i]
            return f"{msg.src}[{pos}]", json.dumps(rows[i], ensure_ascii=False), msg.received_ns, msg.rt

        return _Columns(sensors, times, time_errors, values, value_errors, quality, quality_errors,
                        _no_units(units), msg.zone, where, msg.received_ns)

    def _logger_columns(self, item: dict, label: str, msg: _Msg, dead: list[DeadLetter]) -> _Columns | None:
        """The compact logger form: one sensor, a start time, a fixed interval, a list of values."""
        raw_values = item["values"]
        problem: tuple[str, str, str] | None = None
        start = interval_ns = 0
        if not isinstance(raw_values, list):
            problem = (BAD_PAYLOAD, "values", "\"values\" must be a list")
        elif "start" not in item:
            problem = (BAD_TIME, "start", "missing (the logger form needs start and interval_s)")
        else:
            try:
                start = one_time_ns(item["start"], msg.received_ns)
            except (ValueError, OverflowError) as exc:
                problem = (BAD_TIME, "start", str(exc))
            iv = item.get("interval_s")
            if problem is None:
                if type(iv) not in NUMBER_TYPES or not (0 < iv < 1e9):
                    problem = (BAD_TIME, "interval_s", f"must be a positive number of seconds, not {iv!r}")
                else:
                    interval_ns = round(iv * NS)
        if problem is not None:
            kind, fld, detail = problem
            text = json.dumps(item, ensure_ascii=False)
            dead.append(DeadLetter.of(msg.src + label, f"{kind}: {detail}", text, msg.received_ns, fld))
            return None
        n = len(raw_values)
        sensor = item.get("sensor_id", msg.sensor)
        try:
            times = start + np.arange(n, dtype=np.int64) * interval_ns
            time_errors: dict[int, str] = {}
        except OverflowError:
            times = np.zeros(n, dtype=np.int64)
            time_errors = dict.fromkeys(range(n), f"start {item['start']!r} does not fit in int64 ns")
        values, value_errors = values_f64(raw_values)
        q = one_quality(item.get("quality"))
        quality = np.full(n, q or 0, dtype=np.uint8)
        bad_q = f"{json.dumps(item.get('quality'), default=str)[:64]} is not good/uncertain/bad or 0/1/2"
        quality_errors = {} if q is not None else dict.fromkeys(range(n), bad_q)
        unit = item.get("unit")

        def where(i: int) -> tuple[str, str, int, ReadingTopic]:
            one = {"sensor_id": sensor, "time": _show_time(int(times[i])), "value": raw_values[i]}
            if unit is not None:
                one["unit"] = unit
            return f"{msg.src}{label}[{i}]", json.dumps(one, ensure_ascii=False, default=str), \
                msg.received_ns, msg.rt

        return _Columns([sensor] * n, times, time_errors, values, value_errors, quality, quality_errors,
                        None if unit is None else [unit] * n, msg.zone, where, msg.received_ns)

    # ---- line protocol ---------------------------------------------------------------------------
    def _lp_columns(self, body: bytes, payload: bytes, msg: _Msg, dead: list[DeadLetter]) -> _Columns | None:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            reason = f"{UNDECODABLE_LP}: invalid UTF-8 at byte {exc.start}"
            dead.append(DeadLetter.of(msg.src, reason, payload, msg.received_ns))
            return None
        recs: list[tuple[int, str, dict[str, str], dict[str, object], int | None]] = []
        for lineno, raw_line in enumerate(text.split("\n"), start=1):
            line = raw_line.strip()
            if not line or line[0] == "#":
                continue
            try:
                tags, fields, ts = parse_line(line)
            except LineProtocolError as exc:
                dead.append(DeadLetter.of(f"{msg.src}:{lineno}", f"{UNDECODABLE_LP}: {exc}", line,
                                          msg.received_ns))
                continue
            recs.append((lineno, line, tags, fields, ts))
        if not recs:
            return None
        default = msg.sensor
        sensors = [r[2].get("sensor_id", r[2].get("sensor", default)) for r in recs]
        units = [r[2].get("unit") for r in recs]
        raw_times = [msg.received_ns if r[4] is None else r[4] for r in recs]
        try:
            times, time_errors = np.array(raw_times, dtype=np.int64), {}
        except OverflowError:
            times = np.array([t if INT64_MIN <= t <= INT64_MAX else 0 for t in raw_times], dtype=np.int64)
            time_errors = {i: f"timestamp {t} does not fit in int64 ns" for i, t in enumerate(raw_times)
                           if not INT64_MIN <= t <= INT64_MAX}
        values, value_errors = values_f64([r[3].get("value") for r in recs])
        quality, quality_errors = qualities([r[3].get("quality") for r in recs], len(recs))

        def where(i: int) -> tuple[str, str, int, ReadingTopic]:
            return f"{msg.src}:{recs[i][0]}", recs[i][1], msg.received_ns, msg.rt

        return _Columns(sensors, times, time_errors, values, value_errors, quality, quality_errors,
                        _no_units(units), msg.zone, where, msg.received_ns)

    # ---- validation and conversion (columnar) ---------------------------------------------------
    def _sensor_indices(self, sensors: list) -> np.ndarray:
        get = self._index.get
        try:
            idx = [get(s, -1) for s in sensors]
        except TypeError:  # an unhashable sensor_id (list/object)
            idx = [get(s, -1) if isinstance(s, str) else -1 for s in sensors]
        return np.array(idx, dtype=np.int64)

    def _unit(self, qcode: int, unit: object) -> tuple[float, float] | str:
        """(scale, offset) for a payload unit, or the reason it is refused; cached per (quantity, unit)."""
        key = (qcode, unit)
        hit = self._unit_cache.get(key) if type(unit) is str else None
        if hit is None:
            if not isinstance(unit, str):
                return f"unit must be a string, not {json.dumps(unit, default=str)[:64]}"
            try:
                hit = conversion(QUANTITIES[qcode], unit)
            except UnitError as exc:
                hit = str(exc)
            if len(self._unit_cache) < 10_000:
                self._unit_cache[key] = hit
        return hit

    def _validate(self, cols: _Columns, dead: list[DeadLetter], future_ns: int | None) -> Batch:
        """Check and convert columns; append one dead letter per refused reading (first failure wins).
        future_ns: how far (ns) a time may be ahead of its received time; None = no limit."""
        cat = self.catalog
        n = len(cols.sensors)
        idx = self._sensor_indices(cols.sensors)
        known = idx >= 0
        safe = np.where(known, idx, 0)
        err: dict[int, tuple[str, str, str]] = {}

        if not known.all():
            for i in np.flatnonzero(~known).tolist():
                s = cols.sensors[i]
                detail = "no sensor_id in the reading or the topic" if s is None else \
                    f"{json.dumps(s, default=str)[:64]} is not in the catalog"
                err[i] = (UNKNOWN_SENSOR, "sensor_id", detail)
        wrong_zone = known & (cat.zone_code[safe] != cols.topic_zone)
        if wrong_zone.any():
            for i in np.flatnonzero(wrong_zone).tolist():
                s = cat.sensors[int(idx[i])]
                rt = cols.where(i)[3]
                err.setdefault(i, (WRONG_ZONE, "sensor_id", f"{s.sensor_id} is in {s.network}/{s.zone} per "
                                   f"the catalog but was published for {rt.network}/{rt.zone}"))
        times = cols.times
        for i, detail in cols.time_errors.items():
            err.setdefault(i, (BAD_TIME, "time", detail))
        bad_time = (times < MIN_TIME_NS) | (times >= MAX_TIME_NS)
        if bad_time.any():
            for i in np.flatnonzero(bad_time).tolist():
                if i not in cols.time_errors:
                    err.setdefault(i, (BAD_TIME, "time", f"{_show_time(int(times[i]))} is outside "
                                       f"{iso(MIN_TIME_NS)}..{iso(MAX_TIME_NS)} (clock not set?)"))
        if future_ns is not None:
            # clipped so the sum cannot wrap around (future_ns < 2**62 too); times are int64 already
            limit = np.clip(cols.received, -(2**62), 2**62) + future_ns
            ahead = (times > limit) & ~bad_time
            if ahead.any():
                for i in np.flatnonzero(ahead).tolist():
                    t = int(times[i])
                    r = int(cols.received if isinstance(cols.received, int) else cols.received[i])
                    err.setdefault(i, (BAD_TIME, "time", f"{_show_time(t)} is {_span(t - r)} ahead of the "
                                       f"received time {_show_time(r)} (clock ahead?)"))
        for i, detail in cols.value_errors.items():
            err.setdefault(i, (BAD_VALUE, "value", detail))
        for i, detail in cols.quality_errors.items():
            err.setdefault(i, (BAD_QUALITY, "quality", detail))

        if cols.units is None:
            canon = cols.values * cat.scale[safe] + cat.offset[safe]
        else:
            scale = cat.scale[safe]  # fancy indexing copies
            offset = cat.offset[safe]
            qcodes = cat.quantity_code[safe].tolist()
            unit_of = self._unit
            for i, unit in enumerate(cols.units):
                if unit is None:
                    continue
                conv = unit_of(qcodes[i], unit)
                if type(conv) is str:
                    err.setdefault(i, (UNKNOWN_UNIT, "unit", conv))
                else:
                    scale[i], offset[i] = conv
            canon = cols.values * scale + offset

        lo, hi = cat.lo[safe], cat.hi[safe]
        with np.errstate(invalid="ignore"):
            outside = ~((canon >= lo) & (canon <= hi))
        if outside.any():
            for i in np.flatnonzero(outside).tolist():
                if i in err:
                    continue
                unit = CANONICAL_UNIT[QUANTITIES[int(cat.quantity_code[safe[i]])]]
                err[i] = (OUT_OF_RANGE, "value", f"{canon[i]:.6g} {unit} is outside "
                          f"[{lo[i]:.6g}, {hi[i]:.6g}] {unit} (raw {cols.values[i]:.6g})")

        if not err:
            return Batch(idx.astype(np.int32), times, canon, cols.quality)
        for i in sorted(err):
            kind, fld, detail = err[i]
            src, text, received_ns, _ = cols.where(i)
            dead.append(DeadLetter.of(src, f"{kind}: {detail}", text, received_ns, fld))
        keep = np.ones(n, dtype=bool)
        keep[list(err)] = False
        return Batch(idx[keep].astype(np.int32), times[keep], canon[keep], cols.quality[keep])


def _no_units(units: list) -> list | None:
    """None when no reading overrides its unit (the common case: one vectorised conversion)."""
    return None if set(map(type, units)) == {type(None)} else units


def _future_ns(max_future_s: float) -> int | None:
    """max_future_s as ns; None for no limit (infinity, or so large it could never matter)."""
    if not max_future_s >= 0:  # also refuses NaN
        raise ValueError(f"max_future_s must be >= 0, not {max_future_s!r}")
    return round(max_future_s * NS) if max_future_s < 1e9 else None  # 1e9 s: ~32 years


def _span(ns: int) -> str:
    """A duration for people: 42 s, 15 min, 3.5 h, 36525 days."""
    s = ns / NS
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    if s < 2 * 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.0f} days"


def _show_time(ns: int) -> str:
    try:
        return iso(ns)
    except (ValueError, OverflowError, OSError):
        return f"{ns} ns"


# ---- convenience -----------------------------------------------------------------------------------
_cached: tuple[Catalog, TopicScheme, Decoder] | None = None


def _decoder(catalog: Catalog, scheme: TopicScheme) -> Decoder:
    """The Decoder of the catalog used last (built again when another catalog object is passed)."""
    global _cached
    cached = _cached
    if cached is None or cached[0] is not catalog or cached[1] != scheme:
        cached = _cached = (catalog, scheme, Decoder(catalog, scheme))
    return cached[2]


def decode(topic: str, payload: bytes, catalog: Catalog, received_ns: int, *,
           scheme: TopicScheme = DEFAULT_SCHEME, source: str | None = None,
           max_future_s: float = DEFAULT_MAX_FUTURE_S) -> Decoded:
    """Decode one message (see the module docstring); never raises on bad input."""
    return _decoder(catalog, scheme).decode(topic, payload, received_ns, source=source, max_future_s=max_future_s)


def decode_many(messages: Iterable[Sequence], catalog: Catalog, *,
                scheme: TopicScheme = DEFAULT_SCHEME, max_future_s: float = DEFAULT_MAX_FUTURE_S) -> Decoded:
    """Decode `(topic, payload, received_ns, ...)` items (e.g. MqttSource.poll() output) into one Batch."""
    return _decoder(catalog, scheme).decode_many(messages, max_future_s=max_future_s)
