"""Learning from history: the rules' baselines taught by recorded readings before going live.

A rule's state is a pure function of the readings it has seen, so history (a SCADA export, or InfluxDB's
last hours) fed through `Engine.step` in event-time order leaves the state a live engine that saw it would
have. What it must not leave is history's alarms (no alert was raised for them here, so a condition still
present when going live raises again like any other: `forget_alarms`), nor its clock (the engine heard
nothing between the history's end and the first live reading: `listen_afresh`).

Without it a new deployment is blind where the rules compare with the same weekday (burst fingerprint,
inflow drop and excess, night flow): ten days after commissioning. `sentinel learn` writes the state file
`sentinel run --state` starts from, and says per zone which weekdays it was taught and how far each such
rule got with what it must learn before it judges (`zone_coverage`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ingest.replay import read_replay
from rules.calendar import holiday_days, local_day, weekday_profiles
from rules.engine import CompiledRule, Engine, EngineState
from rules.levels import NO_TIME
from rules.loader import RuleSet
from rules.schema import RuleBase
from sentinel.catalog import ROLES, Catalog
from sentinel.deadletter import DeadLetter
from sentinel.readings import NS, QUALITY_BAD, Batch
from sentinel.units import QUANTITIES

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
ZONE_METER_ROLES = ("inlet", "outlet")


@dataclass(frozen=True)
class Learned:
    """What a run over history fed the engine."""

    readings: int
    batches: int
    first_ns: int | None
    last_ns: int | None
    seconds: float


def feed(engine: Engine, state: EngineState, batches: Iterable[Batch],
         progress: Callable[[int], None] | None = None) -> Learned:
    """Step `engine` on `state` through `batches` (in event-time order), discard the detections, then
    forget the alarms (`ready_to_go_live` also resets the clock, for history that ended a while ago).
    `progress` is told the readings fed so far after each batch."""
    started = time.monotonic()
    n = count = 0
    first = last = None
    for batch in batches:
        if not len(batch):
            continue
        engine.step(state, batch)
        n += len(batch)
        count += 1
        first = int(batch.time_ns[0]) if first is None else first
        last = int(batch.time_ns[-1])
        if progress is not None:
            progress(n)
    forget_alarms(state)
    return Learned(n, count, first, last, time.monotonic() - started)


EXPLANATION_FLAGS = ("explained", "explainer_standing", "covered_night")  # night flow's explained_by marks


def forget_alarms(state: EngineState) -> None:
    """Keep what history taught the baselines, not its alarms: no alert exists for them, so a condition
    still present when going live must raise again (and then clear) like any other. An alarm that was
    explained by another one (night flow by a burst) forgets that too: the explaining alarm is gone."""
    for rs in state.rules.values():
        rs.tracker.level[:] = 0
        rs.tracker.since[:] = NO_TIME
        if isinstance(rs.detector, dict):
            for flag in EXPLANATION_FLAGS:
                if flag in rs.detector:
                    rs.detector[flag][:] = False


def ready_to_go_live(state: EngineState) -> None:
    """What history leaves behind for going live: its lessons, not its alarms nor its clock."""
    forget_alarms(state)
    listen_afresh(state)


def listen_afresh(state: EngineState) -> None:
    """Going live from learned history: the engine has heard nothing between the history's end and the
    first live reading, so a sensor's silence is counted from when it starts listening again (the next
    reading), not from its last reading in the history; else every sensor would be overdue at once."""
    state.first_wm = NO_TIME


def judges_by_weekday(rule: RuleBase) -> bool:
    """Whether the rule compares a zone with the same weekday, so it is blind on weekdays not yet seen."""
    return rule.kind == "inflow_excess" or getattr(rule, "reference", None) == "weekday"


@dataclass(frozen=True)
class ZoneCoverage:
    """What history taught about one zone: the local days its boundary flow meters were heard on, and how
    far each same-weekday rule got with what it must learn before it judges."""

    zone: str  # "network/zone"
    days: int
    weekdays: frozenset[int]  # 0 Monday .. 6 Sunday (holidays count as Sunday, as in the rules)
    ready: dict[str, float] = field(default_factory=dict)  # rule id -> share learned (1: judging)

    @property
    def missing(self) -> list[str]:
        return [WEEKDAYS[d] for d in range(7) if d not in self.weekdays]


def _weekday_compiled(engine: Engine) -> list[CompiledRule]:
    return [c for c in engine.rules if c.detector.subject_is_zone and judges_by_weekday(c.detector.rule)]


def weekday_rules(engine: Engine) -> list[str]:
    """The rules of this engine that compare its zones with the same weekday."""
    return [c.detector.rule.id for c in _weekday_compiled(engine)]


def zone_coverage(engine: Engine, state: EngineState, batch: Batch) -> list[ZoneCoverage]:
    """For each zone a same-weekday rule watches: on how many local days, and which weekdays, its inlet or
    outlet flow meters sent good readings, and each such rule's readiness there."""
    catalog, settings = engine.catalog, engine.ruleset.settings
    compiled = _weekday_compiled(engine)
    zones = sorted({int(z) for c in compiled for z in c.detector.subjects})
    if not zones:
        return []
    meter = np.isin(catalog.role_code, [ROLES.index(r) for r in ZONE_METER_ROLES]) & (
        catalog.quantity_code == QUANTITIES.index("flow"))
    heard = meter[batch.sensor] & ~np.isnan(batch.value) & (batch.quality != QUALITY_BAD)
    day = local_day(batch.time_ns[heard], int(settings.utc_offset_h * 3600 * NS))
    zone = catalog.zone_code[batch.sensor[heard]]
    holidays = holiday_days(settings.holidays)
    ready: dict[int, dict[str, float]] = {z: {} for z in zones}
    for c in compiled:
        share = c.detector.readiness(state.rules[c.detector.rule.id].detector)
        if share is not None:
            for z, r in zip(c.detector.subjects, share, strict=True):
                ready[int(z)][c.detector.rule.id] = float(r)
    out = []
    for z in zones:
        days = np.unique(day[zone == z])
        weekdays = frozenset(int(w) for w in weekday_profiles(days, holidays))
        out.append(ZoneCoverage(catalog.zones[z], len(days), weekdays, ready[z]))
    return out


@dataclass
class FileLearning:
    """`learn_file`'s outcome: the state (and the engine it fits), what fed it, and what the file held that
    could not be used."""

    engine: Engine
    state: EngineState
    learned: Learned
    coverage: list[ZoneCoverage]
    dead_letters: list[DeadLetter] = field(default_factory=list)
    form: str = "long"


def learn_file(catalog: Catalog, ruleset: RuleSet, readings: str | Path, *, batch_size: int = 5000,
               on_read: Callable[[int, int], None] | None = None,
               on_fed: Callable[[int, int], None] | None = None) -> FileLearning:
    """Read a replay file (long or wide form) and learn from it, from a fresh state.

    `on_read(done, total)` reports reading progress in characters, `on_fed(done, total)` in readings."""
    data = read_replay(readings, catalog, progress=on_read)
    engine = Engine(catalog, ruleset)
    state = engine.new_state()
    total = len(data.batch)
    learned = feed(engine, state, data.batch.split(batch_size),
                   None if on_fed is None else (lambda done: on_fed(done, total)))
    listen_afresh(state)  # an export ends before the processor starts
    coverage = zone_coverage(engine, state, data.batch)
    return FileLearning(engine, state, learned, coverage, data.dead_letters, data.form)
