"""Unit tests for rule files (`sentinel rules test`): replay an input through the real pipeline, compare
the alerts it opened with the ones a test file expects.

The runner only computes: it returns results (with file, case and line for every problem) and never
prints, so the CLI, CI annotations and the console can each present them their own way. Input goes
through `Pipeline.process` (engine + alert book) exactly as live data would, so a passing test says
something about production, not about a test double.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import ValidationError

from alerts.model import Alert
from rules.detectors.registry import DETECTORS
from rules.detectors.zone import ZoneDetector
from rules.durations import format_duration
from rules.loader import RuleSet, _node_at, load_rules
from rules.testing_schema import (
    DEFAULT_START,
    CatalogRef,
    ExpectedAlert,
    TestCase,
    TestFile,
    compose,
    expand,
    field_path,
    located_errors,
    parse_test_file,
)
from sentinel.catalog import Catalog, load_catalog
from sentinel.errors import InputError, InputErrors
from sentinel.pipeline import Pipeline
from sentinel.readings import Batch, iso, parse_time

BATCH_SIZE = 50_000  # the engine's answer does not depend on it; it only bounds memory per step
ProblemKind = Literal["missing", "mismatch", "unexpected", "rule_error"]


@dataclass(frozen=True)
class Problem:
    """One reason a case failed, located at the expectation (or at the case for unexpected alerts)."""

    kind: ProblemKind
    line: int
    message: str
    expected: dict[str, Any] | None = None
    actual: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "line": self.line, "message": self.message, "expected": self.expected,
                "actual": self.actual}


@dataclass(frozen=True)
class CaseResult:
    file: str
    name: str
    line: int
    start_ns: int
    problems: tuple[Problem, ...]
    alerts: tuple[dict[str, Any], ...]  # every alert the input opened, summarised (see alert_summary)
    readings: int
    seconds: float

    @property
    def passed(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "line": self.line, "passed": self.passed, "start": iso(self.start_ns),
                "readings": self.readings, "seconds": round(self.seconds, 3),
                "problems": [p.to_dict() for p in self.problems], "alerts": list(self.alerts)}


@dataclass(frozen=True)
class FileResult:
    file: str
    cases: tuple[CaseResult, ...] = ()
    errors: tuple[InputError, ...] = ()  # the file is invalid: nothing was run

    @property
    def invalid(self) -> bool:
        return bool(self.errors)

    @property
    def passed(self) -> bool:
        return not self.errors and all(c.passed for c in self.cases)

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "valid": not self.invalid, "passed": self.passed,
                "errors": [{"source": e.source, "line": e.line, "field": e.field, "message": e.detail,
                            "text": str(e)} for e in self.errors],
                "cases": [c.to_dict() for c in self.cases]}


@dataclass(frozen=True)
class RunResult:
    files: tuple[FileResult, ...]

    @property
    def cases(self) -> list[CaseResult]:
        return [c for f in self.files for c in f.cases]

    @property
    def exit_code(self) -> int:
        """0 all passed, 1 some case failed, 2 some test file is invalid (its cases did not run)."""
        if any(f.invalid for f in self.files):
            return 2
        return 0 if all(f.passed for f in self.files) else 1

    def summary(self) -> dict[str, int]:
        cases = self.cases
        return {"files": len(self.files), "invalid_files": sum(f.invalid for f in self.files),
                "cases": len(cases), "passed": sum(c.passed for c in cases),
                "failed": sum(not c.passed for c in cases)}

    def to_dict(self) -> dict[str, Any]:
        return {"exit_code": self.exit_code, "summary": self.summary(),
                "files": [f.to_dict() for f in self.files]}


# -- describing alerts and expectations ------------------------------------------------------------

def offset(ns: int, start_ns: int) -> str:
    """`+31m` from the series start: how test files write times, so diffs read like the file."""
    delta = (ns - start_ns) / 1e9
    return ("-" if delta < 0 else "+") + format_duration(abs(delta))


def alert_state(a: Alert) -> str:
    """firing, cleared (condition gone, waiting out resolve_after) or resolved."""
    if a.state == "resolved":
        return "resolved"
    return "cleared" if a.cleared_ns is not None else "firing"


def alert_summary(a: Alert, start_ns: int) -> dict[str, Any]:
    return {"rule": a.rule_id, "network": a.network, "zone": a.zone, "subject": a.subject,
            "grade": a.severity.label, "grade_zh": a.severity.grade_zh, "state": alert_state(a),
            "opened": iso(a.started_ns), "opened_offset": offset(a.started_ns, start_ns),
            "resolved": iso(a.resolved_ns) if a.resolved_ns is not None else None, "message": a.message}


def describe_alert(a: Alert, start_ns: int) -> str:
    return (f"{a.rule_id} {a.network}/{a.zone} {a.subject} {a.severity.label} ({a.severity.grade_zh}) opened "
            f"{offset(a.started_ns, start_ns)} ({iso(a.started_ns)}), {alert_state(a)}")


@dataclass(frozen=True)
class Expectation:
    spec: ExpectedAlert
    line: int
    lo_ns: int
    hi_ns: int

    def where(self, a: Alert) -> bool:
        """Same rule, zone and (if given) subject: the alert this expectation is about."""
        zone = f"{a.network}/{a.zone}" if "/" in self.spec.zone else a.zone
        return (a.rule_id == self.spec.rule and zone == self.spec.zone
                and (self.spec.subject is None or a.subject == self.spec.subject))

    def differences(self, a: Alert) -> list[str]:
        out = []
        if a.severity != self.spec.grade:
            out.append("grade")
        if not self.lo_ns <= a.started_ns <= self.hi_ns:
            out.append("time")
        if self.spec.state is not None and alert_state(a) != self.spec.state:
            out.append("state")
        if self.spec.message is not None and self.spec.message not in a.message:
            out.append("message")
        return out

    def describe(self, start_ns: int) -> str:
        s = self.spec
        subject = f" {s.subject}" if s.subject else ""
        state = f", {s.state}" if s.state else ""
        message = f", message containing {s.message!r}" if s.message is not None else ""
        return (f"{s.rule} {s.zone}{subject} {s.grade.label} ({s.grade.grade_zh}) opened "
                f"{offset(self.lo_ns, start_ns)}..{offset(self.hi_ns, start_ns)}{state}{message}")

    def to_dict(self, start_ns: int) -> dict[str, Any]:
        s = self.spec
        return {"rule": s.rule, "zone": s.zone, "subject": s.subject, "grade": s.grade.label,
                "state": s.state, "message": s.message, "from": iso(self.lo_ns), "to": iso(self.hi_ns),
                "from_offset": offset(self.lo_ns, start_ns), "to_offset": offset(self.hi_ns, start_ns)}


# -- comparing ------------------------------------------------------------------------------------

def compare(expectations: Sequence[Expectation], alerts: Sequence[Alert], start_ns: int, *, case_line: int,
            no_other_alerts: bool, unmatched_rules: Iterable[str] = ()) -> list[Problem]:
    """Pair expected with actual alerts: exact matches first (the most constrained expectation first, so
    a wide window does not take another's alert), then the nearest same-subject alert as a mismatch."""
    used: set[int] = set()
    matched: set[int] = set()
    exact = {i: [k for k, a in enumerate(alerts) if e.where(a) and not e.differences(a)]
             for i, e in enumerate(expectations)}
    for i in sorted(exact, key=lambda i: (len(exact[i]), i)):
        free = [k for k in exact[i] if k not in used]
        if free:
            used.add(free[0])
            matched.add(i)
    problems: list[Problem] = []
    silent = set(unmatched_rules)
    for i, e in enumerate(expectations):
        if i in matched:
            continue
        near = [k for k, a in enumerate(alerts) if k not in used and e.where(a)]
        if near:
            k = min(near, key=lambda k: max(e.lo_ns - alerts[k].started_ns, alerts[k].started_ns - e.hi_ns, 0))
            used.add(k)
            a = alerts[k]
            wrong = e.differences(a)
            said = f", message {a.message!r}" if "message" in wrong else ""
            problems.append(Problem(
                "mismatch", e.line, f"wrong {', '.join(wrong)}: expected {e.describe(start_ns)}; "
                f"got {describe_alert(a, start_ns)}{said}", e.to_dict(start_ns), alert_summary(a, start_ns)))
            continue
        hint = ""
        if e.spec.rule in silent:
            hint = "; the rule selects no sensor or zone in this catalog"
        else:
            others = [describe_alert(a, start_ns) for a in alerts if a.rule_id == e.spec.rule]
            hint = f"; this rule opened instead: {'; '.join(others)}" if others else "; the rule opened no alert"
        problems.append(Problem("missing", e.line, f"expected but missing: {e.describe(start_ns)}{hint}",
                                e.to_dict(start_ns)))
    if no_other_alerts:
        for k, a in enumerate(alerts):
            if k not in used:
                problems.append(Problem("unexpected", case_line, f"unexpected: {describe_alert(a, start_ns)}",
                                        None, alert_summary(a, start_ns)))
    return problems


# -- preparing a test file ------------------------------------------------------------------------

@dataclass
class _Prepared:
    case: TestCase
    line: int
    catalog: Catalog
    batch: Batch
    start_ns: int
    expectations: list[Expectation]
    resolve_after_s: float


class _Preparer:
    """Everything that can be wrong with a test file is found here, before anything runs, and reported
    with file and line; then the run itself can only pass or fail."""

    def __init__(self, path: Path, model: TestFile, root: yaml.Node) -> None:
        self.path, self.model, self.root = path, model, root
        self.source = str(path)
        self.base = path.parent
        self.errors: list[InputError] = []
        self._catalogs: dict[int, Catalog | None] = {}

    def error(self, message: str, loc: Sequence[str | int]) -> None:
        """A located error: line from the YAML tree, field as `tests[2] (name) alerts[0].rule`."""
        node = _node_at(self.root, list(loc))
        where = ""
        if len(loc) >= 2 and loc[0] == "tests" and isinstance(loc[1], int):
            where = f"tests[{loc[1]}] ({self.model.tests[loc[1]].name})"
        path = " ".join(p for p in (where, field_path(loc[2:] if where else loc)) if p) or None
        self.errors.append(InputError(message, source=self.source, line=node.start_mark.line + 1, field=path))

    def line(self, loc: Sequence[str | int]) -> int:
        return _node_at(self.root, list(loc)).start_mark.line + 1

    def rules(self) -> RuleSet | None:
        paths = [self.base / p for p in self.model.rule_files] or None
        try:
            return load_rules(paths)
        except InputErrors as exc:  # located in the rule file itself: that is where the fix goes
            self.errors.extend(exc.errors)
            return None

    def catalog(self, ref: CatalogRef, loc: Sequence[str | int]) -> Catalog | None:
        key = id(ref)
        if key not in self._catalogs:
            self._catalogs[key] = self._load_catalog(ref, loc)
        return self._catalogs[key]

    def _load_catalog(self, ref: CatalogRef, loc: Sequence[str | int]) -> Catalog | None:
        if ref.path is not None:
            try:
                return load_catalog(self.base / ref.path)
            except InputErrors as exc:
                self.errors.extend(exc.errors)
            except OSError as exc:
                self.error(f"cannot read catalog {ref.path}: {exc.strerror}", loc)
            return None
        sensors = ref.sensors or []
        seen: set[str] = set()
        for i, s in enumerate(sensors):
            if s.sensor_id in seen:
                self.error(f"duplicate sensor_id {s.sensor_id!r}", [*loc, i, "sensor_id"])
            seen.add(s.sensor_id)
        if not sensors:
            self.error("the catalog has no sensors", loc)
        return Catalog.from_sensors(sensors) if sensors and len(seen) == len(sensors) else None

    def case(self, i: int, case: TestCase, ruleset: RuleSet) -> _Prepared | None:
        loc: list[str | int] = ["tests", i]
        n_errors = len(self.errors)
        catalog, batch, start_ns = self._input(case, loc)
        if catalog is None:
            return None
        # expectations are checked even when the input is broken: one pass shows every mistake
        expectations = self._expectations(case, catalog, ruleset, start_ns, loc)
        if batch is None or len(self.errors) > n_errors:
            return None
        resolve = case.resolve_after if case.resolve_after is not None else self.model.resolve_after
        return _Prepared(case, self.line(loc), catalog, batch, start_ns, expectations, resolve)

    def _input(self, case: TestCase, loc: list[str | int]) -> tuple[Catalog | None, Batch | None, int]:
        """The case's catalog, readings and series start (what offsets count from)."""
        default_start = case.start if case.start is not None else parse_time(DEFAULT_START)
        if case.scenario is not None:
            got = self._scenario(case.scenario, [*loc, "scenario"])
            if got is None:
                return None, None, default_start
            catalog, batch, scenario_start = got
            return catalog, batch, case.start if case.start is not None else scenario_start
        ref, ref_loc = ((case.catalog, [*loc, "catalog"]) if case.catalog is not None
                        else (self.model.catalog, ["catalog"]))
        if ref is None:
            self.error("no catalog: give `catalog:` in the file or in this test", loc)
            return None, None, default_start
        catalog = self.catalog(ref, ref_loc)
        if catalog is None:
            return None, None, default_start
        if case.replay is None:
            return catalog, self._series(case, catalog, default_start, loc), default_start
        batch = self._replay(case.replay, catalog, [*loc, "replay"])
        if batch is not None and case.start is None and len(batch):
            return catalog, batch, int(batch.time_ns.min())
        return catalog, batch, default_start

    def _series(self, case: TestCase, catalog: Catalog, start_ns: int, loc: list[str | int]) -> Batch | None:
        sensors, times, values = [], [], []
        n_errors = len(self.errors)
        for sensor_id, s in (case.series or {}).items():
            where = [*loc, "series", sensor_id]
            idx = catalog.index.get(sensor_id)
            if idx is None:
                close = difflib.get_close_matches(sensor_id, list(catalog.index), n=1)
                self.error(f"no sensor {sensor_id!r} in the catalog" + (f"; did you mean {close[0]!r}?"
                                                                        if close else ""), where)
                continue
            raw = np.asarray(expand(s.values), dtype=np.float64)
            step = s.step or case.step or float(catalog.interval_s[idx])
            t0 = s.start.resolve(start_ns) if s.start is not None else start_ns
            t = t0 + np.arange(len(raw), dtype=np.int64) * round(step * 1e9)
            keep = ~np.isnan(raw)
            value = raw[keep] * catalog.scale[idx] + catalog.offset[idx]
            bad = np.flatnonzero((value < catalog.lo[idx]) | (value > catalog.hi[idx]))
            if len(bad):
                sensor = catalog.sensors[idx]
                k = int(np.flatnonzero(keep)[bad[0]])
                self.error(f"sample {k + 1} ({raw[k]:g} {sensor.unit}) is outside the plausible range of "
                           f"{sensor.quantity}; live ingest would dead-letter it", [*where, "values"])
                continue
            sensors.append(np.full(int(keep.sum()), idx, dtype=np.int32))
            times.append(t[keep])
            values.append(value)
        if not sensors:
            if len(self.errors) == n_errors:
                self.error("no readings in `series`", [*loc, "series"])
            return None
        s_all, t_all, v_all = np.concatenate(sensors), np.concatenate(times), np.concatenate(values)
        order = np.lexsort((s_all, t_all))  # time order, then catalog order: as a live stream arrives
        return Batch.of(s_all[order], t_all[order], v_all[order])

    def _replay(self, name: str, catalog: Catalog, loc: list[str | int]) -> Batch | None:
        from ingest.replay import read_replay

        path = self.base / name
        try:
            data = read_replay(path, catalog)
        except InputError as exc:
            self.errors.append(exc)
            return None
        except OSError as exc:
            self.error(f"cannot read {name}: {exc.strerror}", loc)
            return None
        if data.dead_letters:  # a row live ingest would refuse is a mistake in the test, not an input
            for letter in data.dead_letters[:5]:
                self.errors.append(InputError(letter.reason, source=letter.source, field=letter.field))
            return None
        return data.batch

    def _scenario(self, name: str, loc: list[str | int]) -> tuple[Catalog, Batch, int] | None:
        from simulators.dispatch import engine_of

        path = self.base / name
        if path.exists() and engine_of(path) != "synthetic":
            return self._physics_scenario(name, path, loc)
        return self._synthetic_scenario(name, path, loc)

    def _physics_scenario(self, name: str, path: Path, loc: list[str | int]) -> tuple[Catalog, Batch, int] | None:
        """A hydraulic scenario (`engine: wntr | pandapipes-gas | pandapipes-heat`), simulated here."""
        from simulators.dispatch import load_file, simulate

        try:
            engine, scenario = load_file(path)
            result = simulate(engine, scenario, show_progress=False)
        except (ValidationError, ValueError, OSError) as exc:
            self.error(f"cannot simulate {name}: {exc}", loc)
            return None
        return result.sensor_catalog(), result.to_batch(), int(scenario.start.timestamp()) * 10**9

    def _synthetic_scenario(self, name: str, path: Path, loc: list[str | int]) -> tuple[Catalog, Batch, int] | None:
        from simulators.scenario import Scenario
        from simulators.synthetic import generate

        try:
            root, data = compose(path.read_text(encoding="utf-8"), str(path))
        except OSError as exc:
            self.error(f"cannot read {name}: {exc.strerror}", loc)
            return None
        except InputErrors as exc:
            self.errors.extend(exc.errors)
            return None
        if root is None or not isinstance(data, dict):
            self.errors.append(InputError("a scenario is a mapping with start, duration, networks and events",
                                          source=str(path), line=1))
            return None
        try:
            scenario = Scenario.model_validate(data)
        except ValidationError as exc:
            self.errors.extend(located_errors(exc, root, data, str(path), lambda *_: "").errors)
            return None
        try:
            result = generate(scenario)
        except ValueError as exc:  # e.g. an event naming a zone the scenario does not have
            self.error(f"cannot simulate {name}: {exc}", loc)
            return None
        return result.sensor_catalog(), result.to_batch(), int(scenario.start.timestamp()) * 10**9

    def _expectations(self, case: TestCase, catalog: Catalog, ruleset: RuleSet, start_ns: int,
                      loc: list[str | int]) -> list[Expectation]:
        rules = {r.id: r for r in ruleset.rules}
        zones = set(catalog.zones) | {z.split("/", 1)[1] for z in catalog.zones}
        out = []
        for j, e in enumerate(case.alerts):
            where = [*loc, "alerts", j]
            rule = rules.get(e.rule)
            if rule is None:
                close = difflib.get_close_matches(e.rule, list(rules), n=1)
                self.error(f"no rule {e.rule!r} in {', '.join(ruleset.sources)}"
                           + (f"; did you mean {close[0]!r}?" if close else ""), [*where, "rule"])
            elif not rule.enabled:
                self.error(f"rule {e.rule!r} is disabled: it can never open an alert", [*where, "rule"])
            if e.zone not in zones:
                self.error(f"no zone {e.zone!r} in the catalog (zones: {', '.join(catalog.zones)})",
                           [*where, "zone"])
            self._check_subject(e, rule, catalog, [*where, "subject"])
            lo, hi = e.window.from_.resolve(start_ns), e.window.to.resolve(start_ns)
            if hi < lo:
                self.error("window `to` is before `from`", [*where, "window"])
            out.append(Expectation(e, self.line(where), lo, hi))
        return out

    def _check_subject(self, e: ExpectedAlert, rule: Any, catalog: Catalog, loc: list[str | int]) -> None:
        if e.subject is None:
            return
        cls = DETECTORS[rule.kind] if rule is not None else None
        zone_rule = cls is not None and issubclass(cls, ZoneDetector) and not cls.sensor_subjects
        idx = catalog.index.get(e.subject)
        if zone_rule and idx is not None:
            self.error(f"{e.rule} is a zone rule: its subject is the zone name, not a sensor", loc)
        elif not zone_rule and idx is None:
            close = difflib.get_close_matches(e.subject, list(catalog.index), n=1)
            self.error(f"no sensor {e.subject!r} in the catalog" + (f"; did you mean {close[0]!r}?"
                                                                    if close else ""), loc)
        elif idx is not None:
            network, zone = catalog.zone_of(idx)
            if e.zone not in (zone, f"{network}/{zone}"):
                self.error(f"sensor {e.subject} is in {network}/{zone}, not {e.zone}", loc)


# -- running --------------------------------------------------------------------------------------

def _run_case(source: str, p: _Prepared, ruleset: RuleSet) -> CaseResult:
    began = time.perf_counter()
    pipeline = Pipeline(p.catalog, ruleset, resolve_after_s=p.resolve_after_s)
    for part in p.batch.split(BATCH_SIZE):
        pipeline.process(part)
    alerts = sorted(pipeline.alerts.values(), key=lambda a: (a.started_ns, a.rule_id, a.subject))
    problems = [Problem("rule_error", p.line, f"rule {rid} stopped after an error: {why}")
                for rid, why in sorted(pipeline.state.failed.items())]
    problems += compare(p.expectations, alerts, p.start_ns, case_line=p.line,
                        no_other_alerts=p.case.no_other_alerts, unmatched_rules=pipeline.engine.unmatched)
    return CaseResult(source, p.case.name, p.line, p.start_ns, tuple(problems),
                      tuple(alert_summary(a, p.start_ns) for a in alerts), len(p.batch),
                      time.perf_counter() - began)


def run_file(path: str | Path) -> FileResult:
    """Validate one test file completely, then run its cases; an invalid file runs nothing."""
    path = Path(path)
    source = str(path)
    try:
        model, root = parse_test_file(path.read_text(encoding="utf-8"), source)
    except InputErrors as exc:
        return FileResult(source, errors=tuple(exc.errors))
    except OSError as exc:
        return FileResult(source, errors=(InputError(f"cannot read: {exc.strerror}", source=source),))
    prep = _Preparer(path, model, root)
    ruleset = prep.rules()
    if ruleset is None:
        return FileResult(source, errors=tuple(prep.errors))
    prepared = [prep.case(i, case, ruleset) for i, case in enumerate(model.tests)]
    if prep.errors:
        return FileResult(source, errors=tuple(prep.errors))
    return FileResult(source, tuple(_run_case(source, p, ruleset) for p in prepared if p is not None))


def run_files(paths: Iterable[str | Path]) -> RunResult:
    return RunResult(tuple(run_file(p) for p in paths))
