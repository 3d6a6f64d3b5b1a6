"""The wire format of the Kafka path: readings keyed by zone, watermark ticks, and what workers emit.

Readings travel as one JSON object per zone and micro-batch, columnar so a thousand readings cost one
message, with sensor ids (not catalog indices, which differ between catalog versions) and values already
in canonical units:

    key   b"water/DMA1"
    value {"sensor": ["W-P1", ...], "t": [1735689600000000000, ...], "v": [312.5, ...], "q": [0, ...]}

A tick says "upstream has seen event time up to here": {"watermark": 1735689600000000000}. Producers send
one per zone key after their readings, so an engine that only ever sees one zone still knows how far the
whole stream has got (for deadman sweeps and zone buckets), as one engine over every zone would.

Decoding never trusts the payload: every problem is a `WireError` naming the field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from alerts.model import AlertChange
from sentinel.catalog import Catalog
from sentinel.deadletter import DeadLetter
from sentinel.detections import Detection
from sentinel.readings import Batch
from sentinel.severity import Severity

_COLUMNS = ("sensor", "t", "v", "q")


class WireError(ValueError):
    """A Kafka message that is not what the wire format says; `field` names the culprit."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


@dataclass(frozen=True)
class ZoneReadings:
    """Readings of one zone, in arrival order, canonical units."""

    sensor_id: list[str]
    time_ns: np.ndarray  # int64
    value: np.ndarray  # float64
    quality: np.ndarray  # uint8

    def __len__(self) -> int:
        return len(self.sensor_id)


@dataclass(frozen=True)
class Tick:
    watermark_ns: int


def zone_key(network: str, zone: str) -> bytes:
    return f"{network}/{zone}".encode()


def encode_readings(sensor_id: Sequence[str], time_ns: np.ndarray, value: np.ndarray,
                    quality: np.ndarray) -> bytes:
    # NaN/inf are not JSON: such values never leave the decoder (out of range), so none should get here
    return json.dumps({"sensor": list(sensor_id), "t": time_ns.tolist(), "v": value.tolist(),
                       "q": quality.tolist()}, separators=(",", ":"), allow_nan=False).encode()


def zone_records(catalog: Catalog, batch: Batch) -> list[tuple[bytes, bytes]]:
    """A batch (global catalog indices, canonical values) as one (key, value) record per zone present,
    each zone's readings in their arrival order."""
    if not len(batch):
        return []
    zone = catalog.zone_code[batch.sensor]
    order = np.argsort(zone, kind="stable")
    z_sorted = zone[order]
    cuts = np.flatnonzero(np.diff(z_sorted)) + 1
    ids = np.array([s.sensor_id for s in catalog.sensors], dtype=object)
    out = []
    for sel in np.split(order, cuts):
        key = catalog.zones[int(zone[sel[0]])].encode()
        out.append((key, encode_readings(ids[batch.sensor[sel]].tolist(), batch.time_ns[sel],
                                         batch.value[sel], batch.quality[sel])))
    return out


def encode_tick(watermark_ns: int) -> bytes:
    return json.dumps({"watermark": int(watermark_ns)}).encode()


def decode(value: bytes | None) -> ZoneReadings | Tick:
    if value is None:
        raise WireError("empty message (no value)")
    try:
        doc = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(f"undecodable JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise WireError(f"expected a JSON object, got {type(doc).__name__}")
    if "watermark" in doc:
        wm = doc["watermark"]
        if not isinstance(wm, int) or isinstance(wm, bool):
            raise WireError("watermark must be an integer of ns since the epoch", "watermark")
        return Tick(wm)
    missing = [c for c in _COLUMNS if c not in doc]
    if missing:
        raise WireError(f"missing field(s) {', '.join(missing)} (readings need sensor, t, v, q)", missing[0])
    cols = {c: doc[c] for c in _COLUMNS}
    for c, v in cols.items():
        if not isinstance(v, list):
            raise WireError(f"{c} must be a list", c)
    n = len(cols["sensor"])
    for c in _COLUMNS[1:]:
        if len(cols[c]) != n:
            raise WireError(f"{c} has {len(cols[c])} entries, sensor has {n}", c)
    if not all(isinstance(s, str) for s in cols["sensor"]):
        raise WireError("sensor ids must be strings", "sensor")
    try:
        t = np.array(cols["t"], dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise WireError("t must hold integers (ns since the epoch)", "t") from None
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in cols["t"]):
        raise WireError("t must hold integers (ns since the epoch)", "t")
    try:
        v = np.array(cols["v"], dtype=np.float64)
        q = np.array(cols["q"], dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise WireError("v must hold numbers and q small integers", "v") from None
    if n and not np.isfinite(v).all():
        raise WireError("v holds a non-finite number", "v")
    if n and ((q < 0) | (q > 2)).any():
        raise WireError("q must be 0 (good), 1 (uncertain) or 2 (bad)", "q")
    return ZoneReadings(list(cols["sensor"]), t, v, q.astype(np.uint8))


# -- what workers emit -----------------------------------------------------------------------------

def encode_detection(d: Detection) -> bytes:
    doc = asdict(d)
    doc["severity"] = int(d.severity) if d.severity is not None else None
    doc["value"] = _finite(d.value)
    doc["score"] = _finite(d.score)
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def decode_detection(value: bytes) -> Detection:
    doc: dict[str, Any] = json.loads(value)
    doc["severity"] = Severity(doc["severity"]) if doc["severity"] is not None else None
    doc["value"] = math.nan if doc["value"] is None else float(doc["value"])
    doc["score"] = math.nan if doc["score"] is None else float(doc["score"])
    return Detection(**doc)


def encode_alert_change(c: AlertChange) -> bytes:
    return json.dumps(c.to_state(), ensure_ascii=False, separators=(",", ":")).encode()


def decode_alert_change(value: bytes) -> AlertChange:
    return AlertChange.from_state(json.loads(value))


def encode_dead_letter(d: DeadLetter) -> bytes:
    return json.dumps(asdict(d), ensure_ascii=False, separators=(",", ":")).encode()


def decode_dead_letter(value: bytes) -> DeadLetter:
    return DeadLetter(**json.loads(value))


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None
