"""Routing configuration: receivers, a route tree, inhibitions and escalations, loaded from YAML.

A mistake here means people are not woken up (or are woken for nothing), so every error names the file,
line and field, unknown keys are refused, receiver names are checked against `receivers:`, and rule ids
can be checked against the loaded rules (a typo in a matcher would otherwise silently never match).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from alerts.model import Alert
from alerts.notification import Sender
from rules.durations import parse_duration
from rules.schema import RULE_KINDS
from sentinel.errors import InputError, InputErrors
from sentinel.readings import NS
from sentinel.severity import Severity

# What an alert can be matched, grouped and compared on (`grade` only matches: it can rise while open).
Label = Literal["network", "zone", "rule", "kind", "subject", "sensor_id"]
LABELS: tuple[str, ...] = ("network", "zone", "rule", "kind", "subject", "sensor_id")
NETWORKS = ("water", "heat", "gas")


def alert_labels(a: Alert) -> dict[str, str]:
    """The labels routing sees for an alert (a zone-level alert has no sensor: "")."""
    return {"network": a.network, "zone": a.zone, "rule": a.rule_id, "kind": a.kind, "subject": a.subject,
            "sensor_id": a.sensor_id or ""}


def _str_list(v: object) -> object:
    return (v,) if isinstance(v, str) else v


def _severity(v: object) -> object:
    return Severity.parse(v) if isinstance(v, str) else v


StrList = Annotated[tuple[str, ...], BeforeValidator(_str_list)]
LabelList = Annotated[tuple[Label, ...], BeforeValidator(_str_list)]
Duration = Annotated[float, BeforeValidator(parse_duration)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Match(_Strict):
    """Every given field must match; a list means any of. `grade` is a minimum on the alert's peak grade."""

    network: StrList = ()
    zone: StrList = ()
    grade: Annotated[Severity | None, BeforeValidator(_severity)] = None
    rule: StrList = ()
    kind: StrList = ()
    subject: StrList = ()
    sensor_id: StrList = ()

    @field_validator("network")
    @classmethod
    def _networks(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [n for n in v if n not in NETWORKS]
        if bad:
            raise ValueError(f"unknown network {bad[0]!r}; use water, heat or gas")
        return v

    @field_validator("kind")
    @classmethod
    def _kinds(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [k for k in v if k not in RULE_KINDS]
        if bad:
            raise ValueError(f"unknown rule kind {bad[0]!r}; use one of {', '.join(RULE_KINDS)}")
        return v

    def matches(self, a: Alert) -> bool:
        if self.grade is not None and a.severity < self.grade:
            return False
        labels = alert_labels(a)
        return all(not allowed or labels[name] in allowed
                   for name, allowed in (("network", self.network), ("zone", self.zone), ("rule", self.rule),
                                         ("kind", self.kind), ("subject", self.subject),
                                         ("sensor_id", self.sensor_id)))


class Route(_Strict):
    """A node of the routing tree. Unset fields are inherited from the parent; the first matching child
    takes the alert (unless it says `continue: true`), and a node no child takes keeps the alert itself."""

    match: Match = Match()
    receivers: Annotated[tuple[str, ...] | None, BeforeValidator(_str_list)] = None
    group_by: LabelList | None = None
    group_wait: Duration | None = Field(default=None, ge=0)
    group_interval: Duration | None = Field(default=None, gt=0)
    repeat_interval: Duration | None = Field(default=None, gt=0)
    continue_: bool = Field(default=False, alias="continue")
    routes: tuple[Route, ...] = ()


class Inhibition(_Strict):
    """While an open alert matches `source`, alerts matching `target` with the same `equal` labels are muted."""

    source: Match
    target: Match
    equal: LabelList = ()


class Escalation(_Strict):
    """An alert matching `match` still firing unacknowledged `after` its start goes to `receivers` too."""

    match: Match = Match()
    after: Duration = Field(ge=0)
    receivers: Annotated[tuple[str, ...], BeforeValidator(_str_list), Field(min_length=1)]


def _receiver_spec(v: object) -> object:
    if not isinstance(v, dict) or not isinstance(v.get("type"), str) or not v["type"]:
        raise ValueError("a receiver is a mapping with a `type` (webhook, dingtalk, wecom, feishu, email, mqtt)")
    return v


ReceiverSpec = Annotated[dict[str, Any], BeforeValidator(_receiver_spec)]


class RoutingConfig(_Strict):
    """The whole routing file. Build senders with `build_senders`, the route tree with `compile_routes`."""

    version: Literal[1] = 1
    receivers: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")], ReceiverSpec]
    route: Route
    inhibit: tuple[Inhibition, ...] = ()
    escalate: tuple[Escalation, ...] = ()
    _source: str = PrivateAttr(default="<routing>")
    _receiver_lines: dict[str, int] = PrivateAttr(default_factory=dict)


# -- the compiled tree ---------------------------------------------------------------------------------

DEFAULT_GROUP_WAIT_S, DEFAULT_GROUP_INTERVAL_S, DEFAULT_REPEAT_INTERVAL_S = 30.0, 300.0, 4 * 3600.0


@dataclass(frozen=True)
class RouteNode:
    """A route with everything inherited filled in, timings in ns. `id` is its position ("0", "0.1")."""

    id: str
    match: Match
    receivers: tuple[str, ...]
    group_by: tuple[str, ...]
    group_wait_ns: int
    group_interval_ns: int
    repeat_interval_ns: int
    continue_: bool
    children: tuple[RouteNode, ...]

    def routes_for(self, a: Alert) -> list[RouteNode]:
        """The nodes that take `a`, Alertmanager style (depth first, first match wins unless continue)."""
        if not self.match.matches(a):
            return []
        found: list[RouteNode] = []
        for child in self.children:
            taken = child.routes_for(a)
            found += taken
            if taken and not child.continue_:
                break
        return found or [self]

    def walk(self) -> list[RouteNode]:
        return [self, *(n for c in self.children for n in c.walk())]


def _ns(seconds: float) -> int:
    return round(seconds * NS)


def compile_routes(config: RoutingConfig) -> RouteNode:
    """The route tree with inheritance resolved (unset fields come from the parent, then the defaults)."""

    def timing(value_s: float | None, inherited_ns: int | None, default_s: float) -> int:
        if value_s is not None:
            return _ns(value_s)
        return inherited_ns if inherited_ns is not None else _ns(default_s)

    def build(r: Route, parent: RouteNode | None, node_id: str) -> RouteNode:
        node = RouteNode(
            id=node_id, match=r.match,
            receivers=r.receivers if r.receivers is not None else (parent.receivers if parent else ()),
            group_by=r.group_by if r.group_by is not None else (parent.group_by if parent else ()),
            group_wait_ns=timing(r.group_wait, parent.group_wait_ns if parent else None, DEFAULT_GROUP_WAIT_S),
            group_interval_ns=timing(r.group_interval, parent.group_interval_ns if parent else None,
                                     DEFAULT_GROUP_INTERVAL_S),
            repeat_interval_ns=timing(r.repeat_interval, parent.repeat_interval_ns if parent else None,
                                      DEFAULT_REPEAT_INTERVAL_S),
            continue_=r.continue_, children=(),
        )
        children = [build(c, node, f"{node_id}.{i}") for i, c in enumerate(r.routes)]
        return replace(node, children=tuple(children))

    return build(config.route, None, "0")


# -- loading -------------------------------------------------------------------------------------------

Loc = tuple[str | int, ...]
_MODEL_BY_KEY: dict[str, type[BaseModel]] = {
    "route": Route, "routes": Route, "match": Match, "source": Match, "target": Match,
    "inhibit": Inhibition, "escalate": Escalation,
}


def _field_name(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _node_at(root: yaml.Node, loc: Loc) -> yaml.Node:
    """The YAML node a location points at, or the deepest one that exists (for missing fields)."""
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            hit = next(((k, v) for k, v in node.value if k.value == part), None)
            if hit is None:
                break
            node = hit[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
    return node


def _allowed_keys(loc: Loc) -> list[str]:
    parent = next((p for p in reversed(loc) if isinstance(p, str) and p in _MODEL_BY_KEY), None)
    model = _MODEL_BY_KEY[parent] if parent else RoutingConfig
    return [f.alias or name for name, f in model.model_fields.items()]


def _message(err: Mapping[str, Any], loc: Loc) -> str:
    if err["type"] == "extra_forbidden":
        return f"unknown key {loc[-1]!r}; expected one of {', '.join(_allowed_keys(loc[:-1]))}"
    if err["type"] == "literal_error" and "version" not in loc:
        return f"{err['input']!r} is not a label; use one of {', '.join(LABELS)}"
    if err["type"] == "string_pattern_mismatch" and loc[:1] == ("receivers",):
        return "a receiver name is letters, digits, '.', '_' and '-' (starting with a letter or digit)"
    if err["type"] == "missing":
        return "required field missing"
    return str(err["msg"]).removeprefix("Value error, ")


def _duplicate_keys(node: yaml.Node, source: str) -> list[InputError]:
    """YAML keeps the last of two equal keys without a word; a second `ops:` receiver must be an error."""
    errors: list[InputError] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for k, v in node.value:
            if k.value in seen:
                errors.append(InputError(f"duplicate key {k.value!r}", source=source, line=k.start_mark.line + 1))
            seen.add(k.value)
            errors += _duplicate_keys(v, source)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            errors += _duplicate_keys(item, source)
    return errors


def _cross_checks(config: RoutingConfig, rule_ids: Collection[str] | None) -> list[tuple[Loc, str]]:
    """What pydantic cannot see: names that must exist elsewhere in the file (or in the rules)."""
    problems: list[tuple[Loc, str]] = []
    known = set(config.receivers)
    hint = ", ".join(sorted(known)) or "none defined"

    def check_receivers(names: Sequence[str] | None, loc: Loc) -> None:
        for i, name in enumerate(names or ()):
            if name not in known:
                problems.append(((*loc, i), f"unknown receiver {name!r}; defined receivers: {hint}"))

    def check_match(m: Match, loc: Loc) -> None:
        if rule_ids is None:
            return
        for i, rid in enumerate(m.rule):
            if rid not in rule_ids:
                problems.append(((*loc, "rule", i), f"no rule with id {rid!r} is loaded; check the spelling"))

    def walk(r: Route, loc: Loc) -> None:
        check_receivers(r.receivers, (*loc, "receivers"))
        check_match(r.match, (*loc, "match"))
        for i, child in enumerate(r.routes):
            walk(child, (*loc, "routes", i))

    root = config.route
    if not root.receivers:
        problems.append((("route", "receivers"), "the root route needs at least one receiver (the fallback)"))
    if root.match != Match() or root.continue_:
        problems.append((("route", "match" if root.match != Match() else "continue"),
                         "the root route takes every alert; put `match`/`continue` on child routes"))
    walk(root, ("route",))
    for i, inh in enumerate(config.inhibit):
        check_match(inh.source, ("inhibit", i, "source"))
        check_match(inh.target, ("inhibit", i, "target"))
    for i, esc in enumerate(config.escalate):
        check_receivers(esc.receivers, ("escalate", i, "receivers"))
        check_match(esc.match, ("escalate", i, "match"))
    return problems


def parse_routing(text: str, source: str = "<routing>", *,
                  rule_ids: Collection[str] | None = None) -> RoutingConfig:
    """Parse a routing file; raises InputErrors listing every problem as `file:line: field: message`.

    Pass the loaded rule ids as `rule_ids` to refuse matchers naming rules that do not exist.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputErrors([InputError(f"not valid YAML: {getattr(exc, 'problem', exc)}", source=source,
                                      line=mark.line + 1 if mark else None)]) from None
    data = yaml.safe_load(text) if root is not None else None
    if not isinstance(data, dict) or root is None:
        raise InputErrors([InputError("a routing file is a mapping with `receivers:` and `route:`", source=source,
                                      line=root.start_mark.line + 1 if root is not None else 1)])
    errors = _duplicate_keys(root, source)

    def located(loc: Loc, msg: str) -> InputError:
        return InputError(msg, source=source, line=_node_at(root, loc).start_mark.line + 1,
                          field=_field_name(loc) or None)

    try:
        config = RoutingConfig.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            if loc and loc[-1] == "[key]":  # a bad receiver name: point at the name itself
                loc = loc[:-1]
            errors.append(located(loc, _message(err, loc)))
        raise InputErrors(sorted(errors, key=lambda e: e.line or 0)) from None
    errors += [located(loc, msg) for loc, msg in _cross_checks(config, rule_ids)]
    if errors:
        raise InputErrors(sorted(errors, key=lambda e: e.line or 0))
    config._source = source
    config._receiver_lines = {name: _node_at(root, ("receivers", name)).start_mark.line + 1
                              for name in config.receivers}
    return config


def load_routing(path: str | Path, *, rule_ids: Collection[str] | None = None) -> RoutingConfig:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputErrors([InputError(f"cannot read: {exc.strerror}", source=source)]) from None
    return parse_routing(text, source, rule_ids=rule_ids)


S = TypeVar("S", bound=Sender)


def build_senders(config: RoutingConfig, factory: Callable[[str, dict[str, Any]], S]) -> dict[str, S]:
    """One sender per receiver: `factory(name, spec)` with the spec dict as written (e.g.
    `alerts.senders.build_sender`). A spec the factory refuses (ValueError: unknown `type`, a bad URL)
    becomes a located error, all of them reported at once."""
    senders: dict[str, S] = {}
    errors: list[InputError] = []
    for name, spec in config.receivers.items():
        try:
            senders[name] = factory(name, dict(spec))
        except (ValueError, TypeError, KeyError) as exc:
            errors.append(InputError(str(exc) or type(exc).__name__, source=config._source,
                                     line=config._receiver_lines.get(name), field=f"receivers.{name}"))
    if errors:
        for s in senders.values():
            s.close()
        raise InputErrors(errors)
    return senders
