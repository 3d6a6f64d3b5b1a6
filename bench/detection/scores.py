"""Suite scores: per-event outcomes pooled over runs into per-kind rows, false alerts per zone-week,
LeakDB's time-step metrics for water, and the targets the default rules are held to.

An alert detects an event when it is in the event's zone and starts between the event's start and its
end plus a grace period (`sentinel.backtest.score`); every other alert is false, including alerts raised
by benign anomalies (hydrant draws, holidays), which are counted apart too.
"""

from __future__ import annotations

import datetime
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from bench.detection import leakdb
from rules.zone_flows import FLOW
from sentinel.backtest import AlertSpan, EventOutcome, match_alerts, score_matched, touches
from sentinel.catalog import ROLES, Catalog
from sentinel.events import LabelledEvent

LEAK_KINDS = ("burst", "slow_leak")
SENSOR_HEALTH_KINDS = ("deadman", "flatline")  # rule kinds that judge instruments, not the network
MNF_GAMMAS = (0.10, 0.20, 0.30)  # the thresholds of LeakDB's paper
LEAKDB_STEP_S = 1800  # LeakDB's 30-minute time step
_INLET, _OUTLET = ROLES.index("inlet"), ROLES.index("outlet")
_SIZE = re.compile(r"^(small|medium|large)\b")


@dataclass(frozen=True)
class Target:
    what: str
    kind: str
    network: str
    within_s: float
    share: float
    deadlines_s: tuple[float, ...] = ()  # other deadlines to report the share at: what moving it would give


TARGETS = (
    Target("bursts detected within 15 min", "burst", "water", 15 * 60, 0.95,
           tuple(m * 60 for m in (5, 10, 15, 20, 30, 60))),
    Target("slow leaks detected within 48 h", "slow_leak", "water", 48 * 3600, 0.80,
           tuple(h * 3600 for h in (24, 36, 48, 60, 72, 96))),
)
MAX_FALSE_PER_ZONE_WEEK = 1.0


@dataclass
class CaseResult:
    """What one simulated run gave: the scorer's outcomes and what LeakDB's metrics need."""

    label: str
    network: str
    zones: int
    span_s: float
    outcomes: list[EventOutcome]
    alerts: list[AlertSpan]
    false_alerts: list[AlertSpan]
    benign_alerts: int
    false_during: list[tuple[str, ...]] = field(default_factory=list)  # per false alert: what it fell on
    truth: np.ndarray | None = None  # water only: (zones, steps) leak labels on LeakDB's grid
    alarms: np.ndarray | None = None  # ... our leak alarms on the same grid
    mask: np.ndarray | None = None  # ... steps that count (non-leak events excluded)
    inflow: np.ndarray | None = None  # ... zone net inflow, 30-minute means


def size_of(event: LabelledEvent) -> str | None:
    m = _SIZE.match(event.description or "")
    return m.group(1) if m else None


def score_case(label: str, catalog: Catalog, events: Sequence[LabelledEvent], anomalies: Sequence[LabelledEvent],
               alerts: Sequence[AlertSpan], *, span_s: float, grace_s: float,
               rule_kinds: Mapping[str, str] | None = None) -> CaseResult:
    hits, false = match_alerts(events, alerts, grace_s=grace_s, rule_kinds=rule_kinds)
    report, outcomes = score_matched(events, alerts, hits, false, zones=len(catalog.zones), span_s=span_s,
                                     grace_s=grace_s, anomalies=anomalies)
    benign = report["false_alerts_on_benign_anomalies"]
    networks = sorted({z.split("/", 1)[0] for z in catalog.zones})
    during = [falls_on(a, [*events, *anomalies], grace_s=grace_s) for a in false]
    return CaseResult(label, "+".join(networks), len(catalog.zones), span_s, outcomes, list(alerts), false, benign,
                      during)


def falls_on(alert: AlertSpan, labelled: Sequence[LabelledEvent], *, grace_s: float) -> tuple[str, ...]:
    """The kinds of labelled events and benign anomalies whose window (start to end plus grace) a false
    alert started in, in its zone or city-wide: why a rule fired where nothing it looks for happened,
    e.g. a burst rule during a slow leak it cannot see, or a holiday."""
    return tuple(sorted({ev.kind for ev in labelled if touches(alert, ev, grace_s=grace_s)}))


def false_alert_list(results: Sequence[CaseResult]) -> list[dict[str, object]]:
    """Every false alert, for whoever tunes the rules: run, rule, zone, sensor, grade, when (UTC, and
    how long it stood), and what labelled event or benign anomaly it fell on, if any."""
    rows: list[dict[str, object]] = []
    for r in results:
        during = r.false_during or [()] * len(r.false_alerts)
        for a, on in zip(r.false_alerts, during, strict=True):
            rows.append({"run": r.label, "rule": a.rule_id, "zone": f"{a.network}/{a.zone}", "sensor": a.sensor_id,
                         "severity": a.severity, "start": _utc(a.start_ns),
                         "hours": None if a.end_ns is None else round((a.end_ns - a.start_ns) / 3.6e12, 2),
                         "during": list(on)})
    return rows


def _utc(t_ns: int) -> str:
    return datetime.datetime.fromtimestamp(t_ns / 1e9, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def zone_inflows(catalog: Catalog, sensor: np.ndarray, time_ns: np.ndarray, value: np.ndarray, *, start_ns: int,
                 step_ns: int, steps: int) -> dict[str, np.ndarray]:
    """Net inflow (inlets less outlets, mean per step) of every zone with an inlet meter, by zone key."""
    out = {}
    for i, zkey in enumerate(catalog.zones):
        meters = np.flatnonzero((catalog.zone_code == i) & (catalog.quantity_code == FLOW)
                                & np.isin(catalog.role_code, (_INLET, _OUTLET)))
        if not (catalog.role_code[meters] == _INLET).any():
            continue
        total = np.zeros(steps)
        for m in meters:
            sel = sensor == m
            mean = leakdb.resample_mean(time_ns[sel], value[sel], start_ns=start_ns, step_ns=step_ns, steps=steps)
            total += mean if catalog.role_code[m] == _INLET else -mean
        out[zkey] = total
    return out


def add_leakdb_grid(res: CaseResult, catalog: Catalog, events: Sequence[LabelledEvent], alerts: Sequence[AlertSpan],
                    rule_kinds: dict[str, str], sensor: np.ndarray, time_ns: np.ndarray, value: np.ndarray, *,
                    first_ns: int, last_ns: int, utc_offset_s: int, grace_s: float) -> None:
    """LeakDB's view of a water run: one row per zone on a 30-minute grid of whole local days."""
    day = 86400 * 10**9
    off = utc_offset_s * 10**9
    start = first_ns - (first_ns + off) % day
    days = -(-(last_ns - start) // day)  # the last reading is a step before the scenario's end: round up
    step = LEAKDB_STEP_S * 10**9
    steps = int(days * (day // step))
    after_data = start + np.arange(steps) * step > last_ns  # grid steps past the last reading do not count
    zones = list(catalog.zones)
    truth = np.zeros((len(zones), steps), dtype=np.int8)
    alarms = np.zeros_like(truth)
    mask = np.ones(truth.shape, dtype=bool)
    inflow = np.full(truth.shape, np.nan)
    flows = zone_inflows(catalog, sensor, time_ns, value, start_ns=start, step_ns=step, steps=steps)
    grace = int(grace_s * 1e9)
    for i, zkey in enumerate(zones):
        network, zone = zkey.split("/", 1)
        leaks = [e for e in events if (e.network, e.zone) == (network, zone) and e.kind in LEAK_KINDS]
        other = [e for e in events if (e.network, e.zone) == (network, zone) and e.kind not in LEAK_KINDS]
        truth[i] = leakdb.step_labels([e.start_ns for e in leaks], [e.end_ns for e in leaks],
                                      start_ns=start, step_ns=step, steps=steps)
        mask[i] = (leakdb.step_labels([e.start_ns for e in other], [e.end_ns + grace for e in other],
                                      start_ns=start, step_ns=step, steps=steps) == 0) & ~after_data
        ours = [a for a in alerts if (a.network, a.zone) == (network, zone)
                and rule_kinds.get(a.rule_id) not in SENSOR_HEALTH_KINDS]
        alarms[i] = leakdb.step_labels([a.start_ns for a in ours], [(a.end_ns or last_ns) + 1 for a in ours],
                                       start_ns=start, step_ns=step, steps=steps)
    for i, zkey in enumerate(zones):
        if zkey in flows:
            inflow[i] = flows[zkey]
    res.truth, res.alarms, res.mask, res.inflow = truth, alarms, mask, inflow


@dataclass
class KindRow:
    network: str
    kind: str
    size: str | None
    events: int = 0
    detected: int = 0
    ttd_s: list[float] = field(default_factory=list)

    @property
    def recall(self) -> float | None:
        return self.detected / self.events if self.events else None

    def within(self, seconds: float) -> float | None:
        return sum(1 for t in self.ttd_s if t <= seconds) / self.events if self.events else None

    def pct(self, q: float) -> float | None:
        return float(np.percentile(self.ttd_s, q)) if self.ttd_s else None


def kind_rows(results: Sequence[CaseResult], *, by_size: bool = True) -> list[KindRow]:
    rows: dict[tuple[str, str, str | None], KindRow] = {}
    for r in results:
        for o in r.outcomes:
            ev = o.event
            size = size_of(ev) if by_size and ev.kind in LEAK_KINDS else None
            for key in {(ev.network, ev.kind, None), (ev.network, ev.kind, size)}:
                row = rows.setdefault(key, KindRow(*key))
                row.events += 1
                if o.detected:
                    row.detected += 1
                    row.ttd_s.append(max(0.0, o.time_to_detect_s or 0.0))
    order = {"small": 1, "medium": 2, "large": 3}
    return sorted(rows.values(), key=lambda k: (k.network, k.kind, order.get(k.size or "", 0)))


@dataclass(frozen=True)
class NetworkFalse:
    network: str
    alerts: int
    false: int
    benign: int
    zone_weeks: float

    @property
    def precision(self) -> float | None:
        return (self.alerts - self.false) / self.alerts if self.alerts else None

    @property
    def per_zone_week(self) -> float:
        return self.false / self.zone_weeks if self.zone_weeks else 0.0


def false_alerts(results: Sequence[CaseResult]) -> list[NetworkFalse]:
    acc: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0, 0.0])
    for r in results:
        a = acc[r.network]
        a[0] += len(r.alerts)
        a[1] += len(r.false_alerts)
        a[2] += r.benign_alerts
        a[3] += r.zones * r.span_s / (7 * 86400)
    return [NetworkFalse(n, int(a[0]), int(a[1]), int(a[2]), a[3]) for n, a in sorted(acc.items())]


def false_by_rule(results: Sequence[CaseResult]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for r in results:
        for a in r.false_alerts:
            out[a.rule_id] += 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def leakdb_rows(results: Sequence[CaseResult]) -> dict[str, leakdb.LeakdbScore]:
    """Ours and LeakDB's MNF baseline at each of the paper's thresholds, pooled over every water zone."""
    water = [r for r in results if r.truth is not None]
    if not water:
        return {}
    truth = np.concatenate([r.truth for r in water])  # type: ignore[misc]
    mask = np.concatenate([r.mask for r in water])  # type: ignore[misc]
    rows = {"Lifeline Sentinel (default rules)": leakdb.score_leakdb(
        truth, np.concatenate([r.alarms for r in water]), mask=mask)}  # type: ignore[misc]
    inflow = np.concatenate([r.inflow for r in water])  # type: ignore[misc]
    steps_per_day = 86400 // LEAKDB_STEP_S
    for gamma in MNF_GAMMAS:
        alarms = np.stack([leakdb.mnf_labels(row, gamma=gamma, steps_per_day=steps_per_day)
                           if not np.isnan(row).all() else np.zeros(len(row), dtype=np.int8) for row in inflow])
        rows[f"LeakDB MNF baseline, gamma {gamma:.2f}"] = leakdb.score_leakdb(truth, alarms, mask=mask)
    return rows
