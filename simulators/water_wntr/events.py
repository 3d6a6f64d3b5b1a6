"""Placing events and benign anomalies: every field a spec leaves out is drawn from the seed.

Physical events start and end on the hydraulic step grid (the first state that differs is the label's
start). Events of one DMA never overlap: explicit ones that do are an error, drawn ones are redrawn.
Benign anomalies (hydrant draws, holidays) are placed the same way but are not events: they land in
anomalies.csv, so a backtest never scores a detector for staying silent on them, and an alarm they
raise counts as the false alarm it would be.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np

from simulators.physics import DAY, rng_for
from simulators.water_wntr.operations import Setting, boost, emitter_for, throttle
from simulators.water_wntr.scenario import FAULT_KINDS, LEAK_KINDS, AnomalySpec, EventSpec, WntrScenario
from simulators.water_wntr.site import Site

H = 3600.0
DURATIONS: dict[str, tuple[float, float]] = {
    "burst": (2 * H, 8 * H), "slow_leak": (2 * DAY, 4 * DAY), "low_pressure": (0.5 * H, 3 * H),
    "pressure_surge": (10 * 60.0, 30 * 60.0), "sensor_stuck": (2 * H, 8 * H), "sensor_dropout": (2 * H, 8 * H),
    "sensor_drift": (12 * H, 2 * DAY), "sensor_offset": (2 * H, 12 * H), "hydrant_draw": (1 * H, 3 * H),
}
# size -> magnitude; what the number means is in MAGNITUDE_MEANING
MAGNITUDES: dict[str, dict[str, float]] = {
    "burst": {"small": 0.08, "medium": 0.18, "large": 0.35},
    "slow_leak": {"small": 0.03, "medium": 0.06, "large": 0.12},
    "low_pressure": {"small": 0.15, "medium": 0.25, "large": 0.40},
    "pressure_surge": {"small": 0.3, "medium": 0.5, "large": 0.8},
    "drift_kpa": {"small": 10.0, "medium": 25.0, "large": 50.0},
    "drift_flow": {"small": 0.05, "medium": 0.10, "large": 0.20},  # of the meter's mean flow
    "drift_level_m": {"small": 0.05, "medium": 0.10, "large": 0.20},
}
MAGNITUDE_MEANING: dict[str, str] = {
    "burst": "leak flow at the node's design pressure, as a fraction of the DMA's mean demand",
    "slow_leak": "leak flow reached at the end, as a fraction of the DMA's mean demand",
    "low_pressure": "head cut at the DMA's inlets, as a fraction of its mean pressure",
    "pressure_surge": "head added by what feeds the DMA, as a fraction of its mean pressure",
    "sensor_stuck": "the value repeated, in the sensor's own unit",
    "sensor_drift": "error reached at the end, canonical unit (kPa, m3/h, m), signed",
    "sensor_offset": "constant error, canonical unit (kPa, m3/h, m), signed",
}


@dataclass
class Plan:
    """An event or anomaly with every field resolved; times in seconds from the scenario start."""

    kind: str
    zone: str
    start_s: float
    duration_s: float
    magnitude: float | None = None
    size: str | None = None
    node: str | None = None
    sensor_id: str | None = None
    emitter: float = 0.0  # leaks: final coefficient, m3/h per sqrt(m)
    settings: list[Setting] = field(default_factory=list)  # operations
    flow_m3h: float = 0.0  # hydrant draws
    description: str = ""

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


class Planner:
    def __init__(self, sc: WntrScenario, site: Site) -> None:
        self.sc, self.site = sc, site
        self.rng = rng_for(sc.seed, "wntr", "events")
        self.step = sc.hydraulic_step
        self.span = sc.steps * self.step
        self.warmup = sc.warmup if sc.warmup is not None else min(DAY, 0.2 * self.span)
        self.busy: dict[str, list[Plan]] = {}

    # -- small draws -------------------------------------------------------------------------------

    def _pick(self, items: list[str]) -> str:
        if not items:
            raise ValueError("nothing to choose from")
        return items[int(self.rng.integers(len(items)))]

    def _size(self, size: str | None) -> str:
        return size or self._pick(["small", "medium", "large"])

    def _duration(self, kind: str, given: float | None) -> float:
        lo, hi = DURATIONS[kind]
        d = given if given is not None else min(float(self.rng.uniform(lo, hi)), 0.6 * (self.span - self.warmup))
        return max(self.step, round(d / self.step) * self.step)

    def _leak_node(self, zone: str) -> str:
        wn = self.site.wn
        nodes = [n for n in self.site.district(zone).nodes if not wn.get_node(n).emitter_coefficient]
        return self._pick(nodes)

    # -- windows -----------------------------------------------------------------------------------

    def _clash(self, zone: str, start: float, end: float) -> Plan | None:
        return next((p for p in self.busy.get(zone, []) if start < p.end_s and p.start_s < end), None)

    def _place(self, plan: Plan, start: float | datetime | None, zones: list[str] | None = None) -> None:
        """Explicit start: snap to the step grid and check; none: draw one clear of the zone's events."""
        if start is not None:
            s = start if isinstance(start, float) else (start.astimezone(UTC) - self.sc.start).total_seconds()
            plan.start_s = math.ceil(s / self.step) * self.step
            if plan.start_s < 0 or plan.end_s > self.span:
                raise ValueError(f"{plan.kind} at +{plan.start_s:g}s lasting {plan.duration_s:g}s falls outside "
                                 f"the scenario (0..{self.span:g}s)")
            other = self._clash(plan.zone, plan.start_s, plan.end_s)
            if other is not None:
                raise ValueError(f"{plan.kind} at +{plan.start_s:g}s overlaps the {other.kind} at "
                                 f"+{other.start_s:g}..{other.end_s:g}s in {plan.zone}; events of one DMA must "
                                 "not overlap")
        else:
            for _ in range(1000):
                if zones:
                    plan.zone = self._pick(zones)
                lo, hi = self.warmup, self.span - plan.duration_s
                if hi < lo:
                    break
                plan.start_s = math.floor(float(self.rng.uniform(lo, hi)) / self.step) * self.step
                if self._clash(plan.zone, plan.start_s, plan.end_s) is None:
                    break
            else:
                raise ValueError(f"cannot fit a {plan.kind} of {plan.duration_s / H:.1f} h into {plan.zone}")
            if hi < lo:
                raise ValueError(f"the scenario is too short for a {plan.kind} of {plan.duration_s / H:.1f} h")
        self.busy.setdefault(plan.zone, []).append(plan)

    # -- events ------------------------------------------------------------------------------------

    def _zone(self, spec: EventSpec | AnomalySpec, eligible: list[str]) -> tuple[str, list[str] | None]:
        """(zone, candidates to redraw from when the start is drawn too)."""
        site = self.site
        sensor_id = getattr(spec, "sensor_id", None)
        owner = None
        if sensor_id:
            owner = next((s.zone for s in site.sensors if s.sensor_id == sensor_id), None)
            if owner is None:
                raise ValueError(f"{spec.kind}: unknown sensor {sensor_id!r}")
        elif spec.node:
            owner = site.zone_of(spec.node)
            if owner is None:
                raise ValueError(f"{spec.kind}: node {spec.node!r} is not a junction of any DMA")
        if owner is not None:
            if spec.zone and spec.zone != owner:
                raise ValueError(f"{spec.kind}: {sensor_id or spec.node} is in {owner}, not {spec.zone}")
            return owner, None
        if spec.zone:
            site.district(spec.zone)
            if spec.zone not in eligible:
                raise ValueError(f"{spec.kind} cannot happen in {spec.zone} (nothing there can cause it)")
            return spec.zone, None
        if not eligible:
            raise ValueError(f"no DMA can have a {spec.kind}")
        return self._pick(eligible), (eligible if spec.start is None else None)

    def event(self, spec: EventSpec) -> Plan:
        site, kind = self.site, spec.kind
        zones = [d.name for d in site.districts]
        if kind == "pressure_surge":
            zones = [z for z in zones if boost(site, z, 0.1)]
        elif kind == "low_pressure":
            zones = [z for z in zones if throttle(site, z, 0.1)]
        elif kind in FAULT_KINDS:
            zones = [z for z in zones if self._fault_sensors(z, spec.quantity)]
        zone, redraw = self._zone(spec, zones)
        plan = Plan(kind, zone, 0.0, self._duration(kind, spec.duration), spec.magnitude, node=spec.node,
                    sensor_id=spec.sensor_id)
        if kind == "sensor_stuck" and spec.magnitude is not None:
            raise ValueError("sensor_stuck repeats the last good value; it takes no magnitude")
        self._place(plan, spec.start, redraw)
        if kind in LEAK_KINDS or kind in ("low_pressure", "pressure_surge"):
            plan.size = self._size(spec.size) if spec.magnitude is None else spec.size
            if plan.magnitude is None:
                plan.magnitude = MAGNITUDES[kind][plan.size or "medium"]
        if kind in LEAK_KINDS:
            plan.node = plan.node or self._leak_node(plan.zone)
            if site.wn.get_node(plan.node).emitter_coefficient:
                raise ValueError(f"{kind}: node {plan.node} already has an emitter in the model")
            plan.emitter = emitter_for(site, plan.node, plan.magnitude * site.mean_demand_m3h(
                plan.zone, self.sc.demand.multiplier))  # type: ignore[operator]
        elif kind == "low_pressure":
            plan.settings = throttle(site, plan.zone, plan.magnitude)  # type: ignore[arg-type]
        elif kind == "pressure_surge":
            plan.settings = boost(site, plan.zone, plan.magnitude)  # type: ignore[arg-type]
        elif kind in FAULT_KINDS:
            self._fault(plan, spec)
        return plan

    def _fault_sensors(self, zone: str, quantity: str | None) -> list[str]:
        return [s.sensor_id for s in self.site.sensors if s.zone == zone
                and s.quantity in ((quantity,) if quantity else ("pressure", "flow"))]

    def _fault(self, plan: Plan, spec: EventSpec) -> None:
        if plan.sensor_id is None:
            plan.sensor_id = self._pick(self._fault_sensors(plan.zone, spec.quantity))
        if plan.kind not in ("sensor_drift", "sensor_offset") or plan.magnitude is not None:
            return
        plan.size = self._size(spec.size)
        i = next(i for i, s in enumerate(self.site.sensors) if s.sensor_id == plan.sensor_id)
        sensor, channel = self.site.sensors[i], self.site.channels[i]
        sign = 1.0 if self.rng.random() < 0.5 else -1.0
        if sensor.quantity == "pressure":
            plan.magnitude = sign * MAGNITUDES["drift_kpa"][plan.size]
        elif sensor.quantity == "level":
            plan.magnitude = sign * MAGNITUDES["drift_level_m"][plan.size]
        else:
            mean = abs(float(self.site.design.flow[:, self.site.design.link(channel.element)].mean()))
            plan.magnitude = round(sign * MAGNITUDES["drift_flow"][plan.size] * max(mean, 1.0), 3)

    # -- anomalies ---------------------------------------------------------------------------------

    def anomaly(self, spec: AnomalySpec) -> list[Plan]:
        if spec.kind == "holiday":
            return self._holiday(spec.date)
        zones = [d.name for d in self.site.districts]
        zone, redraw = self._zone(spec, zones)
        plan = Plan("hydrant_draw", zone, 0.0, self._duration("hydrant_draw", spec.duration), node=spec.node)
        self._place(plan, spec.start, redraw)
        plan.node = plan.node or self._pick(self.site.district(plan.zone).nodes)
        plan.flow_m3h = spec.flow_m3h or round(float(self.rng.uniform(36.0, 54.0)), 1)
        plan.magnitude = plan.flow_m3h
        return [plan]

    def _holiday(self, day: date | None) -> list[Plan]:
        """One label per DMA, from local midnight to midnight (clipped to the run)."""
        offset = timedelta(hours=self.sc.utc_offset_h)
        first = (self.sc.start + offset).date()
        if day is None:
            days = [first + timedelta(days=i) for i in range(1, int(self.span // DAY))]
            weekdays = [d for d in days if d.weekday() < 5]
            day = weekdays[int(self.rng.integers(len(weekdays)))] if weekdays else first
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC) - offset
        start = max(0.0, (midnight - self.sc.start).total_seconds())
        end = min(self.span, (midnight - self.sc.start).total_seconds() + DAY)
        if end <= start:
            raise ValueError(f"holiday {day} is outside the scenario")
        return [Plan("holiday", d.name, start, end - start, description=f"{day} is a public holiday: a "
                     f"{day:%A} with Sunday demand (later, lower morning peak)", node=None)
                for d in self.site.districts]


def plan_all(sc: WntrScenario, site: Site) -> tuple[list[Plan], list[Plan], list[date]]:
    """(events, anomalies, holiday dates). Explicit starts are placed before drawn ones, longest first."""
    planner = Planner(sc, site)
    fixed = [s for s in sc.events if s.start is not None]
    drawn = sorted((s for s in sc.events if s.start is None),
                   key=lambda s: -(s.duration or np.mean(DURATIONS[s.kind])))
    events = [planner.event(s) for s in fixed + drawn]
    anomalies: list[Plan] = []
    for spec in sorted(sc.anomalies, key=lambda a: a.start is None):
        anomalies += planner.anomaly(spec)
    holidays = sorted({(sc.start + timedelta(hours=sc.utc_offset_h, seconds=p.start_s)).date()
                       for p in anomalies if p.kind == "holiday"})
    events.sort(key=lambda p: (p.start_s, p.zone, p.kind))
    anomalies.sort(key=lambda p: (p.start_s, p.zone, p.kind))
    return events, anomalies, holidays
