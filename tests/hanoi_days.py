"""Eleven days of Hanoi hydraulics (rules/tests/hanoi-burst.yaml) cut into history and a live day, for the
commissioning tests: ten ordinary days, then the second Thursday, when DMA2's main bursts at 10:00 local."""

from __future__ import annotations

from pathlib import Path

from bench.commissioning import split
from simulators.dispatch import simulate_file, write_result

SCENARIO = Path(__file__).resolve().parents[1] / "rules" / "tests" / "hanoi-burst.yaml"
SPLIT = "2025-03-12T16:00:00Z"  # the second Thursday 00:00 local


def split_readings(source: Path, history: Path, live: Path, at: str = SPLIT) -> None:
    """Readings before `at` to `history`, the rest to `live` (bench.commissioning.split)."""
    split(source, at, history, live)


def hanoi_days(directory: Path) -> Path:
    """catalog.csv, readings.csv and readings_wide.csv (all eleven days), history.csv, history_wide.csv and
    live.csv in `directory`."""
    write_result(simulate_file(SCENARIO, show_progress=False), directory, wide=True)
    split_readings(directory / "readings.csv", directory / "history.csv", directory / "live.csv")
    split_readings(directory / "readings_wide.csv", directory / "history_wide.csv", directory / "live_wide.csv")
    return directory
