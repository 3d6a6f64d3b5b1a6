"""Rule changes without touching the server's disk: upload, validate, dry-run, activate, roll back.

Every uploaded file becomes a numbered version in the ops DB. Activating writes the version to the
processor's rules file atomically (temp file + rename), and the running processor's RulesWatcher
hot-reloads it; a file with an error can never get there, because it is validated against the catalog
first. The activation history is a stack: rollback returns to the version active before the current
one. A rules file changed on disk by hand is adopted as a version of its own, so history stays complete.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from alerts.model import Alert
from rules.engine import Engine
from rules.loader import RuleSet, explanation_errors, load_rules, parse_rule_file
from rules.schema import Rule, Settings
from sentinel.catalog import Catalog
from sentinel.console.ops_db import Activation, OpsDB, RuleVersion
from sentinel.console.store_reader import StoreReader
from sentinel.errors import InputError, InputErrors
from sentinel.pipeline import Pipeline
from sentinel.readings import NS, iso

COMMON_FIELDS = ("id", "description", "enabled", "select", "severity", "for", "kind")


class RulesInvalid(ValueError):
    """The uploaded rules have errors; each one names file, line and field."""

    def __init__(self, errors: Sequence[InputError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))

    def located(self) -> list[dict[str, Any]]:
        return [{"file": e.source, "line": e.line, "field": e.field, "message": e.detail} for e in self.errors]


class NothingToRollBack(RuntimeError):
    pass


class ActiveRulesBroken(RuntimeError):
    """The rules file on disk does not load (edited by hand): nothing to compare a dry run against."""


def _plain(v: Any) -> Any:
    """A rule dump as JSON: grades as their labels (yellow/orange/red), tuples as lists."""
    if isinstance(v, Enum) and hasattr(v, "label"):
        return v.label
    if isinstance(v, dict):
        return {(_plain(k) if isinstance(k, Enum) else k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v


def rule_to_dict(rule: Rule) -> dict[str, Any]:
    """What an operator needs to read a rule: the common fields and its kind's parameters (thresholds)."""
    d = _plain(rule.model_dump(by_alias=True))
    return {"id": d["id"], "kind": d["kind"], "description": d["description"], "enabled": d["enabled"],
            "severity": d["severity"], "for_s": d["for"],
            "select": {k: v for k, v in d["select"].items() if v},
            "params": {k: v for k, v in d.items() if k not in COMMON_FIELDS}}


@dataclass
class Validation:
    ruleset: RuleSet
    unmatched: list[str]
    subjects: dict[str, int]

    def summary(self) -> dict[str, Any]:
        return {"valid": True, "rules": [dict(rule_to_dict(r), subjects=self.subjects.get(r.id, 0))
                                         for r in self.ruleset.rules],
                "unmatched": self.unmatched}


@dataclass
class DryRun:
    start_ns: int
    end_ns: int
    readings: int
    active: list[Alert] = field(default_factory=list)
    candidate: list[Alert] = field(default_factory=list)

    @staticmethod
    def _by_key(alerts: list[Alert]) -> dict[tuple[str, str], list[Alert]]:
        out: dict[tuple[str, str], list[Alert]] = defaultdict(list)
        for a in alerts:
            out[a.key].append(a)
        return out

    def diff(self) -> dict[str, list[dict[str, Any]]]:
        """Per (rule, subject): only with the candidate (added), only with the active rules (removed), or
        with both but a different count, peak grade or start (changed)."""
        act, cand = self._by_key(self.active), self._by_key(self.candidate)

        def row(key: tuple[str, str], a: list[Alert], c: list[Alert]) -> dict[str, Any]:
            def side(xs: list[Alert]) -> dict[str, Any]:
                return {"count": len(xs), "severity": max(x.severity for x in xs).label if xs else None,
                        "first_start": iso(min(x.started_ns for x in xs)) if xs else None}
            return {"rule_id": key[0], "subject": key[1], "active": side(a), "candidate": side(c)}

        added = [row(k, [], v) for k, v in sorted(cand.items()) if k not in act]
        removed = [row(k, v, []) for k, v in sorted(act.items()) if k not in cand]
        changed = []
        for k in sorted(set(act) & set(cand)):
            a, c = act[k], cand[k]
            if [(x.started_ns, x.severity) for x in a] != [(x.started_ns, x.severity) for x in c]:
                changed.append(row(k, a, c))
        return {"added": added, "removed": removed, "changed": changed}


def _replay(catalog: Catalog, ruleset: RuleSet, batch: Any, resolve_after_s: float) -> list[Alert]:
    pipe = Pipeline(catalog, ruleset, resolve_after_s=resolve_after_s)
    for part in batch.split(50_000):
        pipe.process(part)
    return sorted(pipe.alerts.values(), key=lambda a: (a.started_ns, a.rule_id, a.subject))


class RulesManager:
    def __init__(self, active_path: str | Path, ops_db: OpsDB, catalog: Catalog, store_path: str | Path, *,
                 other_paths: Sequence[str | Path] = (), resolve_after_s: float = 900.0) -> None:
        """`active_path`: the rules file the processor was started with (`--rules`), which this manages;
        `other_paths`: further rule files it also loads, which stay as they are (ids must not clash)."""
        self.active_path = Path(active_path)
        self.ops = ops_db
        self.catalog = catalog
        self.store_path = Path(store_path)
        self.other_paths = [Path(p) for p in other_paths]
        self.resolve_after_s = resolve_after_s
        self._lock = threading.Lock()
        self.adopt_disk()

    # -- what is active -------------------------------------------------------------------------------

    def stack(self) -> list[int]:
        """Versions as activated, rolled-back ones popped: the last is active, the one before it is what
        a rollback returns to."""
        stack: list[int] = []
        for a in self.ops.activations():
            if a.action == "rollback" and stack:
                stack.pop()
                if stack and stack[-1] == a.version:
                    continue
            stack.append(a.version)
        return stack

    def active_version(self) -> int | None:
        s = self.stack()
        return s[-1] if s else None

    def adopt_disk(self) -> RuleVersion | None:
        """Record the rules file as a version if it is not the active one (edited by hand, or first run)."""
        with self._lock:
            if not self.active_path.exists():
                return None
            text = self.active_path.read_text(encoding="utf-8")
            current = self.active_version()
            rv = self.ops.rule_version(current) if current is not None else None
            if rv is not None and rv.text == text:
                return None
            new = self.ops.add_rule_version(text, self.active_path.name, "found on disk", "system")
            self.ops.add_activation(new.version, "adopt", "system", f"{self.active_path} as it was on disk")
            return new

    def _others(self) -> tuple[RuleSet | None, bool]:
        """The unmanaged rule files, and whether any of them sets `settings` (else the defaults apply)."""
        if not self.other_paths:
            return None, False
        try:
            explicit = any(parse_rule_file(p.read_text(encoding="utf-8"), str(p)).settings is not None
                           for p in self.other_paths)
            return load_rules(self.other_paths), explicit
        except InputErrors as exc:  # located in those files: the engineer sees where
            raise RulesInvalid(exc.errors) from None

    def active_ruleset(self) -> RuleSet:
        """What the processor runs: the managed file and the others (the shipped defaults if neither).
        ActiveRulesBroken if they have errors (the processor then still runs an older version)."""
        paths = ([self.active_path] if self.active_path.exists() else []) + self.other_paths
        try:
            return load_rules(paths or None)
        except InputErrors as exc:
            raise ActiveRulesBroken(f"the active rule files have errors (fix them or roll back):\n{exc}") from None

    # -- validate and upload --------------------------------------------------------------------------

    def validate(self, text: str, name: str | None = None) -> Validation:
        """Parse, check ids against the other files, and compile against the catalog; RulesInvalid if not."""
        source = name or self.active_path.name
        try:
            parsed = parse_rule_file(text, source)
        except InputErrors as exc:
            raise RulesInvalid(exc.errors) from None
        errors: list[InputError] = []
        seen: dict[str, str] = {}
        settings: Settings | None = parsed.settings
        others, others_set = self._others()
        for r in others.rules if others else ():
            seen[r.id] = "another rules file"
        if others is not None and others_set and settings is not None and settings != others.settings:
            errors.append(InputError("settings differ from those in the other rule files", source=source,
                                     field="settings"))
        rules: list[Rule] = []
        for i, rule in enumerate(parsed.rules):
            if rule.id in seen:
                errors.append(InputError(f"duplicate rule id {rule.id!r} (also in {seen[rule.id]})", source=source,
                                         field=f"rules[{i}] ({rule.id}) id"))
                continue
            seen[rule.id] = source
            rules.append(rule)
        errors += explanation_errors([*rules, *(others.rules if others else ())], seen)
        if errors:
            raise RulesInvalid(errors)
        if settings is None and others is not None:
            settings = others.settings
        all_rules = tuple(rules) + (others.rules if others else ())
        ruleset = RuleSet(settings or Settings(), all_rules, (source, *(str(p) for p in self.other_paths)))
        try:
            engine = Engine(self.catalog, ruleset)
        except Exception as exc:  # a rule the schema accepts but the engine cannot compile
            raise RulesInvalid([InputError(f"cannot compile against the catalog: {exc}", source=source)]) from None
        subjects = {c.detector.rule.id: len(c.detector.subjects) for c in engine.rules}
        return Validation(ruleset, list(engine.unmatched), subjects)

    def upload(self, text: str, name: str, comment: str, actor: str) -> RuleVersion:
        self.validate(text, name)
        return self.ops.add_rule_version(text, name, comment, actor)

    def version(self, version: int) -> RuleVersion:
        rv = self.ops.rule_version(version)
        if rv is None:
            raise KeyError(version)
        return rv

    # -- dry run ----------------------------------------------------------------------------------------

    def dry_run(self, version: int, hours: float, max_readings: int = 3_000_000) -> DryRun:
        """Replay the last `hours` of stored readings (up to the newest one) through the candidate and the
        active rules, both from a cold start, so the difference is the rules' alone."""
        candidate = self.validate(self.version(version).text).ruleset
        active = self.active_ruleset()
        reader = StoreReader(self.store_path, self.catalog)
        end = reader.latest_reading_ns()
        if end is None:
            return DryRun(0, 0, 0)
        start = end - int(hours * 3600 * NS)
        batch = reader.batch(start, end, max_readings)
        return DryRun(start, end, len(batch), _replay(self.catalog, active, batch, self.resolve_after_s),
                      _replay(self.catalog, candidate, batch, self.resolve_after_s))

    # -- activate and roll back -------------------------------------------------------------------------

    def _write(self, text: str) -> None:
        """Atomically: the watcher sees the old file or the new one, never half of one."""
        path = self.active_path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            with tmp.open("w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        with contextlib.suppress(OSError):  # make the rename durable where the platform allows
            fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def activate(self, version: int, actor: str, comment: str = "") -> Activation:
        rv = self.version(version)
        self.validate(rv.text)  # the catalog may have changed since the upload
        self.adopt_disk()
        with self._lock:
            self._write(rv.text)
            return self.ops.add_activation(version, "activate", actor, comment)

    def rollback(self, actor: str, comment: str = "") -> Activation:
        self.adopt_disk()
        with self._lock:
            stack = self.stack()
            if len(stack) < 2:
                raise NothingToRollBack("no earlier version to roll back to")
            target = stack[-2]
            rv = self.version(target)
            self.validate(rv.text)
            self._write(rv.text)
            return self.ops.add_activation(target, "rollback", actor, comment)
