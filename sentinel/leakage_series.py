"""Readings -> per-zone net inflow and pressure on a grid of whole local days, for `sentinel.leakage`.

The same rules as the engine's zone flows (`rules/zone_flows.py`), done over a whole history at once:
each boundary meter's readings are averaged per bucket, a meter silent in a bucket holds its last mean
for up to `stale`, and a bucket where any boundary meter is unknown has no net inflow (NaN) rather
than a wrong one. Bad-quality and non-finite readings are left out. Pressure loggers are every water
`pressure` sensor of the zone, kept one row per logger.
"""

from __future__ import annotations

import numpy as np

from sentinel.catalog import Catalog
from sentinel.leakage import DAY_NS, NS, ZoneSeries
from sentinel.readings import QUALITY_BAD, Batch


def water_zones(catalog: Catalog) -> dict[str, dict[str, list[int]]]:
    """Water zone -> {"inlet", "outlet", "pressure": sensor indices}; zones without an inlet flow meter
    are left out (there is no inflow to account for)."""
    out: dict[str, dict[str, list[int]]] = {}
    for i, s in enumerate(catalog.sensors):
        if s.network != "water":
            continue
        z = out.setdefault(s.zone, {"inlet": [], "outlet": [], "pressure": []})
        if s.quantity == "flow" and s.role in ("inlet", "outlet"):
            z[s.role].append(i)
        elif s.quantity == "pressure":
            z["pressure"].append(i)
    return {name: z for name, z in sorted(out.items()) if z["inlet"]}


def day_grid(first_ns: int, last_ns: int, utc_offset_h: float) -> tuple[int, int]:
    """(local midnight at or before first_ns, local midnight after last_ns), both in UTC ns."""
    off = round(utc_offset_h * 3600 * NS)
    start = (first_ns + off) // DAY_NS * DAY_NS - off
    end = (last_ns + off) // DAY_NS * DAY_NS - off + DAY_NS
    return start, end


def bucket_means(batch: Batch, sensors: list[int], start_ns: int, n: int, step_s: float,
                 stale_s: float) -> np.ndarray:
    """(len(sensors), n) bucket means, each gap held from the last mean for up to `stale_s`; NaN beyond."""
    step_ns = round(step_s * NS)
    if not sensors or not len(batch):
        return np.full((len(sensors), n), np.nan)
    slot = np.full(max(max(sensors), int(batch.sensor.max())) + 1, -1, dtype=np.int64)
    slot[sensors] = np.arange(len(sensors))
    s = slot[batch.sensor]
    b = (batch.time_ns - start_ns) // step_ns
    keep = (s >= 0) & (b >= 0) & (b < n) & np.isfinite(batch.value) & (batch.quality < QUALITY_BAD)
    flat = s[keep] * n + b[keep]
    sums = np.bincount(flat, weights=batch.value[keep], minlength=len(sensors) * n).reshape(len(sensors), n)
    counts = np.bincount(flat, minlength=len(sensors) * n).reshape(len(sensors), n)
    with np.errstate(invalid="ignore"):
        mean = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    idx = np.arange(n)
    last = np.maximum.accumulate(np.where(counts > 0, idx, -1), axis=1)
    stale_buckets = max(1, int(stale_s // step_s))
    fresh = (last >= 0) & (idx - last <= stale_buckets)
    held = np.take_along_axis(mean, np.maximum(last, 0), axis=1)
    return np.where(fresh, held, np.nan)


def zone_series(catalog: Catalog, batch: Batch, *, step_s: float, stale_s: float,
                utc_offset_h: float) -> dict[str, ZoneSeries]:
    """Net inflow (m3/h) and pressures (kPa) of every water zone with an inlet meter, on whole local days."""
    zones = water_zones(catalog)
    if not len(batch) or not zones:
        return {}
    start, end = day_grid(int(batch.time_ns.min()), int(batch.time_ns.max()), utc_offset_h)
    n = int((end - start) // round(step_s * NS))
    out = {}
    for name, z in zones.items():
        flows = bucket_means(batch, z["inlet"] + z["outlet"], start, n, step_s, stale_s)
        sign = np.array([1.0] * len(z["inlet"]) + [-1.0] * len(z["outlet"]))
        net = (sign[:, None] * flows).sum(axis=0)  # NaN if any meter is unknown
        pressure = bucket_means(batch, z["pressure"], start, n, step_s, stale_s) if z["pressure"] else None
        out[name] = ZoneSeries(name, start, step_s, net, pressure)
    return out
