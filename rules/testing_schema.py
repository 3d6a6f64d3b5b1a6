"""The rule test file schema (`sentinel rules test`), with errors that name file, line and field.

A test file is what an engineer writes to pin what the rules must (and must not) raise on a given input,
so every mistake in it is reported where it was made, the way `rules/loader.py` reports rule files.
The series notation is promtool's, so people who test Prometheus rules can read ours at sight.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from rules.durations import parse_duration
from rules.loader import _node_at
from rules.schema import Duration, SeverityField
from sentinel.catalog import Sensor
from sentinel.errors import InputError, InputErrors
from sentinel.readings import parse_time, to_ns

# Monday 00:00 in China Standard Time, like the simulator's default scenario: weekday profiles and
# night windows (02:00-04:00 local) fall where a reader expects them.
DEFAULT_START = "2025-01-05T16:00:00Z"
MAX_SAMPLES = 2_000_000  # per series: a typo like 300x3000000000 must not eat the machine

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_TOKEN = re.compile(rf"^(?P<a>{_NUM})(?:(?P<sign>[+-])(?P<b>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?))?"
                    rf"(?:x(?P<n>\d+))?$")
_MISSING = re.compile(r"^_(?:x(?P<n>\d+))?$")
NOTATION_HELP = "write a number, a+bxN, a-bxN, axN (N+1 values), _ (missing) or _xN (N missing)"


def _expand_token(pos: int, token: str, room: int) -> list[float]:
    """One token's values; `room` is how many more samples the series may still take."""
    miss = _MISSING.match(token)
    ramp = None if miss else _TOKEN.match(token)
    if miss:
        count = int(miss.group("n") or 1)
        if count < 1:
            raise ValueError(f"token {pos} {token!r}: _xN needs N >= 1")
    elif ramp and not (ramp.group("sign") and ramp.group("n") is None):
        count = int(ramp.group("n") or 0) + 1
    else:
        raise ValueError(f"token {pos} {token!r} is not a value; {NOTATION_HELP}")
    if count > room:
        raise ValueError(f"token {pos} {token!r}: more than {MAX_SAMPLES:,} samples in one series")
    if ramp is None:
        return [math.nan] * count
    a = float(ramp.group("a"))
    b = float(ramp.group("b") or 0.0) * (-1.0 if ramp.group("sign") == "-" else 1.0)
    # rounded so that 0.1+0.1x2 ends at 0.3, not 0.30000000000000004 (flatline compares exactly)
    return [round(a + i * b, 9) for i in range(count)]


def expand(text: str) -> list[float]:
    """Expand promtool's notation into values, NaN marking a missing sample.

    `a+bxN` is a, a+b, ..., a+N*b (N+1 values); `axN` is a repeated N+1 times; `_` is one missing sample
    and `_xN` is N of them. Tokens are separated by whitespace.
    """
    out: list[float] = []
    for pos, token in enumerate(str(text).split(), start=1):
        out += _expand_token(pos, token, MAX_SAMPLES - len(out))
    if not out:
        raise ValueError(f"no values; {NOTATION_HELP}")
    return out


def moment_fields(v: object) -> dict[str, object]:
    """An offset (a duration: 10m, 1d2h, seconds) or else an absolute time (ISO, or a YAML datetime)."""
    if isinstance(v, datetime | date):  # YAML turns an unquoted ISO time into a datetime already
        dt = v if isinstance(v, datetime) else datetime(v.year, v.month, v.day, tzinfo=UTC)
        return {"at_ns": to_ns(dt), "text": dt.isoformat()}
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        raise ValueError("expected an offset like 10m or 1d2h, or an ISO time")
    try:
        return {"offset_s": parse_duration(v), "text": str(v)}
    except ValueError:
        pass
    try:
        return {"at_ns": parse_time(str(v)), "text": str(v)}
    except ValueError:
        raise ValueError(f"{v!r} is neither an offset (10m, 1d2h, seconds) nor an ISO time") from None


class Moment(BaseModel):
    """A point in time written as an offset from the series start (`10m`, `1d2h`, seconds) or as an ISO
    time (`2025-01-06T02:30:00+08:00`; naive means UTC)."""

    model_config = ConfigDict(frozen=True)
    offset_s: float | None = None
    at_ns: int | None = None
    text: str = ""

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, v: object) -> object:
        return v if isinstance(v, dict | Moment) else moment_fields(v)

    def resolve(self, start_ns: int) -> int:
        return self.at_ns if self.at_ns is not None else start_ns + round((self.offset_s or 0.0) * 1e9)


def _absolute(v: object) -> object:
    """A series start: an ISO time (an offset would have nothing to count from)."""
    fields = moment_fields(v)
    if "at_ns" not in fields:
        raise ValueError(f"`start` is an absolute time like {DEFAULT_START}, not an offset")
    return fields["at_ns"]


StartTime = Annotated[int, BeforeValidator(_absolute)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Series(Strict):
    """One sensor's input: values in the sensor's catalog unit, one per `step` from `start`."""

    values: str
    start: Moment | None = Field(default=None, description="offset from the test's start, or ISO time")
    step: Duration | None = Field(default=None, gt=0, description="default: the test's step, else the "
                                  "sensor's interval_s")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, v: object) -> object:
        return {"values": v} if isinstance(v, str | int | float) and not isinstance(v, bool) else v

    @field_validator("values", mode="before")
    @classmethod
    def _notation(cls, v: object) -> object:
        if isinstance(v, int | float) and not isinstance(v, bool):
            v = str(v)
        if isinstance(v, str):
            expand(v)
        return v


class Window(Strict):
    """When the alert must have opened: from <= opened <= to."""

    from_: Moment = Field(alias="from")
    to: Moment


class ExpectedAlert(Strict):
    rule: str
    zone: str = Field(description="`network/zone` or just `zone`")
    subject: str | None = Field(default=None, description="sensor id, or the zone for zone rules")
    grade: SeverityField = Field(description="the worst grade the alert reached")
    state: Literal["firing", "cleared", "resolved"] | None = Field(
        default=None, description="at the end of the input: firing, cleared (waiting out resolve_after) "
        "or resolved")
    message: str | None = Field(default=None, description="text the alert's message must contain (what an "
                                "operator reads: where the evidence points, what the rule suspects)")
    window: Window


def _catalog_ref(v: object) -> object:
    if isinstance(v, str):
        return {"path": v}
    if isinstance(v, list):
        return {"sensors": v}
    if isinstance(v, dict) and set(v) == {"sensors"}:
        return v
    raise ValueError("`catalog` is a path (CSV or YAML, relative to the test file) or a list of sensors")


class CatalogRef(Strict):
    path: str | None = None
    sensors: list[Sensor] | None = None


CatalogField = Annotated[CatalogRef, BeforeValidator(_catalog_ref)]


class TestCase(Strict):
    """One input and what the rules must raise on it."""

    __test__ = False  # not a pytest class

    name: str = Field(min_length=1)
    catalog: CatalogField | None = Field(default=None, description="overrides the file's catalog")
    start: StartTime | None = Field(default=None, description=f"series start; default {DEFAULT_START} for "
                                    "series, the scenario's start, or a replay file's first reading")
    step: Duration | None = Field(default=None, gt=0)
    series: dict[str, Series] | None = None
    scenario: str | None = Field(default=None, description="simulator scenario YAML (brings its catalog)")
    replay: str | None = Field(default=None, description="readings CSV (long or wide), needs a catalog")
    resolve_after: Duration | None = None
    alerts: list[ExpectedAlert] = Field(default_factory=list)
    no_other_alerts: bool = False

    @model_validator(mode="after")
    def _one_input(self) -> TestCase:
        given = [k for k in ("series", "scenario", "replay") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one input: `series`, `scenario` or `replay`"
                             + (f" (got {', '.join(given)})" if given else ""))
        if self.scenario is not None and self.catalog is not None:
            raise ValueError("a scenario brings its own catalog; drop `catalog` from this test")
        return self


class TestFile(Strict):
    __test__ = False

    rule_files: list[str] = Field(default_factory=list, description="relative to the test file; default: "
                                  "the shipped defaults")
    catalog: CatalogField | None = None
    resolve_after: Duration = 900.0
    tests: list[TestCase] = Field(min_length=1)


# -- located errors ---------------------------------------------------------------------------------

_SYNTHETIC = {"sensors", "path"}  # loc parts our before-validators add; they are not in the YAML


def case_label(data: object, loc: Sequence[str | int]) -> str:
    """`tests[2] (burst at night)`: which test case a location is in, by index and name."""
    if len(loc) >= 2 and loc[0] == "tests" and isinstance(loc[1], int) and isinstance(data, dict):
        tests = data.get("tests")
        if isinstance(tests, list) and loc[1] < len(tests) and isinstance(tests[loc[1]], dict):
            name = tests[loc[1]].get("name")
            return f"tests[{loc[1]}]" + (f" ({name})" if name else "")
    return ""


def field_path(loc: Sequence[str | int]) -> str:
    """`alerts[1].grade` from ('alerts', 1, 'grade')."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in _SYNTHETIC:
            out += ("." if out else "") + str(part)
    return out


def located_errors(exc: ValidationError, root: yaml.Node, data: object, source: str,
                   label: Callable[[object, Sequence[str | int]], str] = case_label) -> InputErrors:
    """Turn pydantic's errors into `file:line: field: message`, walking the YAML node tree."""
    errors = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        node = _node_at(root, [p for p in loc if p not in _SYNTHETIC])
        where = label(data, loc)
        rest = field_path(loc[2:] if where else loc)
        field = " ".join(p for p in (where, rest) if p) or None
        msg = err["msg"].removeprefix("Value error, ")
        errors.append(InputError(msg, source=source, line=node.start_mark.line + 1, field=field))
    return InputErrors(errors)


def compose(text: str, source: str) -> tuple[yaml.Node | None, object]:
    """The YAML node tree (for lines) and the plain data, or a located syntax error."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputErrors([InputError(f"not valid YAML: {getattr(exc, 'problem', exc)}", source=source,
                                      line=mark.line + 1 if mark else None)]) from None
    return root, (yaml.safe_load(text) if root is not None else None)


def parse_test_file(text: str, source: str = "<test>") -> tuple[TestFile, yaml.Node]:
    """Validate a test file; returns the model and its YAML tree (the runner locates its own checks)."""
    root, data = compose(text, source)
    if root is None or not isinstance(data, dict):
        line = root.start_mark.line + 1 if root is not None else None
        raise InputErrors([InputError("a rule test file is a mapping with `tests:` (and optional "
                                      "`rule_files:`, `catalog:`)", source=source, line=line)])
    try:
        return TestFile.model_validate(data), root
    except ValidationError as exc:
        raise located_errors(exc, root, data, source) from None
