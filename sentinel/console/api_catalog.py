"""Sensors, zones (with their worst open alert) and a sensor's readings over time, for the map and charts."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Annotated

import numpy as np
from fastapi import APIRouter, HTTPException, Path, Query, Request

from sentinel.catalog import Sensor
from sentinel.console.auth import Viewer
from sentinel.console.context import console
from sentinel.console.errors import AUTH, errs
from sentinel.console.models import LABEL, NetworkName, ReadingsOut, SensorOut, ZoneOut
from sentinel.console.params import when
from sentinel.readings import NS
from sentinel.severity import Severity
from sentinel.units import CANONICAL_UNIT

router = APIRouter(tags=["catalog"])
SensorId = Annotated[str, Path(max_length=128, pattern=LABEL)]
DEFAULT_SPAN_NS = 6 * 3600 * NS
MAX_SPAN_NS = 31 * 86400 * NS


def sensor_out(s: Sensor) -> SensorOut:
    return SensorOut(sensor_id=s.sensor_id, network=s.network, zone=s.zone, quantity=s.quantity, unit=s.unit,
                     canonical_unit=CANONICAL_UNIT[s.quantity], role=s.role, interval_s=s.interval_s, lat=s.lat,
                     lon=s.lon, tags=list(s.tags))


@router.get("/api/sensors", response_model=list[SensorOut], responses=errs(*AUTH))
def list_sensors(request: Request, p: Viewer, network: NetworkName | None = None,
                 zone: Annotated[str | None, Query(max_length=128)] = None) -> list[SensorOut]:
    return [sensor_out(s) for s in console(request).catalog.sensors
            if (network is None or s.network == network) and (zone is None or s.zone == zone)]


@router.get("/api/sensors/{sensor_id}", response_model=SensorOut, responses=errs(*AUTH, 404))
def get_sensor(request: Request, sensor_id: SensorId, p: Viewer) -> SensorOut:
    cat = console(request).catalog
    if sensor_id not in cat.index:
        raise HTTPException(404, f"no sensor {sensor_id!r} in the catalog")
    return sensor_out(cat.get(sensor_id))


def _downsample(t: np.ndarray, v: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep each bucket's lowest and highest reading: a burst's dip survives any zoom level."""
    buckets = np.array_split(np.arange(len(t)), max(1, max_points // 2))
    keep: list[int] = []
    for idx in buckets:
        vals = v[idx]
        if np.isnan(vals).all():
            keep.append(int(idx[0]))
            continue
        keep.extend(sorted({int(idx[np.nanargmin(vals)]), int(idx[np.nanargmax(vals)])}))
    sel = np.array(keep, dtype=np.int64)
    return t[sel], v[sel]


@router.get("/api/sensors/{sensor_id}/readings", response_model=ReadingsOut, responses=errs(*AUTH, 404, 503))
def readings(request: Request, sensor_id: SensorId, p: Viewer,
             start: Annotated[str | None, Query(max_length=40, description="ISO-8601 or epoch; default end - 6 h")]
             = None,
             end: Annotated[str | None, Query(max_length=40, description="ISO-8601 or epoch; default now")] = None,
             max_points: Annotated[int, Query(ge=10, le=10_000)] = 1000) -> ReadingsOut:
    """A sensor's readings in its canonical unit (kPa, m3/h, degC, %LEL, m); long ranges are thinned to
    `max_points` keeping each stretch's minimum and maximum."""
    con = console(request)
    if sensor_id not in con.catalog.index:
        raise HTTPException(404, f"no sensor {sensor_id!r} in the catalog")
    s = con.catalog.get(sensor_id)
    end_ns = when(end, "end")
    start_ns = when(start, "start")
    if end_ns is None:
        end_ns = (start_ns + DEFAULT_SPAN_NS) if start_ns is not None else time.time_ns()
    if start_ns is None:
        start_ns = end_ns - DEFAULT_SPAN_NS
    if not 0 < end_ns - start_ns <= MAX_SPAN_NS:
        raise HTTPException(422, "start must be before end, at most 31 days apart")
    t, v = con.reader.readings(sensor_id, start_ns, end_ns + 1)
    limit = min(max_points, con.cfg.readings_max_points)
    thinned = len(t) > limit
    if thinned:
        t, v = _downsample(t, v, limit)
    return ReadingsOut(sensor_id=sensor_id, quantity=s.quantity, unit=CANONICAL_UNIT[s.quantity], start_ns=start_ns,
                       end_ns=end_ns, time_ns=t.tolist(),
                       value=[None if np.isnan(x) else float(x) for x in v.tolist()], downsampled=thinned)


@router.get("/api/zones", response_model=list[ZoneOut], responses=errs(*AUTH, 503))
def zones(request: Request, p: Viewer) -> list[ZoneOut]:
    """Every zone with its worst open alert, open counts per grade, centre (where sensors have coordinates)
    and whether a silence covers the whole zone."""
    con = console(request)
    now = time.time_ns()
    worst: dict[str, Severity] = {}
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"red": 0, "orange": 0, "yellow": 0})
    for a in con.reader.alerts(state="open", limit=100_000):
        key = f"{a.network}/{a.zone}"
        counts[key][a.severity.label] += 1
        worst[key] = max(worst.get(key, a.severity), a.severity)
    silenced = set()
    for s in con.silences.book.active(now):
        m = s.matchers
        if set(m) <= {"network", "zone"} and "zone" in m:
            silenced |= {z for z in con.catalog.zones if z.split("/", 1)[1] == m["zone"]
                         and ("network" not in m or z.startswith(m["network"] + "/"))}
        elif set(m) == {"network"}:
            silenced |= {z for z in con.catalog.zones if z.startswith(m["network"] + "/")}
    members: dict[str, list[Sensor]] = defaultdict(list)
    for s in con.catalog.sensors:
        members[f"{s.network}/{s.zone}"].append(s)
    out = []
    for key in con.catalog.zones:
        net, zone = key.split("/", 1)
        located = [s for s in members[key] if s.lat is not None and s.lon is not None]
        lat = float(np.mean([s.lat for s in located])) if located else None
        lon = float(np.mean([s.lon for s in located])) if located else None
        out.append(ZoneOut(key=key, network=net, zone=zone, sensors=len(members[key]), lat=lat, lon=lon,
                           worst=worst[key].label if key in worst else None, open=counts[key],
                           silenced=key in silenced))
    return out
