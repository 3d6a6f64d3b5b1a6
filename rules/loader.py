"""Load rule files with errors that name file, line and field, as an engineer needs to fix them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError

from rules.schema import RULE_KINDS, Rule, RuleFile, Settings
from sentinel.errors import InputError, InputErrors


@dataclass(frozen=True)
class RuleSet:
    settings: Settings
    rules: tuple[Rule, ...]
    sources: tuple[str, ...]

    def enabled(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.enabled)


def _node_at(root: yaml.Node, loc: Sequence[str | int]) -> yaml.Node:
    """Walk the YAML node tree along a pydantic error location (skipping union tags)."""
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == part), None)
            if match is None:
                key = next((k for k, _ in node.value if k.value == part), None)
                if key is not None:
                    node = key
                continue
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
    return node


def _rule_label(data: object, loc: Sequence[str | int]) -> str:
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int) and isinstance(data, dict):
        rules = data.get("rules")
        if isinstance(rules, list) and loc[1] < len(rules) and isinstance(rules[loc[1]], dict):
            rid = rules[loc[1]].get("id")
            return f"rules[{loc[1]}]" + (f" ({rid})" if rid else "")
    return ""


def parse_rule_file(text: str, source: str = "<rules>") -> RuleFile:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise InputErrors([InputError(f"not valid YAML: {getattr(exc, 'problem', exc)}", source=source,
                                      line=line)]) from None
    if root is None:
        return RuleFile()
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise InputErrors([InputError("a rules file is a mapping with `rules:` (and optional `settings:`)",
                                      source=source, line=root.start_mark.line + 1)])
    try:
        return RuleFile.model_validate(data)
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if p not in RULE_KINDS)
            node = _node_at(root, loc)
            label = _rule_label(data, loc)
            fields = ".".join(str(p) for p in loc[2:] if not isinstance(p, int)) if label else ".".join(
                str(p) for p in loc)
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "union_tag_invalid":
                msg = f"unknown rule kind; use one of {', '.join(RULE_KINDS)}"
            elif err["type"] == "union_tag_not_found":
                msg = f"missing `kind`; use one of {', '.join(RULE_KINDS)}"
            field = " ".join(p for p in (label, fields) if p) or None
            errors.append(InputError(msg, source=source, line=node.start_mark.line + 1, field=field))
        raise InputErrors(errors) from None


def default_rule_paths() -> list[Path]:
    folder = resources.files("rules") / "defaults"
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".yaml"))


def explanation_errors(rules: Sequence[Rule], sources: dict[str, str]) -> list[InputError]:
    """`explained_by` must name other zone rules (a zone's alarm is explained in its zone) that are not
    explained themselves (the engine judges explained rules after all others, in one pass)."""
    from rules.detectors.registry import DETECTORS
    from rules.detectors.zone import ZoneDetector

    kinds = {r.id: r.kind for r in rules}
    explained = {r.id for r in rules if getattr(r, "explained_by", ())}

    def watches_zones(kind: str) -> bool:
        cls = DETECTORS[kind]
        return issubclass(cls, ZoneDetector) and not cls.sensor_subjects

    errors = []
    for rule in rules:
        for other in getattr(rule, "explained_by", ()):
            problem = ("names the rule itself" if other == rule.id else
                       "is not a rule in these files" if other not in kinds else
                       f"is a {kinds[other]} rule, which watches sensors, not zones"
                       if not watches_zones(kinds[other]) else
                       "is itself explained by others (no chains: name the rules that see the event)"
                       if other in explained else "")
            if problem:
                errors.append(InputError(f"rule {rule.id!r}: explained_by {other!r} {problem}",
                                         source=sources[rule.id], field="explained_by"))
    return errors


def load_rules(paths: Iterable[str | Path] | None = None) -> RuleSet:
    """Load and merge rule files (the shipped defaults when none are given); ids must be unique."""
    paths = list(paths) if paths else default_rule_paths()
    errors: list[InputError] = []
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    settings: Settings | None = None
    settings_from = ""
    for path in paths:
        source = str(path)
        try:
            parsed = parse_rule_file(Path(path).read_text(encoding="utf-8"), source)
        except InputErrors as exc:
            errors.extend(exc.errors)
            continue
        except OSError as exc:
            errors.append(InputError(f"cannot read: {exc.strerror}", source=source))
            continue
        if parsed.settings is not None:
            if settings is not None and parsed.settings != settings:
                errors.append(InputError(f"settings differ from those in {settings_from}", source=source,
                                         field="settings"))
            elif settings is None:
                settings, settings_from = parsed.settings, source
        for rule in parsed.rules:
            if rule.id in seen:
                errors.append(InputError(f"duplicate rule id {rule.id!r} (also in {seen[rule.id]})",
                                         source=source, field="id"))
                continue
            seen[rule.id] = source
            rules.append(rule)
    errors += explanation_errors(rules, seen)
    if errors:
        raise InputErrors(errors)
    return RuleSet(settings or Settings(), tuple(rules), tuple(str(p) for p in paths))
