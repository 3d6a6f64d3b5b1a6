"""Event labels and their placement: turn the scenario's event specs into concrete, non-overlapping plans.

Label semantics: an event occupies the half-open window [start, end). `start` is the true onset (the
first instant the physics or the sensor differs from normal); `end` is the first instant everything is
back to normal (burst repaired, leak fixed, sensor healthy again). Readings outside every window are
exactly what the same seed produces without events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from sentinel.events import COLUMNS, LabelledEvent
from simulators.layout import PRESSURE_CHANNELS, ZoneLayout
from simulators.physics import DAY, SmoothNoise, rng_for
from simulators.scenario import KIND_NETWORKS, EventSpec, RandomEvents, Scenario

NS = 1_000_000_000
EVENT_COLUMNS = COLUMNS

_H = 3600.0
DURATION_RANGE_S: dict[str, tuple[float, float]] = {
    "burst": (2 * _H, 8 * _H),
    "slow_leak": (2 * DAY, 4 * DAY),
    "pressure_surge": (0.0, 0.0),  # derived from the zone's pressure interval, see _surge_duration
    "low_pressure": (20 * 60.0, 3 * _H),
    "sensor_stuck": (2 * _H, 8 * _H),
    "sensor_dropout": (2 * _H, 8 * _H),
    "gas_rise": (30 * 60.0, 4 * _H),
    "makeup_rise": (3 * _H, 12 * _H),
}
MAGNITUDE_RANGE: dict[str, tuple[float, float]] = {
    "burst": (0.10, 0.40),
    "slow_leak": (0.02, 0.05),
    "pressure_surge": (0.3, 0.8),
    "low_pressure": (0.20, 0.40),
    "gas_rise": (20.0, 65.0),
    "makeup_rise": (3.0, 6.0),
}
SENSOR_KINDS = ("sensor_stuck", "sensor_dropout", "gas_rise")  # always name one sensor
ZONE_KINDS = ("burst", "slow_leak", "low_pressure", "makeup_rise")  # never name a sensor


@dataclass
class EventPlan:
    """An event being placed; times in whole seconds from the scenario start; `params` shape the signal."""

    kind: str
    network: str = ""
    zone: str = ""
    start_s: float | None = None
    duration_s: float = 0.0
    sensor_id: str | None = None
    magnitude: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def end_s(self) -> float:
        assert self.start_s is not None
        return self.start_s + self.duration_s

    def label(self, event_id: str, start_epoch_s: int) -> LabelledEvent:
        assert self.start_s is not None
        return LabelledEvent(event_id, self.network, self.zone, self.kind,
                             (start_epoch_s + int(self.start_s)) * NS, (start_epoch_s + int(self.end_s)) * NS,
                             self.sensor_id, self.magnitude, self.description)


def _surge_duration(lay: ZoneLayout) -> float:
    """Real surges last seconds, but loggers report every 1-5 min: stretch the decay over ~4 readings."""
    return 5 * 1.5 * lay.interval_of(*PRESSURE_CHANNELS)


class _Placer:
    def __init__(self, sc: Scenario, layouts: list[ZoneLayout]) -> None:
        self.sc = sc
        self.rng = rng_for(sc.seed, "events")
        self.zones = {lay.zone: lay for lay in layouts}
        self.span = sc.duration
        self.warmup = sc.warmup if sc.warmup is not None else min(DAY, 0.2 * self.span)
        self.gap = sc.event_gap
        self.placed: list[EventPlan] = []

    # -- resolving one spec ------------------------------------------------------------------------

    def _candidate_zones(self, plan: EventPlan, zone: str | None) -> list[ZoneLayout]:
        nets = KIND_NETWORKS[plan.kind]
        if zone is not None:
            if zone not in self.zones:
                raise ValueError(f"{plan.kind} event: unknown zone {zone!r}; "
                                 f"zones are {', '.join(self.zones)}")
            lay = self.zones[zone]
            if lay.network not in nets:
                raise ValueError(f"{plan.kind} event cannot happen in {lay.network} zone {zone} "
                                 f"(only on {', '.join(nets)})")
            return [lay]
        cands = [lay for lay in self.zones.values() if lay.network in nets]
        if not cands:
            raise ValueError(f"{plan.kind} events need a {' or '.join(nets)} network in the scenario")
        return cands

    def resolve(self, spec: EventSpec) -> tuple[EventPlan, list[ZoneLayout]]:
        plan = EventPlan(spec.kind, sensor_id=spec.sensor_id, magnitude=spec.magnitude)
        zone = spec.zone
        if spec.sensor_id is not None:
            if plan.kind in ZONE_KINDS:
                raise ValueError(f"{plan.kind} is a zone event; it takes no sensor_id")
            owner = next((lay for lay in self.zones.values() if spec.sensor_id in lay.ids()), None)
            if owner is None:
                raise ValueError(f"{plan.kind} event: unknown sensor {spec.sensor_id!r}")
            if zone is not None and zone != owner.zone:
                raise ValueError(f"{plan.kind} event: sensor {spec.sensor_id} is in {owner.zone}, not {zone}")
            zone = owner.zone
        cands = self._candidate_zones(plan, zone)
        if spec.start is not None:
            start = spec.start if isinstance(spec.start, float) else (
                spec.start.astimezone(UTC) - self.sc.start).total_seconds()
            plan.start_s = float(math.floor(start))
        if spec.duration is not None:
            plan.duration_s = float(round(spec.duration))
        elif plan.kind != "pressure_surge":
            lo, hi = DURATION_RANGE_S[plan.kind]
            room = 0.6 * (self.span - self.warmup - self.gap)
            plan.duration_s = float(round(min(self.rng.uniform(lo, hi), room)))
        if plan.magnitude is None and plan.kind in MAGNITUDE_RANGE:
            plan.magnitude = round(float(self.rng.uniform(*MAGNITUDE_RANGE[plan.kind])), 3)
        return plan, cands

    # -- placing -----------------------------------------------------------------------------------

    def _clash(self, zone: str, start: float, end: float, gap: float) -> EventPlan | None:
        for p in self.placed:
            if p.zone == zone and start < p.end_s + gap and p.start_s is not None and p.start_s < end + gap:
                return p
        return None

    def _assign(self, plan: EventPlan, lay: ZoneLayout) -> None:
        plan.network, plan.zone = lay.network, lay.zone
        if plan.kind == "pressure_surge" and plan.duration_s == 0.0:
            plan.duration_s = _surge_duration(lay)

    def place_fixed(self, plan: EventPlan, cands: list[ZoneLayout]) -> None:
        """Explicit start: may not overlap another event of its zone (the zone is drawn if not given)."""
        assert plan.start_s is not None
        order = [cands[i] for i in self.rng.permutation(len(cands))] if len(cands) > 1 else cands
        for lay in order:
            self._assign(plan, lay)
            if plan.start_s < 0 or plan.end_s > self.span:
                raise ValueError(f"{plan.kind} event at +{plan.start_s:g}s lasting {plan.duration_s:g}s "
                                 f"falls outside the scenario (0..{self.span:g}s)")
            other = self._clash(lay.zone, plan.start_s, plan.end_s, 0.0)
            if other is None:
                self.placed.append(plan)
                return
        raise ValueError(f"{plan.kind} event at +{plan.start_s:g}s overlaps the {other.kind} event "
                         f"at +{other.start_s:g}s in zone {plan.zone}; events of one zone must not overlap")

    def place_random(self, plan: EventPlan, cands: list[ZoneLayout]) -> None:
        """Random start after the warm-up, ending at least one gap before the end, clear of other events."""
        for _ in range(1000):
            lay = cands[int(self.rng.integers(len(cands)))]
            self._assign(plan, lay)
            lo, hi = self.warmup, self.span - plan.duration_s - self.gap
            if hi < lo:
                break
            start = float(math.floor(self.rng.uniform(lo, hi)))
            if plan.kind == "pressure_surge":  # just before a reading, so the first one catches the peak
                step = lay.interval_of(*PRESSURE_CHANNELS)
                start = max(lo, math.ceil(start / step) * step - float(self.rng.integers(5, 31)))
                if start + plan.duration_s > self.span:
                    continue
            if self._clash(lay.zone, start, start + plan.duration_s, self.gap) is None:
                plan.start_s = start
                self.placed.append(plan)
                return
        raise ValueError(f"cannot fit a {plan.kind} event of {plan.duration_s / 3600:.1f} h into "
                         f"{', '.join(c.zone for c in cands)}: the scenario is too short or too crowded")

    # -- sensors and shape parameters --------------------------------------------------------------

    def finish(self, plan: EventPlan) -> None:
        lay = self.zones[plan.zone]
        rng, d = self.rng, plan.duration_s
        if plan.sensor_id is None and plan.kind in SENSOR_KINDS:
            ids = lay.ids("methane") if plan.kind == "gas_rise" else lay.ids()
            plan.sensor_id = ids[int(rng.integers(len(ids)))]
        if plan.sensor_id is not None:
            channel = lay.channels[lay.ids().index(plan.sensor_id)][0]
            if plan.kind == "gas_rise" and channel != "methane":
                raise ValueError(f"gas_rise needs a methane sensor, not {plan.sensor_id}")
            if plan.kind == "pressure_surge" and channel not in PRESSURE_CHANNELS:
                raise ValueError(f"pressure_surge needs a pressure sensor, not {plan.sensor_id}")
        p = plan.params
        if plan.kind == "burst":
            p["ramp_s"] = float(rng.uniform(60, 120))
            r, a = 800.0 * math.sqrt(rng.uniform()), rng.uniform(0, 2 * math.pi)
            p["xy"] = (r * math.cos(a), r * math.sin(a))
        elif plan.kind == "pressure_surge":
            p["tau_s"] = d / 5
            p["period_s"] = p["tau_s"] * float(rng.uniform(0.8, 1.6))
            atten = rng.uniform(0.4, 1.0, len(lay.sensors))  # by layout slot; only pressure slots matter
            slots = [i for i, (c, _) in enumerate(lay.channels) if c in PRESSURE_CHANNELS]
            atten[slots[int(rng.integers(len(slots)))]] = 1.0  # the sensor nearest the transient's source
            p["atten"] = atten
        elif plan.kind == "low_pressure":
            p["rise_s"] = min(float(rng.uniform(60, 180)), d / 4)
            p["fall_s"] = min(float(rng.uniform(120, 300)), d / 4)
        elif plan.kind == "gas_rise":
            p["tau_s"] = min(float(rng.uniform(120, 480)), d / 6)
            p["fall_s"] = min(600.0, d / 5)
            p["flicker"] = SmoothNoise.draw(rng, d, 120.0, 0.08)
        elif plan.kind == "makeup_rise":
            p["tau_s"] = min(float(rng.uniform(600, 2400)), d / 4)
            p["fall_s"] = min(600.0, d / 5)


def plan_events(sc: Scenario, layouts: list[ZoneLayout]) -> list[EventPlan]:
    """Explicit starts first (in file order), then drawn ones longest first; result sorted by start."""
    placer = _Placer(sc, layouts)
    specs: list[EventSpec] = []
    for item in sc.events:
        if isinstance(item, RandomEvents):
            specs += [EventSpec(kind=k) for k, n in item.counts().items() for _ in range(n)]  # type: ignore[arg-type]
        else:
            specs.append(item)
    resolved = [placer.resolve(s) for s in specs]
    for plan, cands in resolved:
        if plan.start_s is not None:
            placer.place_fixed(plan, cands)
    floating = [(plan, cands) for plan, cands in resolved if plan.start_s is None]
    floating.sort(key=lambda pc: -pc[0].duration_s if pc[0].kind != "pressure_surge" else 0.0)
    for plan, cands in floating:
        placer.place_random(plan, cands)
    plans = sorted(placer.placed, key=lambda p: (p.start_s, p.zone, p.kind))
    for plan in plans:
        placer.finish(plan)
    return plans
