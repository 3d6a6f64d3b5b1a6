"""Labelled events (ground truth) for backtests: `event_id,network,zone,kind,start,end` plus optional
`sensor_id,magnitude,description`. Simulators write them, backtests and reports read them."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sentinel.errors import InputError, InputErrors
from sentinel.readings import iso, parse_time

REQUIRED = ("event_id", "network", "zone", "kind", "start", "end")
COLUMNS = (*REQUIRED, "sensor_id", "magnitude", "description")


@dataclass(frozen=True)
class LabelledEvent:
    """What happened, where, and over which [start, end) window."""

    event_id: str
    network: str
    zone: str
    kind: str
    start_ns: int
    end_ns: int
    sensor_id: str | None = None
    magnitude: float | None = None
    description: str = ""

    def covers(self, time_ns: np.ndarray) -> np.ndarray:
        return (time_ns >= self.start_ns) & (time_ns < self.end_ns)

    def to_row(self) -> dict[str, str]:
        """The events.csv row: ISO UTC times, empty cells for no sensor / no magnitude."""
        return {
            "event_id": self.event_id, "network": self.network, "zone": self.zone, "kind": self.kind,
            "start": iso(self.start_ns), "end": iso(self.end_ns), "sensor_id": self.sensor_id or "",
            "magnitude": "" if self.magnitude is None else repr(self.magnitude),
            "description": self.description,
        }


def load_events(path: str | Path) -> list[LabelledEvent]:
    source = str(path)
    errors: list[InputError] = []
    events: list[LabelledEvent] = []
    with Path(path).open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise InputErrors([InputError(f"missing column(s) {', '.join(missing)}", source=source, line=1)])
        for row in reader:
            line = reader.line_num
            try:
                start = parse_time(row["start"])
            except (ValueError, TypeError) as exc:
                errors.append(InputError(str(exc), source=source, line=line, field="start"))
                continue
            try:
                end = parse_time(row["end"]) if (row["end"] or "").strip() else start
            except (ValueError, TypeError) as exc:
                errors.append(InputError(str(exc), source=source, line=line, field="end"))
                continue
            if end < start:
                errors.append(InputError("end is before start", source=source, line=line, field="end"))
                continue
            try:
                magnitude = float(row["magnitude"]) if (row.get("magnitude") or "").strip() else None
            except ValueError:
                errors.append(InputError(f"magnitude {row['magnitude']!r} is not a number", source=source,
                                         line=line, field="magnitude"))
                continue
            events.append(LabelledEvent(row["event_id"].strip(), row["network"].strip(), row["zone"].strip(),
                                        row["kind"].strip(), start, end, (row.get("sensor_id") or "").strip()
                                        or None, magnitude, row.get("description") or ""))
    if errors:
        raise InputErrors(errors)
    return events
