"""Zone net inflow (inlets minus outlets) on a fixed event-time grid, for zone-level rules.

Pressure loggers can ride along (`with_pressure`): their bucket means reach zone rules that read a
burst's fingerprint (inflow up, pressures down) on the same grid.

Each meter's readings are averaged per bucket; a bucket is final once the watermark is `lateness`
past its end, and readings for final buckets are late. A meter silent in a bucket holds its last mean
for up to `stale`. Because finality depends only on the stream's prefix watermark, the buckets are the
same whatever the batch size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rules.schema import Settings
from sentinel.catalog import ROLES, Catalog

_INLET, _OUTLET = ROLES.index("inlet"), ROLES.index("outlet")
PRESSURE, FLOW = 0, 1  # indices in sentinel.units.QUANTITIES


def pressure_members(catalog: Catalog) -> np.ndarray:
    """Catalog indices of the pressure sensors, in the order FinalBucket.pressure lists them."""
    return np.flatnonzero(catalog.quantity_code == PRESSURE)


@dataclass
class ZoneFlowState:
    next_final: int | None  # first bucket id not yet final
    sums: np.ndarray  # (members, ring)
    counts: np.ndarray
    last_mean: np.ndarray  # (members,)
    last_bucket: np.ndarray  # int64
    late: int = 0


@dataclass(frozen=True)
class FinalBucket:
    bucket: int
    end_ns: int
    net: np.ndarray  # per zone code; NaN where a meter is missing or the zone has none
    pressure: np.ndarray  # per pressure_members(catalog) entry (empty unless with_pressure); NaN when stale
    # per zone code: a meter sent nothing in this bucket and its last value was carried into `net`; while
    # the zone's other meters move (a valve shifting water between zones), that makes a one-bucket step
    carried: np.ndarray | None = None


class ZoneFlows:
    def __init__(self, catalog: Catalog, settings: Settings, *, with_pressure: bool = False) -> None:
        is_flow = catalog.quantity_code == FLOW
        boundary = (catalog.role_code == _INLET) | (catalog.role_code == _OUTLET)
        meters = np.flatnonzero(is_flow & boundary)
        self.n_meters = len(meters)
        loggers = pressure_members(catalog) if with_pressure else np.zeros(0, dtype=np.int64)
        self.members = np.concatenate([meters, loggers]).astype(np.int64)
        self.member_slot = np.full(len(catalog), -1, dtype=np.int64)
        self.member_slot[self.members] = np.arange(len(self.members))
        self.sign = np.where(catalog.role_code[meters] == _INLET, 1.0, -1.0)
        self.zone = catalog.zone_code[meters]
        self.n_zones = len(catalog.zones)
        has_inlet = np.zeros(self.n_zones, dtype=bool)
        has_inlet[self.zone[self.sign > 0]] = True
        self.zones_with_inlet = has_inlet
        self.width = int(settings.zone_bucket * 1e9)
        self.lateness = int(settings.zone_lateness * 1e9)
        self.stale_buckets = max(1, int(settings.zone_stale // settings.zone_bucket))
        self.ring = math.ceil(self.lateness / self.width) + 2

    def __bool__(self) -> bool:
        return len(self.members) > 0

    def new_state(self) -> ZoneFlowState:
        m = len(self.members)
        return ZoneFlowState(None, np.zeros((m, self.ring)), np.zeros((m, self.ring), dtype=np.int32),
                             np.full(m, np.nan), np.full(m, np.iinfo(np.int64).min // 2, dtype=np.int64))

    def final_index(self, watermark: np.ndarray | int) -> np.ndarray | int:
        """Buckets with an id below this are final at that watermark."""
        return (watermark - self.lateness) // self.width

    def start(self, st: ZoneFlowState, first_t: int) -> None:
        """Buckets are counted from the stream's first reading (any sensor), the same in every batching."""
        if st.next_final is None:
            st.next_final = int(self.final_index(first_t))

    def add(self, st: ZoneFlowState, sensor: np.ndarray, t: np.ndarray,
            v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Accumulate accepted readings of one segment (all share the same final index).

        Returns the readings too far ahead for the ring (the one that ends a data gap): the caller adds
        them again after finalizing, when their bucket has come within reach.
        """
        slot = self.member_slot[sensor]
        keep = slot >= 0
        empty = (sensor[:0], t[:0], v[:0])
        if not keep.any():
            return empty
        sensor, slot, t, v = sensor[keep], slot[keep], t[keep], v[keep]
        bucket = t // self.width
        on_time = bucket >= st.next_final
        st.late += int((~on_time).sum())
        ahead = bucket >= st.next_final + self.ring
        now = on_time & ~ahead
        ring = bucket[now] % self.ring
        np.add.at(st.sums, (slot[now], ring), v[now])
        np.add.at(st.counts, (slot[now], ring), 1)
        return (sensor[ahead], t[ahead], v[ahead]) if ahead.any() else empty

    def finalize(self, st: ZoneFlowState, watermark: int) -> list[FinalBucket]:
        if st.next_final is None:
            return []
        upto = int(self.final_index(watermark))
        out: list[FinalBucket] = []
        b = st.next_final
        while b < upto:
            r = b % self.ring
            counts = st.counts[:, r]
            if not st.counts.any() and (b - st.last_bucket.max()) > self.stale_buckets:
                b = upto  # a gap with no data at all: nothing to evaluate until data returns
                break
            seen = counts > 0
            st.last_mean[seen] = st.sums[seen, r] / counts[seen]
            st.last_bucket[seen] = b
            st.sums[:, r] = 0.0
            st.counts[:, r] = 0
            fresh = (b - st.last_bucket) <= self.stale_buckets
            mean = np.where(fresh, st.last_mean, np.nan)
            flows = mean[:self.n_meters]
            net = np.bincount(self.zone, weights=self.sign * np.nan_to_num(flows),
                              minlength=self.n_zones).astype(np.float64)  # int when there are no meters at all
            missing = np.bincount(self.zone, weights=np.isnan(flows), minlength=self.n_zones) > 0
            net[missing | ~self.zones_with_inlet] = np.nan
            carried = np.bincount(self.zone, weights=~seen[:self.n_meters] & fresh[:self.n_meters],
                                  minlength=self.n_zones) > 0
            out.append(FinalBucket(b, (b + 1) * self.width, net, mean[self.n_meters:], carried))
            b += 1
        st.next_final = b
        return out
