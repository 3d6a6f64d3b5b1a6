"""Replay sets on disk: catalog.csv, readings.csv (long form), events.csv, scenario.yaml, readings_wide.csv.

Values are printed with exactly the sensor's resolution (its decimals), so parsing a file back gives
bit-identical floats. Times are ISO-8601 UTC with 'Z', whole seconds. Timestamps are formatted once
per distinct time with numpy; floats go through one list comprehension, which measured faster than
numpy's string routines.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from sentinel.events import LabelledEvent, load_events
from simulators.events import EVENT_COLUMNS
from simulators.scenario import dump_scenario
from simulators.synthetic import SimResult

READINGS_COLUMNS = ("time", "sensor_id", "value")


def iso_strings(time_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct ISO-8601 UTC 'Z' strings, index of each time's string): formats each distinct time once."""
    uniq, inv = np.unique(time_ns, return_inverse=True)
    text = np.char.add(np.datetime_as_string(uniq.astype("datetime64[ns]"), unit="s"), "Z")
    return text.astype(object), inv


def _value_strings(result: SimResult) -> list[str]:
    """Each value printed with its own sensor's decimals."""
    r = result.readings
    dec = np.asarray(result.decimals, dtype=np.int64)[r.sensor]
    out = np.empty(len(r), dtype=object)
    for d in np.unique(dec):
        sel = dec == d
        out[sel] = [f"{v:.{d}f}" for v in r.value[sel].tolist()]
    return out.tolist()


def readings_long_csv(result: SimResult) -> str:
    """`time,sensor_id,value`, one reading per row, sorted by time then catalog order."""
    r = result.readings
    text, inv = iso_strings(r.time_ns)
    ids = np.array([s.sensor_id for s in result.catalog], dtype=object)
    rows = zip(text[inv].tolist(), ids[r.sensor].tolist(), _value_strings(result), strict=True)
    return ",".join(READINGS_COLUMNS) + "\n" + "".join(f"{t},{s},{v}\n" for t, s, v in rows)


def readings_wide_csv(result: SimResult) -> str:
    """`time` then one column per sensor (catalog order); an empty cell where a sensor did not report."""
    r = result.readings
    text, inv = iso_strings(r.time_ns)
    cells = np.full((len(text), len(result.catalog)), "", dtype=object)
    cells[inv, r.sensor] = _value_strings(result)
    table = np.concatenate([text[:, None], cells], axis=1)
    header = ",".join(["time", *(s.sensor_id for s in result.catalog)])
    return header + "\n" + "".join(",".join(row) + "\n" for row in table.tolist())


def write_events(events: list[LabelledEvent], path: str | Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=EVENT_COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(e.to_row() for e in events)


def read_events(path: str | Path) -> list[LabelledEvent]:
    """Labels back from events.csv, e.g. to score a detector run against the truth."""
    return load_events(path)


def write_replay(result: SimResult, directory: str | Path, wide: bool = False) -> dict[str, Path]:
    """Write the replay set into `directory` (created if missing); returns the paths written by name."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in ("catalog.csv", "readings.csv", "events.csv", "scenario.yaml")}
    paths["catalog.csv"].write_text(result.sensor_catalog().to_csv(), encoding="utf-8")
    paths["readings.csv"].write_text(readings_long_csv(result), encoding="utf-8")
    write_events(result.events, paths["events.csv"])
    paths["scenario.yaml"].write_text(dump_scenario(result.scenario), encoding="utf-8")
    if wide:
        paths["readings_wide.csv"] = out / "readings_wide.csv"
        paths["readings_wide.csv"].write_text(readings_wide_csv(result), encoding="utf-8")
    return paths
