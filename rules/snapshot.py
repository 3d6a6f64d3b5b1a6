"""Engine state as named arrays: saved on shutdown, restored on start, so a restart is not hours blind.

The state's nested dicts and dataclasses are flattened to `path -> ndarray`; restoring walks a fresh
state of the current engine and fills every array whose path, rule fingerprint and shape still match,
so a changed rule simply starts fresh while the others keep what they learned.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from rules.engine import Engine, EngineState
from rules.levels import NO_TIME
from sentinel.catalog import Catalog
from sentinel.errors import InputError

log = logging.getLogger(__name__)

_META = "__meta__"


def _walk(obj: Any, prefix: str, out: dict[str, np.ndarray]) -> None:
    if isinstance(obj, np.ndarray):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _walk(v, f"{prefix}/{k}", out)
    elif dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            _walk(getattr(obj, f.name), f"{prefix}/{f.name}", out)


def catalog_fingerprint(catalog: Catalog) -> str:
    """Which sensor is at which index, with its zone and role: state only fits the catalog it came from."""
    ids = "\n".join(f"{s.sensor_id},{s.network},{s.zone},{s.quantity},{s.role}" for s in catalog.sensors)
    return hashlib.sha256(ids.encode()).hexdigest()[:16]


def flatten(state: EngineState, engine: Engine | None = None) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    _walk(state.rules, "rules", arrays)
    if state.zone_flows is not None:
        _walk(state.zone_flows, "zone_flows", arrays)
    arrays["last_t"] = state.last_t
    meta = {
        "catalog": catalog_fingerprint(engine.catalog) if engine is not None else None,
        "watermark": state.watermark, "first_wm": state.first_wm, "zone_fingerprint": state.zone_fingerprint,
        "zone_next_final": state.zone_flows.next_final if state.zone_flows else None,
        "zone_late": state.zone_flows.late if state.zone_flows else 0,
        "fingerprints": {rid: rs.fingerprint for rid, rs in state.rules.items()},
    }
    arrays[_META] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    return arrays


def _other_catalog(engine: Engine, arrays: dict[str, np.ndarray], meta: dict) -> bool:
    saved = meta.get("catalog")
    return len(arrays["last_t"]) != len(engine.catalog) or (
        saved is not None and saved != catalog_fingerprint(engine.catalog))


def misfits(engine: Engine, arrays: dict[str, np.ndarray]) -> list[str]:
    """What of a saved state `restore` would not carry over to this engine, in words: all of it when the
    catalog differs, else each rule that is new or changed since (it starts fresh), and the zone grid."""
    meta = json.loads(bytes(arrays[_META]).decode())
    if _other_catalog(engine, arrays, meta):
        return ["it was saved for another sensor catalog"]
    saved = meta["fingerprints"]
    problems = [f"rule {rid} {'is new' if rid not in saved else 'changed'} since it was saved"
                for c in engine.rules if saved.get(rid := c.detector.rule.id) != c.fingerprint]
    if meta["zone_fingerprint"] != engine.zone_fingerprint:
        problems.append("the zone flow grid (zone settings, meters, zone rules' needs) changed since it was saved")
    return problems


def restore(engine: Engine, arrays: dict[str, np.ndarray]) -> EngineState:
    meta = json.loads(bytes(arrays[_META]).decode())
    state = engine.new_state()
    if _other_catalog(engine, arrays, meta):
        return state  # misfits() said so
    fresh: dict[str, np.ndarray] = {}
    _walk(state.rules, "rules", fresh)
    same_zones = meta["zone_fingerprint"] == state.zone_fingerprint and state.zone_flows is not None
    if same_zones:
        _walk(state.zone_flows, "zone_flows", fresh)
        state.zone_flows.next_final = meta["zone_next_final"]
        state.zone_flows.late = meta["zone_late"]
    for path, target in fresh.items():
        if path.startswith("rules/"):
            rid = path.split("/", 2)[1]
            if meta["fingerprints"].get(rid) != state.rules[rid].fingerprint:
                continue
        saved = arrays.get(path)
        if saved is not None and saved.shape == target.shape:
            if saved.dtype == target.dtype:
                target[...] = saved
            elif (converted := _narrowed(saved, target.dtype)) is not None:
                target[...] = converted
    state.last_t[...] = arrays["last_t"]
    state.watermark = int(meta["watermark"]) if meta["watermark"] is not None else NO_TIME
    state.first_wm = int(meta["first_wm"]) if meta["first_wm"] is not None else NO_TIME
    return state


def _narrowed(saved: np.ndarray, dtype: np.dtype) -> np.ndarray | None:
    """An integer array saved by a release that kept it wider (history-ring bucket marks were int64),
    in `dtype` if every value fits, its minimum (the "none" mark) mapped to the new minimum; else None."""
    if saved.dtype.kind != "i" or np.dtype(dtype).kind != "i":
        return None
    old_min, new = np.iinfo(saved.dtype).min, np.iinfo(dtype)
    unset = saved == old_min
    values = saved[~unset]
    if values.size and (values.min() < new.min or values.max() > new.max):
        return None
    return np.where(unset, new.min, saved).astype(dtype)


def to_bytes(state: EngineState, extra: dict | None = None, engine: Engine | None = None) -> bytes:
    """The state (and an optional JSON-able `extra`, e.g. the alert book) as one .npz blob: a file on
    disk for one process, a Faust table value per zone for many."""
    arrays = flatten(state, engine)
    if extra is not None:
        arrays["__extra__"] = np.frombuffer(json.dumps(extra).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **{k.replace("/", "|"): v for k, v in arrays.items()})
    return buf.getvalue()


def _arrays(blob: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        return {k.replace("|", "/"): data[k] for k in data.files}


def extra_of(blob: bytes) -> dict | None:
    """The JSON saved beside a state (the alert book), without fitting the state to an engine."""
    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        return json.loads(bytes(data["__extra__"]).decode()) if "__extra__" in data.files else None


def from_bytes(blob: bytes, engine: Engine, *, source: str = "") -> tuple[EngineState, dict | None]:
    """The state in `blob`, fitted to `engine`; what does not fit starts fresh, and is logged as a warning
    naming `source` (a file, a zone key)."""
    arrays = _arrays(blob)
    extra = json.loads(bytes(arrays.pop("__extra__")).decode()) if "__extra__" in arrays else None
    for problem in misfits(engine, arrays):
        log.warning("%s: %s: it starts fresh", source or "saved engine state", problem)
    return restore(engine, arrays), extra


def save(path: str | Path, state: EngineState, extra: dict | None = None, engine: Engine | None = None) -> None:
    """Atomically write the state (and an optional JSON-able `extra`, e.g. the alert book)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(to_bytes(state, extra, engine))
    tmp.replace(path)


def load(path: str | Path, engine: Engine, *, strict: bool = False) -> tuple[EngineState, dict | None]:
    """The state saved at `path`, fitted to `engine`. `strict`: raise InputError, naming the file and what
    does not fit, rather than start a rule (or, for another catalog, everything) fresh; for replays from a
    learned state, whose results would otherwise quietly be a cold start's."""
    blob = Path(path).read_bytes()
    if strict:
        try:
            problems = misfits(engine, _arrays(blob))
        except (ValueError, KeyError, OSError, zipfile.BadZipFile) as exc:
            raise InputError("not a saved engine state (one from `sentinel learn` or `sentinel run --state`)",
                             source=str(path)) from exc
        if problems:
            raise InputError("; ".join(problems) + ": learn again with this catalog and these rules",
                             source=str(path))
    return from_bytes(blob, engine, source=str(path))
