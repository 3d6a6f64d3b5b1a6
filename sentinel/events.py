"""Labelled events (ground truth) for backtests: `event_id,network,zone,kind,start,end` plus extras."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from sentinel.errors import InputError, InputErrors
from sentinel.readings import parse_time

REQUIRED = ("event_id", "network", "zone", "kind", "start", "end")


@dataclass(frozen=True)
class LabelledEvent:
    event_id: str
    network: str
    zone: str
    kind: str
    start_ns: int
    end_ns: int
    sensor_id: str | None = None


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
            events.append(LabelledEvent(row["event_id"].strip(), row["network"].strip(), row["zone"].strip(),
                                        row["kind"].strip(), start, end, (row.get("sensor_id") or "").strip()
                                        or None))
    if errors:
        raise InputErrors(errors)
    return events
