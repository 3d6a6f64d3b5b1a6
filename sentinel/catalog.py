"""The sensor catalog: the single source of truth for network, zone, quantity, unit and role.

Loaded once from CSV or YAML and compiled into arrays indexed by sensor number, so the engine never
looks anything up by string on its hot path.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sentinel.errors import InputError, InputErrors
from sentinel.units import CANONICAL_UNIT, PLAUSIBLE_RANGE, QUANTITIES, UnitError, conversion

Network = Literal["water", "heat", "gas"]
Quantity = Literal["pressure", "flow", "temperature", "gas_concentration", "level"]
Role = Literal["inlet", "outlet", "internal", "makeup", "supply", "return", "space"]

NETWORKS: tuple[str, ...] = ("water", "heat", "gas")
ROLES: tuple[str, ...] = ("internal", "inlet", "outlet", "makeup", "supply", "return", "space")


class Sensor(BaseModel):
    """One measuring point. `role` tells zone rules how a flow meter sits on the zone boundary."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sensor_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")
    network: Network
    zone: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")
    quantity: Quantity
    unit: str
    role: Role = "internal"
    interval_s: float = Field(default=300.0, gt=0)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    tags: tuple[str, ...] = ()
    min_value: float | None = None
    max_value: float | None = None

    @field_validator("role", mode="before")
    @classmethod
    def _empty_role(cls, v: object) -> object:
        return "internal" if v in (None, "") else v

    @field_validator("tags", mode="before")
    @classmethod
    def _split_tags(cls, v: object) -> object:
        if isinstance(v, str):
            return tuple(t.strip() for t in v.replace(";", ",").split(",") if t.strip())
        return v

    @model_validator(mode="after")
    def _unit_known(self) -> Sensor:
        try:
            conversion(self.quantity, self.unit)
        except UnitError as exc:
            raise ValueError(str(exc)) from None
        return self


@dataclass(frozen=True)
class Catalog:
    """Sensors plus their compiled per-index arrays (codes index NETWORKS, `zones` and ROLES)."""

    sensors: tuple[Sensor, ...]
    index: dict[str, int] = field(repr=False)
    zones: tuple[str, ...] = field(repr=False)
    network_code: np.ndarray = field(repr=False)
    zone_code: np.ndarray = field(repr=False)
    quantity_code: np.ndarray = field(repr=False)
    role_code: np.ndarray = field(repr=False)
    interval_s: np.ndarray = field(repr=False)
    scale: np.ndarray = field(repr=False)
    offset: np.ndarray = field(repr=False)
    lo: np.ndarray = field(repr=False)
    hi: np.ndarray = field(repr=False)

    @classmethod
    def from_sensors(cls, sensors: Iterable[Sensor]) -> Catalog:
        sensors = tuple(sensors)
        index: dict[str, int] = {}
        for i, s in enumerate(sensors):
            if s.sensor_id in index:
                raise InputError(f"duplicate sensor_id {s.sensor_id!r}", field="sensor_id")
            index[s.sensor_id] = i
        zone_keys = sorted({(s.network, s.zone) for s in sensors})
        zones = tuple(f"{n}/{z}" for n, z in zone_keys)
        zone_of = {k: i for i, k in enumerate(zone_keys)}
        conv = [conversion(s.quantity, s.unit) for s in sensors]
        ranges = [PLAUSIBLE_RANGE[s.quantity] for s in sensors]
        return cls(
            sensors=sensors,
            index=index,
            zones=zones,
            network_code=np.array([NETWORKS.index(s.network) for s in sensors], dtype=np.int8),
            zone_code=np.array([zone_of[(s.network, s.zone)] for s in sensors], dtype=np.int32),
            quantity_code=np.array([QUANTITIES.index(s.quantity) for s in sensors], dtype=np.int8),
            role_code=np.array([ROLES.index(s.role) for s in sensors], dtype=np.int8),
            interval_s=np.array([s.interval_s for s in sensors], dtype=np.float64),
            scale=np.array([c[0] for c in conv], dtype=np.float64),
            offset=np.array([c[1] for c in conv], dtype=np.float64),
            lo=np.array([s.min_value if s.min_value is not None else r[0]
                         for s, r in zip(sensors, ranges, strict=True)], dtype=np.float64),
            hi=np.array([s.max_value if s.max_value is not None else r[1]
                         for s, r in zip(sensors, ranges, strict=True)], dtype=np.float64),
        )

    def __len__(self) -> int:
        return len(self.sensors)

    def get(self, sensor_id: str) -> Sensor:
        return self.sensors[self.index[sensor_id]]

    def zone_of(self, i: int) -> tuple[str, str]:
        """(network, zone) of sensor number i."""
        s = self.sensors[i]
        return s.network, s.zone

    def canonical_unit(self, i: int) -> str:
        return CANONICAL_UNIT[self.sensors[i].quantity]

    def to_canonical(self, idx: np.ndarray, raw: np.ndarray) -> np.ndarray:
        return raw * self.scale[idx] + self.offset[idx]

    def to_csv(self) -> str:
        out = io.StringIO()
        cols = ["sensor_id", "network", "zone", "quantity", "unit", "role", "interval_s", "lat", "lon", "tags"]
        w = csv.writer(out, lineterminator="\n")
        w.writerow(cols)
        for s in self.sensors:
            w.writerow([s.sensor_id, s.network, s.zone, s.quantity, s.unit, s.role, f"{s.interval_s:g}",
                        "" if s.lat is None else s.lat, "" if s.lon is None else s.lon, ";".join(s.tags)])
        return out.getvalue()


def _validate_rows(rows: Sequence[tuple[int, dict]], source: str) -> list[Sensor]:
    errors: list[InputError] = []
    sensors: list[Sensor] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        try:
            sensor = Sensor.model_validate(row)
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"]) or None
                errors.append(InputError(err["msg"], source=source, line=line, field=loc))
            continue
        if sensor.sensor_id in seen:
            first = seen[sensor.sensor_id]
            errors.append(InputError(f"duplicate sensor_id {sensor.sensor_id!r} (first on line {first})",
                                     source=source, line=line, field="sensor_id"))
            continue
        seen[sensor.sensor_id] = line
        sensors.append(sensor)
    if errors:
        raise InputErrors(errors)
    if not sensors:
        raise InputErrors([InputError("catalog has no sensors", source=source)])
    return sensors


def parse_catalog_csv(text: str, source: str = "<catalog>") -> Catalog:
    reader = csv.DictReader(io.StringIO(text))
    required = {"sensor_id", "network", "zone", "quantity", "unit"}
    missing = required - set(reader.fieldnames or [])
    if missing:
        raise InputErrors([InputError(f"missing column(s) {', '.join(sorted(missing))}", source=source, line=1)])
    rows: list[tuple[int, dict]] = []
    for row in reader:
        clean = {k.strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k}
        clean = {k: v for k, v in clean.items() if v not in ("", None)}
        rows.append((reader.line_num, clean))
    return Catalog.from_sensors(_validate_rows(rows, source))


def parse_catalog_yaml(text: str, source: str = "<catalog>") -> Catalog:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    finally:
        loader.dispose()
    if node is None:
        raise InputErrors([InputError("empty catalog", source=source)])
    items = node.value if isinstance(node, yaml.SequenceNode) else None
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "sensors" and isinstance(value, yaml.SequenceNode):
                items = value.value
    if items is None:
        raise InputErrors([InputError("expected a list of sensors or a mapping with 'sensors:'",
                                      source=source, line=node.start_mark.line + 1)])
    rows = [(item.start_mark.line + 1, yaml.safe_load(yaml.serialize(item))) for item in items]
    return Catalog.from_sensors(_validate_rows(rows, source))


def load_catalog(path: str | Path) -> Catalog:
    """Load a catalog from .csv or .yaml/.yml; errors name file, line and field."""
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() in (".yaml", ".yml"):
        return parse_catalog_yaml(text, str(path))
    return parse_catalog_csv(text, str(path))
