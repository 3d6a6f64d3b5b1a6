"""Shared pieces of the pandapipes simulators (simulators.gas_pandapipes and simulators.heat_pandapipes).

Both engines run the same way: scenario -> a fixed network with zones and instruments -> events placed
from the seed on the hydraulic step grid -> one steady-state pandapipes solve per step, computed ahead
(leaks settled by a fixed-point iteration on their orifice flows) -> per-sensor truth, each step's state
held until the next one (as EPANET does) -> noise, unit, quantisation, faults, loss -> a SimResult that
write_replay, publish and backtest take unchanged. What both need lives here: scenario fields, event
placement, the step loop with progress and timings, leak settling, the readings pipeline and a few graph
helpers. Nothing here imports pandapipes, so checking a scenario file stays cheap.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import networkx as nx
import numpy as np
import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from sentinel.catalog import Sensor
from sentinel.events import LabelledEvent
from sentinel.progress import Progress
from sentinel.units import conversion
from simulators.layout import decimals_for
from simulators.physics import rng_for
from simulators.scenario import Duration, UtcStart, _start_or_offset
from simulators.synthetic import Readings

NS = 1_000_000_000
HOUR = 3600.0
Start = Annotated[float | datetime | None, BeforeValidator(_start_or_offset)]
Size = Literal["small", "medium", "large"]
FAULT_KINDS = ("sensor_stuck", "sensor_dropout", "sensor_drift")

# Drawn durations per kind (seconds); explicit `duration` overrides.
DURATION_RANGE_S: dict[str, tuple[float, float]] = {
    "gas_rise": (1 * HOUR, 5 * HOUR),
    "makeup_rise": (3 * HOUR, 12 * HOUR),
    "low_pressure": (20 * 60.0, 3 * HOUR),
    "sensor_stuck": (2 * HOUR, 8 * HOUR),
    "sensor_dropout": (2 * HOUR, 8 * HOUR),
    "sensor_drift": (6 * HOUR, 24 * HOUR),
}


# -- scenario ----------------------------------------------------------------------------------------


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EventSpec(Strict):
    """One event; fields left out are drawn from the seed. Which kinds an engine takes is its own list.

    Leaks (gas_rise, makeup_rise) open an orifice of `hole_mm` (or `size`) at junction `node`;
    `growth: ramp` grows the hole from nothing to full over the window (corrosion), `step` opens it at
    once (third-party damage). `magnitude` is the sag fraction for low_pressure and the error reached at
    the end, in the canonical unit (kPa, m3/h, degC, %LEL), for sensor_drift; leak labels carry what the
    physics produced (see each engine).
    """

    kind: str
    zone: str | None = None
    sensor_id: str | None = None
    node: str | None = None
    start: Start = None
    duration: Duration | None = None
    size: Size | None = None
    hole_mm: float | None = Field(default=None, gt=0, le=300)
    growth: Literal["step", "ramp"] = "step"
    magnitude: float | None = None


class PipesScenario(Strict):
    """Fields both pandapipes engines share; each engine adds its network, zones, sensors and models."""

    KINDS: ClassVar[tuple[str, ...]] = ()

    name: str = "pandapipes"
    seed: int = Field(default=0, ge=0)
    network: str = "schutterwald"  # a shipped pandapipes example by name, or a pandapipes .json file
    start: UtcStart  # UTC; naive means UTC
    duration: Duration
    step: Duration = 300.0  # hydraulic step: one steady state per step, held until the next
    utc_offset_h: float = Field(default=8.0, ge=-14, le=14)
    center_lat: float = Field(default=31.82, ge=-90, le=90)  # the network is moved here (metres kept)
    center_lon: float = Field(default=117.23, ge=-180, le=180)
    warmup: Duration | None = None  # event-free lead-in for drawn starts; default min(1 day, 20 %)
    event_gap: Duration = 3600.0  # minimum quiet time between two events of one zone (drawn starts)
    missing_rate: float = Field(default=0.001, ge=0.0, lt=0.5)
    events: list[EventSpec] = []

    @model_validator(mode="after")
    def _grid_and_kinds(self) -> PipesScenario:
        if self.step != int(self.step) or self.step < 60:
            raise ValueError("step must be whole seconds, at least 1 minute")
        if self.duration < self.step:
            raise ValueError("duration must cover at least one hydraulic step")
        for e in self.events:
            if e.kind not in self.KINDS:
                raise ValueError(f"event kind {e.kind!r} is not simulated here; use one of {', '.join(self.KINDS)}")
        return self

    @property
    def steps(self) -> int:
        return int(self.duration // self.step)

    @property
    def span_s(self) -> float:
        """Simulated time: whole steps (a trailing partial step is dropped)."""
        return self.steps * self.step


S = TypeVar("S", bound=PipesScenario)


def load_yaml_scenario(path: str | Path, model: type[S]) -> S:
    """Read a scenario; a relative .json network path is taken relative to the YAML file."""
    path = Path(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping with engine, start, duration and events")
    net = data.get("network")
    if isinstance(net, str) and net.lower().endswith(".json") and not Path(net).is_absolute():
        data["network"] = str((path.parent / net).resolve())
    return model.model_validate(data)


def coerce_scenario(source: str | Path | S | dict, model: type[S]) -> S:
    """A scenario object, a mapping, or a YAML path -> a validated scenario."""
    if isinstance(source, model):
        return source
    if isinstance(source, dict):
        return model.model_validate(source)
    if isinstance(source, str | Path):
        return load_yaml_scenario(source, model)
    raise TypeError(f"expected a {model.__name__}, a mapping or a YAML path, not {type(source).__name__}")


# -- timing and the step loop ------------------------------------------------------------------------


@dataclass
class Laps:
    """Wall-clock time per phase, so reports can say where a run spends its time."""

    timings: dict[str, float] = field(default_factory=dict)
    _t: float = field(default_factory=time.perf_counter)

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + now - self._t
        self._t = now

    @property
    def total(self) -> float:
        return sum(self.timings.values())


T = TypeVar("T")


def run_steps(n: int, solve: Callable[[int], T], label: str, show_progress: bool) -> list[T]:
    """solve(k) for every hydraulic step, with a progress line on stderr now and then."""
    progress = Progress(label, enabled=show_progress)
    out: list[T] = []
    for k in range(n):
        out.append(solve(k))
        progress.update(k + 1, n)
    progress.done(f"{n} steady states")
    return out


def print_summary(sc: PipesScenario, solves: int, readings: int, events: int, laps: Laps) -> None:
    """One line on stderr: what a run cost and where the time went."""
    phases = ", ".join(f"{k} {v:.1f} s" for k, v in laps.timings.items())
    print(f"{sc.name}: {sc.steps} steps ({solves} pandapipes solves), {readings:,} readings, {events} events "
          f"in {laps.total:.1f} s ({phases})", file=sys.stderr)


def settle(solve: Callable[[np.ndarray], T], flow_of: Callable[[T], np.ndarray], q0: np.ndarray,
           rtol: float = 1e-3, max_iter: int = 12) -> tuple[T, np.ndarray, int]:
    """Leak flows consistent with the pressures they cause: q <- orifice(p(q)) until it moves < rtol.

    A plain fixed point converges because an orifice flow changes far less than the network pressure
    that drives it (|dq/dp|·|dp/dq| << 1 for holes small against the pipes); it is checked, not assumed.
    """
    q = np.asarray(q0, dtype=np.float64)
    for i in range(1, max_iter + 1):
        state = solve(q)
        q_new = flow_of(state)
        if np.all(np.abs(q_new - q) <= rtol * np.maximum(np.abs(q_new), 1e-12)):
            return state, q, i  # q, not q_new: the state returned is the one these flows produce
        q = q_new
    raise RuntimeError(f"leak flows did not settle in {max_iter} iterations (last {q.tolist()}); "
                       "the hole is too large for the network: use a smaller hole_mm")


# -- events ------------------------------------------------------------------------------------------


@dataclass
class Planned:
    """An event placed on the step grid. `end_s` is when the cause stops (leak repaired, fault cleared);
    an engine may label a later end when its effect outlasts the cause (methane venting)."""

    kind: str
    zone: str
    start_s: float
    end_s: float
    sensor_id: str | None = None
    node: str | None = None
    hole_mm: float | None = None
    growth: str = "step"
    magnitude: float | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def active(self, t: np.ndarray | float) -> np.ndarray:
        return (np.asarray(t) >= self.start_s) & (np.asarray(t) < self.end_s)

    def opening(self, t: np.ndarray, step_s: float) -> np.ndarray:
        """Fraction of the hole open at step times t: 1 for a step leak, growing to 1 at the last step."""
        on = self.active(t).astype(np.float64)
        if self.growth == "ramp":
            on *= np.clip((t - self.start_s + step_s) / self.duration_s, 0.0, 1.0)
        return on


@dataclass(frozen=True)
class Leak:
    """A leak event resolved to a junction (`zone` indexes the engine's districts or circuits) and the
    area of its hole."""

    plan: Planned
    junction: int
    zone: int
    area_m2: float

    @classmethod
    def of(cls, plan: Planned, junction: int, zone: int) -> Leak:
        assert plan.hole_mm is not None
        return cls(plan, junction, zone, math.pi * (plan.hole_mm / 2000.0) ** 2)


def _snap(sc: PipesScenario, value: float) -> float:
    return math.floor(value / sc.step) * sc.step


class _Placer:
    def __init__(self, sc: PipesScenario, zone_sensors: dict[str, list[str]], zone_kinds: Sequence[str]) -> None:
        self.sc, self.zone_sensors, self.zone_kinds = sc, zone_sensors, tuple(zone_kinds)
        self.rng = rng_for(sc.seed, "events")
        self.span = sc.span_s
        self.warmup = sc.warmup if sc.warmup is not None else min(86400.0, 0.2 * self.span)
        self.placed: list[Planned] = []

    def zone_of(self, spec: EventSpec) -> list[str]:
        if spec.sensor_id is not None:
            if spec.kind in self.zone_kinds:
                raise ValueError(f"{spec.kind} is a zone event; it takes no sensor_id")
            owner = next((z for z, ids in self.zone_sensors.items() if spec.sensor_id in ids), None)
            if owner is None:
                raise ValueError(f"{spec.kind} event: unknown sensor {spec.sensor_id!r}")
            if spec.zone is not None and spec.zone != owner:
                raise ValueError(f"{spec.kind} event: sensor {spec.sensor_id} is in {owner}, not {spec.zone}")
            return [owner]
        if spec.zone is not None:
            if spec.zone not in self.zone_sensors:
                raise ValueError(f"{spec.kind} event: unknown zone {spec.zone!r}; zones are "
                                 f"{', '.join(self.zone_sensors)}")
            return [spec.zone]
        return list(self.zone_sensors)

    def clash(self, zone: str, start: float, end: float, gap: float) -> Planned | None:
        return next((p for p in self.placed if p.zone == zone and start < p.end_s + gap and p.start_s < end + gap),
                    None)

    def duration(self, spec: EventSpec) -> float:
        if spec.duration is not None:
            d = spec.duration
        else:
            lo, hi = DURATION_RANGE_S[spec.kind]
            d = min(float(self.rng.uniform(lo, hi)), 0.25 * (self.span - self.warmup))  # leave room for others
        return max(self.sc.step, math.ceil(d / self.sc.step) * self.sc.step)

    def place(self, spec: EventSpec, zones: list[str], duration: float) -> Planned:
        if spec.start is not None:
            start = spec.start if isinstance(spec.start, float) else (spec.start - self.sc.start).total_seconds()
            start = _snap(self.sc, start)
            if start < 0 or start + duration > self.span:
                raise ValueError(f"{spec.kind} event at +{start:g}s lasting {duration:g}s falls outside the "
                                 f"scenario (0..{self.span:g}s)")
            for zone in zones if len(zones) == 1 else [zones[i] for i in self.rng.permutation(len(zones))]:
                other = self.clash(zone, start, start + duration, 0.0)
                if other is None:
                    return self._new(spec, zone, start, duration)
            raise ValueError(f"{spec.kind} event at +{start:g}s overlaps the {other.kind} event at "
                             f"+{other.start_s:g}s in zone {other.zone}; events of one zone must not overlap")
        step, gap = self.sc.step, self.sc.event_gap
        first = math.ceil(self.warmup / step) * step
        grid = np.arange(first, self.span - duration - gap + step / 2, step)  # starts on the step grid
        free = [(z, float(s)) for z in zones for s in grid if self.clash(z, float(s), float(s) + duration, gap) is None]
        if free:  # uniform over every start that fits, so earlier draws cannot crowd out a feasible one
            zone, start = free[int(self.rng.integers(len(free)))]
            return self._new(spec, zone, start, duration)
        raise ValueError(f"cannot fit a {spec.kind} event of {duration / 3600:.1f} h into {', '.join(zones)}: "
                         "the scenario is too short or too crowded")

    def _new(self, spec: EventSpec, zone: str, start: float, duration: float) -> Planned:
        sensor = spec.sensor_id
        if sensor is None and spec.kind in FAULT_KINDS:
            ids = self.zone_sensors[zone]
            sensor = ids[int(self.rng.integers(len(ids)))]
        plan = Planned(spec.kind, zone, start, start + duration, sensor, spec.node, spec.hole_mm, spec.growth,
                       spec.magnitude, {"size": spec.size})
        self.placed.append(plan)
        return plan


def place_events(sc: PipesScenario, zone_sensors: dict[str, list[str]], zone_kinds: Sequence[str]) -> list[Planned]:
    """Explicit starts first (file order), then drawn ones longest first; the result sorted by start.

    Starts are snapped down to the step grid and durations up to whole steps, so the label start is the
    first step whose steady state differs. Events of one zone never overlap (a stuck logger during a leak
    would blur both labels); drawn ones also keep `event_gap` apart.
    """
    placer = _Placer(sc, zone_sensors, zone_kinds)
    specs = [(spec, placer.zone_of(spec), placer.duration(spec)) for spec in sc.events]
    for spec, zones, d in specs:
        if spec.start is not None:
            placer.place(spec, zones, d)
    for spec, zones, d in sorted((s for s in specs if s[0].start is None), key=lambda s: -s[2]):
        placer.place(spec, zones, d)
    return sorted(placer.placed, key=lambda p: (p.start_s, p.zone, p.kind))


def zones_from_nodes(sc: S, leak_kind: str, zone_of_node: Callable[[str], str]) -> S:
    """The scenario with each leak given by junction but not zone put in the junction's zone (so the
    placer does not draw another); a leak whose junction lies outside its stated zone is an error."""
    events = []
    for e in sc.events:
        if e.kind == leak_kind and e.node is not None:
            zone = zone_of_node(e.node)
            if e.zone is not None and e.zone != zone:
                raise ValueError(f"{leak_kind} at junction {e.node} is in {zone}, not {e.zone}")
            e = e.model_copy(update={"zone": zone})
        events.append(e)
    return sc.model_copy(update={"events": events})


def sag_magnitude(sc: PipesScenario, plan: Planned, n: int) -> None:
    """A low_pressure event without a magnitude sags its set point by 20-40 %."""
    if plan.kind == "low_pressure" and plan.magnitude is None:
        plan.magnitude = round(float(rng_for(sc.seed, "sag", str(n)).uniform(0.2, 0.4)), 3)


def label(plan: Planned, event_id: str, network: str, start_epoch_s: int, description: str,
          end_s: float | None = None) -> LabelledEvent:
    end = plan.end_s if end_s is None else end_s
    return LabelledEvent(event_id, network, plan.zone, plan.kind, (start_epoch_s + int(plan.start_s)) * NS,
                         (start_epoch_s + math.ceil(end)) * NS, plan.sensor_id, plan.magnitude, description)


# -- instruments and readings ------------------------------------------------------------------------


@dataclass(frozen=True)
class Instrument:
    """A sensor and what it would read without noise: `truth(t)` in the canonical unit at times t
    (seconds from the start). Noise is `noise_abs + noise_rel·|value|` standard deviations."""

    sensor: Sensor
    truth: Callable[[np.ndarray], np.ndarray]
    noise_abs: float
    noise_rel: float = 0.0
    lo: float | None = None
    hi: float | None = None


def held(series: np.ndarray, step_s: float) -> Callable[[np.ndarray], np.ndarray]:
    """A per-step series as a function of time: each steady state holds until the next step."""
    series = np.asarray(series, dtype=np.float64)

    def at(t: np.ndarray) -> np.ndarray:
        return series[np.minimum((np.asarray(t) // step_s).astype(np.int64), len(series) - 1)]

    return at


def _quantise(raw: np.ndarray, decimals: int) -> np.ndarray:
    f = 10.0**decimals
    return np.rint(raw * f) / f


def _drift(sc: PipesScenario, plan: Planned, clean: np.ndarray) -> float:
    """A drift's size when the scenario leaves it out: catalytic methane heads drift up 10-30 %LEL, other
    transmitters by 3-10 % of their typical reading, either way."""
    if plan.magnitude is not None:
        return plan.magnitude
    rng = rng_for(sc.seed, "drift", plan.sensor_id or "")
    if plan.info.get("quantity") == "gas_concentration":
        return round(float(rng.uniform(10.0, 30.0)), 1)
    size = float(rng.uniform(0.03, 0.10)) * max(float(np.median(np.abs(clean))), 1.0)
    return round(size * (1 if rng.random() < 0.5 else -1), 2)


def measure(sc: PipesScenario, instruments: Sequence[Instrument], faults: Sequence[Planned]
            ) -> tuple[Readings, tuple[int, ...]]:
    """Readings of every instrument: reporting grid -> truth -> noise -> drift -> clip -> sensor unit ->
    quantisation -> stuck -> dropout -> random loss; sorted by time, then catalog order.

    Every random draw comes from a generator keyed by (seed, purpose, sensor), so the noise of a sensor
    does not depend on the events injected or on the other sensors. Fault plans get their label
    magnitude here (the value a stuck sensor repeats, the drift reached).
    """
    start_s = int(sc.start.timestamp())
    times, sensors, values, places = [], [], [], []
    for idx, ins in enumerate(instruments):
        s = ins.sensor
        t = np.round(np.arange(0.0, sc.span_s, s.interval_s)).astype(np.int64)
        tf = t.astype(np.float64)
        clean = ins.truth(tf)
        z = rng_for(sc.seed, "noise", s.sensor_id).standard_normal(len(t))
        v = clean + z * (ins.noise_abs + ins.noise_rel * np.abs(clean))
        mine = [p for p in faults if p.sensor_id == s.sensor_id]
        for p in mine:
            if p.kind == "sensor_drift":
                p.info["quantity"] = s.quantity
                p.magnitude = _drift(sc, p, clean)
                v = v + p.magnitude * np.clip((tf - p.start_s) / p.duration_s, 0.0, 1.0) * p.active(tf)
        if ins.lo is not None or ins.hi is not None:
            v = np.clip(v, ins.lo, ins.hi)
        scale, offset = conversion(s.quantity, s.unit)
        dec = decimals_for(s.quantity, s.unit)
        v = _quantise((v - offset) / scale, dec)
        keep = rng_for(sc.seed, "loss", s.sensor_id).random(len(t)) >= sc.missing_rate
        for p in mine:
            win = p.active(tf)
            if p.kind == "sensor_stuck" and win.any():
                before = np.flatnonzero(keep & (tf < p.start_s))
                src = before[-1] if len(before) else np.flatnonzero(win)[0]
                v[win] = v[src]
                p.magnitude = float(v[src])
            elif p.kind == "sensor_dropout":
                keep &= ~win
        times.append(t[keep])
        values.append(v[keep])
        sensors.append(np.full(int(keep.sum()), idx, dtype=np.int32))
        places.append(dec)
    t_all, s_all = np.concatenate(times), np.concatenate(sensors)
    order = np.lexsort((s_all, t_all))
    readings = Readings((t_all[order] + start_s) * NS, s_all[order], np.concatenate(values)[order])
    return readings, tuple(places)


def fault_description(plan: Planned, unit: str) -> str:
    if plan.kind == "sensor_stuck":
        return f"{plan.sensor_id} repeats {plan.magnitude:g} {unit} (frozen transmitter)"
    if plan.kind == "sensor_dropout":
        return f"{plan.sensor_id} sends nothing (battery / comms failure)"
    return f"{plan.sensor_id} drifts linearly to {plan.magnitude:+g} (canonical unit) by the end, then is recalibrated"


# -- geometry ----------------------------------------------------------------------------------------


def to_latlon(x: np.ndarray, y: np.ndarray, center_lat: float, center_lon: float) -> tuple[np.ndarray, np.ndarray]:
    """Network coordinates (metres, any projected CRS) moved so their centre sits at the scenario's centre;
    distances are kept, so trench lengths and sensor spacing stay true."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    cx, cy = (np.nanmin(x) + np.nanmax(x)) / 2, (np.nanmin(y) + np.nanmax(y)) / 2
    lat = center_lat + (y - cy) / 111_320.0
    lon = center_lon + (x - cx) / (111_320.0 * math.cos(math.radians(center_lat)))
    return np.round(lat, 6), np.round(lon, 6)


def pipe_graph(net: Any, *, closed_too: bool = False) -> nx.Graph:
    """The pipes (and open valves) of a pandapipes net as an undirected graph; edge `length` in metres.

    `closed_too` keeps pipes out of service: gas migrates along a trench whether or not the pipe in
    it carries flow, so methane distances use the physical layout, hydraulics the operational one.
    """
    g = nx.Graph()
    live = net.junction.index[net.junction.in_service.astype(bool)]
    g.add_nodes_from(int(j) for j in live)
    pipes = net.pipe if closed_too else net.pipe[net.pipe.in_service.astype(bool)]
    for f, t, km in zip(pipes.from_junction.tolist(), pipes.to_junction.tolist(), pipes.length_km.tolist(),
                        strict=True):
        if f in g and t in g:
            g.add_edge(int(f), int(t), length=1000.0 * float(km))
    if "valve" in net and len(net.valve):
        for j, e, opened in zip(net.valve.junction.tolist(), net.valve.element.tolist(), net.valve.opened.tolist(),
                                strict=True):
            if (opened or closed_too) and j in g and e in g:
                g.add_edge(int(j), int(e), length=0.0)
    return g


def farthest_first(g: nx.Graph, fixed: Sequence[int], candidates: Sequence[int], k: int) -> list[int]:
    """k candidates picked one by one, each the farthest (along the pipes) from everything picked so far
    and from `fixed`: spreads instruments over a zone the way a utility would, without a seed."""
    chosen: list[int] = []
    pool = list(candidates)
    for _ in range(min(k, len(pool))):
        sources = [*fixed, *chosen]
        dist = nx.multi_source_dijkstra_path_length(g, sources, weight="length") if sources else {}
        best = max(pool, key=lambda n: (dist.get(n, math.inf), -n))
        chosen.append(best)
        pool.remove(best)
    return chosen


def voronoi(g: nx.Graph, seeds: Sequence[int]) -> dict[int, int]:
    """Each node's nearest seed along the pipes (graph Voronoi cells are connected)."""
    _, paths = nx.multi_source_dijkstra(g, list(seeds), weight="length")
    return {n: p[0] for n, p in paths.items()}


def distances_from(g: nx.Graph, node: int, targets: Sequence[int], cutoff: float = 5000.0) -> np.ndarray:
    """Trench distance (m) from one node to each target; inf beyond `cutoff` or when unconnected."""
    dist = nx.single_source_dijkstra_path_length(g, node, cutoff=cutoff, weight="length")
    return np.array([dist.get(t, math.inf) for t in targets], dtype=np.float64)
