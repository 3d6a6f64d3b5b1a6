"""`sentinel simulate --scenario` picks the simulator a scenario names with `engine:` and writes the
replay set every other command reads."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from sentinel.cli import main

SCENARIOS = Path(__file__).resolve().parents[1] / "simulators" / "scenarios"


def short(name: str, tmp_path: Path, duration: str) -> Path:
    doc = yaml.safe_load((SCENARIOS / name).read_text(encoding="utf-8"))
    doc["duration"] = duration
    doc["events"] = []  # the example week's events and anomalies lie beyond a short run
    doc.pop("anomalies", None)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize(("name", "network"), [("gas-week.yaml", "gas"), ("heat-week.yaml", "heat"),
                                               ("hanoi-week.yaml", "water")])
def test_simulate_dispatches_on_the_scenarios_engine(name: str, network: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["simulate", "--scenario", str(short(name, tmp_path, "2h")), "--out", str(out)]) == 0
    with (out / "catalog.csv").open() as fh:
        networks = {row["network"] for row in csv.DictReader(fh)}
    assert networks == {network}
    assert sum(1 for _ in (out / "readings.csv").open()) > 100
