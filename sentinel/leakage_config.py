"""Leakage accounting settings (`--config leakage.yaml`), validated with errors naming file, line and field.

Every number that turns a minimum night flow into a leakage figure is a local judgement (how many
properties, how much they use at night, how the zone's pressure swings), so all of them live here,
with city-wide `defaults:` and per-zone overrides under `zones:`; `deploy/leakage.example.yaml`
documents each knob. Zones are the catalog's water zones (DMAs), named as in the catalog.

Merging: a zone block overrides `defaults` key by key; `ndf:` merges field by field (`{n1: 1.5}` keeps
the default method and hours), `night_use:` is replaced as a whole (its `method` says what the other
fields mean).
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from rules.loader import _node_at
from rules.schema import Duration
from sentinel.errors import InputError, InputErrors

DAY_S = 86400
HHMM = Annotated[str, Field(pattern=r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$")]


def minutes(hhmm: str) -> int:
    """Minutes after local midnight of "HH:MM" ("24:00" is 1440)."""
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- legitimate night use: what is used (not lost) at the time of the night minimum -------------------


class NoNightUse(_Strict):
    """Nothing subtracted: the figure is an upper bound on leakage (every drop at night counted as lost)."""

    method: Literal["none"] = "none"

    def rate_m3h(self, mnf_m3h: float) -> float:
        return 0.0


class PerProperty(_Strict):
    """Household night use: litres per property per hour x properties, plus known non-household night
    users (hospitals, night shifts) in m3/h. UK practice measures ~1.7 L/property/h at 03:00-04:00."""

    method: Literal["per_property"]
    litres_per_property_h: float = Field(ge=0, le=100)
    properties: int = Field(ge=0)
    extra_m3h: float = Field(default=0.0, ge=0)

    def rate_m3h(self, mnf_m3h: float) -> float:
        return self.litres_per_property_h * self.properties / 1000.0 + self.extra_m3h


class FractionOfMnf(_Strict):
    """A share of the night minimum itself, when only a zone survey's ratio is known."""

    method: Literal["fraction_of_mnf"]
    fraction: float = Field(ge=0, lt=1)

    def rate_m3h(self, mnf_m3h: float) -> float:
        return self.fraction * max(mnf_m3h, 0.0)


class Absolute(_Strict):
    """A measured or agreed night use for the zone, m3/h."""

    method: Literal["absolute"]
    m3h: float = Field(ge=0)

    def rate_m3h(self, mnf_m3h: float) -> float:
        return self.m3h


NightUse = Annotated[NoNightUse | PerProperty | FractionOfMnf | Absolute, Field(discriminator="method")]


# -- night-day factor ----------------------------------------------------------------------------------


class Ndf(_Strict):
    """Night-day factor in hours: how many hours at the night leak rate make a day's leakage.

    `fixed` uses `hours`; `pressure` computes it from the zone's pressure loggers with the FAVAD
    exponent `n1` (leakage ~ P^N1); `auto` is `pressure` when the zone has loggers, else `fixed`.
    """

    method: Literal["auto", "fixed", "pressure"] = "auto"
    hours: float = Field(default=24.0, gt=0, le=48)
    n1: float = Field(default=1.0, ge=0.5, le=2.5)


class NdfPatch(_Strict):
    method: Literal["auto", "fixed", "pressure"] | None = None
    hours: float | None = Field(default=None, gt=0, le=48)
    n1: float | None = Field(default=None, ge=0.5, le=2.5)


# -- per-zone settings ----------------------------------------------------------------------------------


def _ordered(window: tuple[str, str] | None) -> tuple[str, str] | None:
    if window is not None and minutes(window[1]) <= minutes(window[0]):
        raise ValueError("night_window must end after it starts, within one local day (e.g. [02:00, 04:00])")
    return window


class ZoneSettings(_Strict):
    """Everything one zone's daily figure depends on (after merging defaults and the zone's block)."""

    night_window: tuple[HHMM, HHMM] = ("02:00", "04:00")
    night_use: NightUse = NoNightUse()
    ndf: Ndf = Ndf()
    min_day_coverage: float = Field(default=0.9, gt=0, le=1)
    min_night_coverage: float = Field(default=0.5, gt=0, le=1)

    _window = field_validator("night_window")(_ordered)

    @property
    def night_minutes(self) -> tuple[int, int]:
        return minutes(self.night_window[0]), minutes(self.night_window[1])


class ZonePatch(_Strict):
    night_window: tuple[HHMM, HHMM] | None = None
    _window = field_validator("night_window")(_ordered)
    night_use: NightUse | None = None
    ndf: NdfPatch | None = None
    min_day_coverage: float | None = Field(default=None, gt=0, le=1)
    min_night_coverage: float | None = Field(default=None, gt=0, le=1)


class LeakageConfig(_Strict):
    """The whole file. `utc_offset_h`, `bucket` and `stale` default to the rules' settings."""

    version: Literal[1] = 1
    target_pct: float = Field(default=9.0, gt=0, lt=100, description="city target: leakage below this % of inflow")
    utc_offset_h: float | None = Field(default=None, ge=-12, le=14)
    bucket: Duration | None = Field(default=None, description="net-inflow averaging step; MNF is the lowest one")
    stale: Duration | None = Field(default=None, description="hold a meter's last bucket mean this long")
    defaults: ZoneSettings = ZoneSettings()
    zones: dict[str, ZonePatch] = {}
    _zone_lines: dict[str, int] = PrivateAttr(default_factory=dict)
    _source: str = PrivateAttr(default="<leakage config>")

    @model_validator(mode="after")
    def _grid(self) -> LeakageConfig:
        if self.bucket is not None and (self.bucket < 60 or DAY_S % self.bucket):
            raise ValueError("bucket must be at least 1m and divide a day (e.g. 5m, 15m, 1h)")
        return self

    def for_zone(self, zone: str) -> ZoneSettings:
        """The defaults with the zone's own block laid over them."""
        patch = self.zones.get(zone)
        if patch is None:
            return self.defaults
        update = {k: getattr(patch, k) for k in patch.model_fields_set if getattr(patch, k) is not None}
        if patch.ndf is not None:
            update["ndf"] = self.defaults.ndf.model_copy(update=patch.ndf.model_dump(exclude_unset=True))
        return self.defaults.model_copy(update=update)  # every part was validated on its own

    def check_zones(self, water_zones: Collection[str]) -> None:
        """Every configured zone must be a water zone of the catalog: a typo must not pass silently."""
        errors = [InputError(f"no water zone {z!r} in the catalog (water zones: {', '.join(sorted(water_zones))})",
                             source=self._source, line=self._zone_lines.get(z), field=f"zones.{z}")
                  for z in self.zones if z not in water_zones]
        if errors:
            raise InputErrors(errors)


def parse_leakage_config(text: str, source: str = "<leakage config>") -> LeakageConfig:
    """Parse YAML text; raises InputErrors listing every problem as `file:line: field: message`."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputErrors([InputError(f"not valid YAML: {getattr(exc, 'problem', exc)}", source=source,
                                      line=mark.line + 1 if mark else None)]) from None
    data = yaml.safe_load(text) if root is not None else {}
    if not isinstance(data, dict):
        raise InputErrors([InputError("a leakage config is a mapping (target_pct, defaults, zones, ...)",
                                      source=source, line=root.start_mark.line + 1 if root else 1)])
    try:
        config = LeakageConfig.model_validate(data)
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if p not in ("none", "per_property", "fraction_of_mnf", "absolute"))
            line = _node_at(root, loc).start_mark.line + 1 if root is not None else None
            field = ".".join(str(p) for p in loc) or None
            errors.append(InputError(err["msg"].removeprefix("Value error, "), source=source, line=line,
                                     field=field))
        raise InputErrors(errors) from None
    config._source = source
    zones = _node_at(root, ("zones",)) if root is not None else None
    if isinstance(zones, yaml.MappingNode):
        config._zone_lines = {str(k.value): k.start_mark.line + 1 for k, _ in zones.value}
    return config


def load_leakage_config(path: str | Path | None) -> LeakageConfig:
    """The file's settings, or every default when no file is given."""
    if path is None:
        return LeakageConfig()
    path = Path(path)
    return parse_leakage_config(path.read_text(encoding="utf-8"), str(path))
