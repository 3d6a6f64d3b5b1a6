"""The InfluxDB schema of Lifeline Sentinel, and its line-protocol encoders.

Every point's timestamp is an *event* time (never the wall clock at write time), and InfluxDB keys a
point by measurement + tag set + time: a replayed, re-sent or re-spooled batch therefore overwrites
what is there instead of adding duplicates. Times are nanoseconds since the epoch, UTC.

Bucket `sentinel` (raw; `SENTINEL_INFLUX_BUCKET`)

``readings`` - one point per reading, exactly as stored by the SQLite store
    tags    network   water | heat | gas
            zone      DMA, heating loop or gas district (e.g. ``DMA1``)
            sensor    sensor id from the catalog
            quantity  pressure | flow | temperature | gas_concentration | level
    fields  value     float, canonical unit: kPa, m3/h, degC, %LEL, m (see `CANONICAL_UNIT`);
                      absent when the reading is NaN/inf (InfluxDB has no NaN)
            quality   integer: 0 good, 1 uncertain, 2 bad (stored, never evaluated)
    time    the reading's event time

``detections`` - one point per state change of a rule on a subject
    tags    network, zone, rule (rule id), kind (threshold, ewma, ...), subject (sensor id or zone),
            transition (raised | escalated | deescalated | cleared)
    fields  severity  integer 0-3: 0 cleared, 1 yellow 三级, 2 orange 二级, 3 red 一级
            value     float, the value the rule judged (absent if NaN)
            score     float, the rule's score, e.g. sigmas or CUSUM (absent if NaN)
            message   string
    time    the detection's event time

``alerts`` - one point per alert change (the alert history; the current state is the latest point)
    tags    network, zone, rule, subject, alert_id, change (opened | escalated | deescalated | cleared |
            reactivated | acknowledged | resolved)
    fields  state     string: firing | acknowledged | resolved
            severity  integer 1-3, the worst grade seen while open
            value     float (absent if NaN)
            message   string
            actor     string, the operator for acknowledged/manual resolves; "" when the engine decided
    time    the change's time

``dead_letters`` - input that could not be used (and points InfluxDB itself rejected)
    tags    reason    the reason's kind, the text before its first ':' (e.g. ``unknown sensor``,
                      ``bad payload``, ``influx rejected``)
            origin    where it came from, the source before its first ':' (``mqtt``, a file name,
                      ``influx``)
    fields  source    string, the full source (topic, file:line, bucket)
            field     string, the offending field ("" when none could be named)
            payload   string, the raw input (truncated to 4096 characters; newlines written as \\n)
            detail    string, the full reason
    time    received_ns + the letter's position in its batch, so two letters never overwrite each other

Bucket `sentinel_1m` (`DOWNSAMPLE_BUCKET`, long retention; created by ``sentinel influx init``)

``readings`` - 1-minute means of the raw ``readings``.value, written by the task `DOWNSAMPLE_TASK`
    tags    as raw readings; field ``value`` (float, mean); time = the minute's *start*.

Line-protocol details: tag keys are written sorted; tag values escape ``,``, ``=`` and space (newlines
become spaces, an empty tag is left out); string fields escape ``"`` and ``\\``; floats are written with
`repr`, the shortest text that reads back as the same double, so values survive the round trip bit
for bit; integers carry the ``i`` suffix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

import numpy as np

from sentinel.readings import Batch
from sentinel.units import CANONICAL_UNIT

if TYPE_CHECKING:
    from alerts.model import AlertChange
    from sentinel.catalog import Catalog
    from sentinel.deadletter import DeadLetter
    from sentinel.detections import Detection

# -- names other code (Grafana dashboards, queries, tests) imports ------------------------------------

BUCKET: Final = "sentinel"
DOWNSAMPLE_BUCKET: Final = "sentinel_1m"
DOWNSAMPLE_EVERY: Final = "1m"
DOWNSAMPLE_RETENTION_DAYS: Final = 400
DOWNSAMPLE_TASK: Final = "sentinel-readings-1m"

READINGS: Final = "readings"
DETECTIONS: Final = "detections"
ALERTS: Final = "alerts"
DEAD_LETTERS: Final = "dead_letters"
MEASUREMENTS: Final = (READINGS, DETECTIONS, ALERTS, DEAD_LETTERS)

READING_TAGS: Final = ("network", "quantity", "sensor", "zone")  # sorted, as written
READING_FIELDS: Final = ("value", "quality")
DETECTION_TAGS: Final = ("kind", "network", "rule", "subject", "transition", "zone")
DETECTION_FIELDS: Final = ("severity", "value", "score", "message")
ALERT_TAGS: Final = ("alert_id", "change", "network", "rule", "subject", "zone")
ALERT_FIELDS: Final = ("state", "severity", "value", "message", "actor")
DEAD_LETTER_TAGS: Final = ("origin", "reason")
DEAD_LETTER_FIELDS: Final = ("source", "field", "payload", "detail")

SEVERITY_CLEARED: Final = 0  # detections.severity when the condition cleared; 1-3 are Severity values
UNITS: Final = dict(CANONICAL_UNIT)  # quantity -> canonical unit of readings.value

# -- escaping ------------------------------------------------------------------------------------------

_TAG_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\ ", "\r": r"\ "})
_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\ ", "\r": r"\ "})
_STRING_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r"})


def escape_tag(text: str) -> str:
    """A tag key or value. A trailing backslash would escape the separator after it, so it is dropped."""
    return text.rstrip("\\").translate(_TAG_ESCAPES)


def escape_measurement(text: str) -> str:
    return text.translate(_MEASUREMENT_ESCAPES)


def string_field(text: str) -> str:
    """A quoted string field value; newlines are written as the two characters \\n so one point stays
    one line (the spool and the rejection bisection split batches on newlines)."""
    return '"' + text.translate(_STRING_ESCAPES) + '"'


def float_field(x: float) -> str | None:
    """Full-precision float text, or None for NaN/inf (InfluxDB cannot store them: the field is left out)."""
    return repr(float(x)) if math.isfinite(x) else None


def tag_set(tags: dict[str, str]) -> str:
    """``,k=v,...`` in key order; empty values are left out (InfluxDB rejects them)."""
    return "".join(f",{escape_tag(k)}={escape_tag(v)}" for k, v in sorted(tags.items()) if escape_tag(v))


def line(measurement: str, tags: dict[str, str], fields: dict[str, str | None], time_ns: int) -> str:
    """One point; `fields` hold already-encoded values (None = left out)."""
    body = ",".join(f"{escape_tag(k)}={v}" for k, v in fields.items() if v is not None)
    return f"{escape_measurement(measurement)}{tag_set(tags)} {body} {int(time_ns)}"


def measurement_of(lp_line: str) -> str:
    """The measurement a line writes to (for routing rejected lines); escapes are kept."""
    i = 0
    while i < len(lp_line):
        c = lp_line[i]
        if c == "\\":
            i += 2
            continue
        if c in ", ":
            return lp_line[:i]
        i += 1
    return lp_line


# -- readings: the hot path, vectorised over the batch ------------------------------------------------


class ReadingsEncoder:
    """Encodes `Batch`es of one catalog to ``readings`` lines.

    The per-sensor part (measurement and tag set) is built once; a batch is then numpy gathers plus a
    single formatting pass (``repr`` of each float), which measured faster than numpy's string ufuncs
    (about 1.2 M lines/s on the 2-core dev machine; see tests/test_influx_schema.py).
    """

    def __init__(self, catalog: Catalog) -> None:
        heads = []
        for s in catalog.sensors:
            tags = {"network": s.network, "zone": s.zone, "sensor": s.sensor_id, "quantity": s.quantity}
            heads.append(f"{READINGS}{tag_set(tags)} ")
        self._head = np.array(heads, dtype=object)
        self._value_head = np.array([h + "value=" for h in heads], dtype=object)
        self._quality = np.array([f",quality={q}i " for q in range(256)], dtype=object)
        self._quality_only = np.array([f"quality={q}i " for q in range(256)], dtype=object)

    def encode(self, batch: Batch) -> list[str]:
        if not len(batch):
            return []
        heads = self._value_head[batch.sensor].tolist()
        quality = self._quality[batch.quality].tolist()
        out = [f"{h}{v!r}{q}{t}" for h, v, q, t in
               zip(heads, batch.value.tolist(), quality, batch.time_ns.tolist(), strict=True)]
        bad = np.flatnonzero(~np.isfinite(batch.value))
        for i in bad.tolist():  # rare: NaN/inf readings keep their quality, without a value field
            out[i] = f"{self._head[batch.sensor[i]]}{self._quality_only[batch.quality[i]]}{batch.time_ns[i]}"
        return out


# -- the other measurements: small volumes, plain Python -----------------------------------------------


def encode_detections(detections: Sequence[Detection]) -> list[str]:
    return [line(DETECTIONS,
                 {"network": d.network, "zone": d.zone, "rule": d.rule_id, "kind": d.kind, "subject": d.subject,
                  "transition": d.transition},
                 {"severity": f"{int(d.severity) if d.severity else SEVERITY_CLEARED}i",
                  "value": float_field(d.value), "score": float_field(d.score), "message": string_field(d.message)},
                 d.time_ns) for d in detections]


def encode_alert_changes(changes: Sequence[AlertChange]) -> list[str]:
    out = []
    for c in changes:
        a = c.alert
        out.append(line(ALERTS,
                        {"network": a.network, "zone": a.zone, "rule": a.rule_id, "subject": a.subject,
                         "alert_id": a.alert_id, "change": c.change},
                        {"state": string_field(a.state), "severity": f"{int(a.severity)}i",
                         "value": float_field(a.value), "message": string_field(a.message),
                         "actor": string_field(c.actor or "")},
                        c.time_ns))
    return out


def reason_kind(reason: str) -> str:
    return reason.split(":", 1)[0].strip()[:100] or "unknown"


def origin_of(source: str) -> str:
    return source.split(":", 1)[0].strip()[:100] or "unknown"


def encode_dead_letters(letters: Sequence[DeadLetter]) -> list[str]:
    return [line(DEAD_LETTERS, {"reason": reason_kind(d.reason), "origin": origin_of(d.source)},
                 {"source": string_field(d.source), "field": string_field(d.field or ""),
                  "payload": string_field(d.payload), "detail": string_field(d.reason)},
                 d.received_ns + i) for i, d in enumerate(letters)]
