"""`sentinel rules test`: rule files get unit tests, the shipped defaults pass theirs, and a failing or
broken test says exactly where and why."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from rules.testing import RunResult, run_file, run_files
from rules.testing_schema import expand
from sentinel.cli import main

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(str(p) for p in (ROOT / "rules" / "tests").glob("*.test.yaml"))
WATER_RULES = ROOT / "rules" / "defaults" / "water.yaml"

# Every kind of alarm the default rules promise has a shipped test that makes it fire.
PROMISED = {
    "water-burst-pressure-drop", "water-pressure-low", "water-night-flow", "water-inflow-excess", "water-inflow-drop",
    "water-zone-balance", "water-sensor-silent", "water-sensor-stuck", "heat-makeup-rise", "heat-pressure-drop",
    "heat-temperature-anomaly", "gas-lel", "gas-pressure-drop",
}

HEADER = f"""\
rule_files: [{WATER_RULES}]
catalog:
  - {{sensor_id: P1, network: water, zone: DMA1, quantity: pressure, unit: kPa, interval_s: 60}}
tests:
"""
# P1 sags 2.5 kPa a minute (too slow for the burst rule), below 140 kPa at +25m; water-pressure-low
# (for 10m) opens yellow at +35m.
SAG = """\
  - name: sag
    series:
      P1: "200-2.5x36 109+0.1x9"
    alerts:
"""


def write(tmp_path: Path, body: str, name: str = "my.test.yaml") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


@pytest.fixture(scope="module")
def shipped() -> RunResult:
    return run_files(SHIPPED)


# -- the shipped tests ----------------------------------------------------------------------------

def test_the_shipped_rule_tests_pass_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert len(SHIPPED) == 3
    assert main(["rules", "test", *SHIPPED]) == 0
    out = capsys.readouterr().out
    assert out.count("  PASS  ") >= 12 and "  FAIL  " not in out
    assert out.rstrip().splitlines()[-1].startswith("SUCCESS: 3 file(s)")


def test_the_shipped_rule_tests_pass_through_the_api(shipped: RunResult) -> None:
    assert shipped.exit_code == 0, [p.message for c in shipped.cases for p in c.problems]
    assert [Path(f.file).name for f in shipped.files] == ["gas.test.yaml", "heat.test.yaml", "water.test.yaml"]
    for f in shipped.files:
        quiet = [c for c in f.cases if not c.alerts]
        assert quiet, f"{f.file} has no case that must not alarm"


def test_the_shipped_tests_make_every_promised_alarm_fire(shipped: RunResult) -> None:
    fired = {a["rule"] for c in shipped.cases for a in c.alerts}
    assert fired >= PROMISED


def test_the_readme_example_passes(tmp_path: Path) -> None:
    readme = (ROOT / "rules" / "tests" / "README.md").read_text(encoding="utf-8")
    example = re.findall(r"```yaml\n(.*?)```", readme, re.S)[0].replace("../defaults/water.yaml", str(WATER_RULES))
    assert run_file(write(tmp_path, example)).passed


# -- failures name file, line, case and rule ---------------------------------------------------------

def test_a_wrong_grade_fails_with_a_diff(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, HEADER + SAG + "      - {rule: water-pressure-low, zone: DMA1, grade: red, "
                 "window: {from: 34m, to: 36m}}\n")
    assert main(["rules", "test", str(path)]) == 1
    out = capsys.readouterr().out
    line = line_of(path, "grade: red")
    assert (f"{path}:{line}: 'sag': wrong grade: expected water-pressure-low DMA1 red (一级) opened +34m..+36m; "
            "got water-pressure-low water/DMA1 P1 yellow (三级) opened +35m") in out
    assert "  FAIL  sag  (line 5," in out and out.rstrip().endswith("0 passed, 1 failed")


def test_a_message_that_does_not_say_what_the_test_expects_fails_showing_the_message(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + SAG + "      - {rule: water-pressure-low, zone: DMA1, grade: yellow, "
                 "message: 'below 100', window: {from: 34m, to: 36m}}\n")
    (case,) = run_file(path).cases
    (problem,) = case.problems
    assert problem.kind == "mismatch" and problem.line == line_of(path, "below 100")
    assert problem.message.startswith("wrong message: expected water-pressure-low DMA1 yellow (三级) opened "
                                      "+34m..+36m, message containing 'below 100'; got ")
    assert ", message '" in problem.message  # the alert's own words, to copy from
    path = write(tmp_path, HEADER + SAG + "      - {rule: water-pressure-low, zone: DMA1, grade: yellow, "
                 "message: '140', window: {from: 34m, to: 36m}}\n")
    assert run_file(path).passed


def test_a_wrong_time_and_an_unexpected_alert_are_both_reported(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + SAG + "      - {rule: water-pressure-low, zone: DMA1, subject: P1, "
                 "grade: yellow, window: {from: 1h, to: 2h}}\n    no_other_alerts: true\n"
                 + SAG.replace("sag", "sag again") + "      - {rule: water-burst-pressure-drop, zone: DMA1, "
                 "grade: orange, window: {from: 0m, to: 1h}}\n    no_other_alerts: true\n")
    first, second = run_file(path).cases
    assert [(p.kind, p.line) for p in first.problems] == [("mismatch", line_of(path, "from: 1h"))]
    assert "wrong time" in first.problems[0].message and "opened +35m" in first.problems[0].message
    kinds = {p.kind: p for p in second.problems}
    assert set(kinds) == {"missing", "unexpected"}
    assert "expected but missing: water-burst-pressure-drop DMA1 orange" in kinds["missing"].message
    assert kinds["missing"].message.endswith("the rule opened no alert")
    assert kinds["unexpected"].line == second.line
    assert kinds["unexpected"].message.startswith("unexpected: water-pressure-low water/DMA1 P1 yellow")


def test_json_output_carries_results_and_the_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, HEADER + SAG + "      - {rule: water-pressure-low, zone: DMA1, grade: 三级, "
                 "state: firing, window: {from: 35m, to: 35m}}\n    no_other_alerts: true\n")
    assert main(["rules", "test", "--json", str(path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["exit_code"] == 0
    assert doc["summary"] == {"files": 1, "invalid_files": 0, "cases": 1, "passed": 1, "failed": 0}
    case = doc["files"][0]["cases"][0]
    assert (case["name"], case["line"], case["passed"], case["problems"]) == ("sag", 5, True, [])
    assert case["alerts"][0] | {"message": ""} == {
        "rule": "water-pressure-low", "network": "water", "zone": "DMA1", "subject": "P1", "grade": "yellow",
        "grade_zh": "三级", "state": "firing", "opened": "2025-01-05T16:35:00Z", "opened_offset": "+35m",
        "resolved": None, "message": ""}


# -- invalid test files ------------------------------------------------------------------------------

def test_an_invalid_test_file_gives_located_errors_and_exit_2(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, HEADER + SAG.replace("200-2.5x36", "200-2.5y36")
                 + "      - {rule: water-pressure-low, zone: DMA1, grade: purple, window: {from: 1m, to: 2m}}\n")
    assert main(["rules", "test", str(path)]) == 2
    out = capsys.readouterr().out
    assert f"INVALID  {path}" in out
    assert (f"{path}:{line_of(path, '200-2.5y36')}: tests[0] (sag) series.P1.values: token 1 '200-2.5y36' is not "
            "a value") in out
    assert f"{path}:{line_of(path, 'purple')}: tests[0] (sag) alerts[0].grade: unknown severity 'purple'" in out


def test_references_are_checked_against_the_rules_and_catalog(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + SAG.replace("P1:", "P2:")
                 + "      - {rule: water-pressure-lo, zone: DMA9, subject: P1, grade: red, "
                 "window: {from: 1m, to: 2m}}\n")
    result = run_file(path)
    assert result.invalid and not result.cases
    messages = [str(e) for e in result.errors]
    alert_line = line_of(path, "water-pressure-lo,")
    assert messages == [
        f"{path}:{line_of(path, 'P2:')}: tests[0] (sag) series.P2: no sensor 'P2' in the catalog",
        f"{path}:{alert_line}: tests[0] (sag) alerts[0].rule: no rule 'water-pressure-lo' in {WATER_RULES}; "
        "did you mean 'water-pressure-low'?",
        f"{path}:{alert_line}: tests[0] (sag) alerts[0].zone: no zone 'DMA9' in the catalog (zones: water/DMA1)",
        f"{path}:{alert_line}: tests[0] (sag) alerts[0].subject: sensor P1 is in water/DMA1, not DMA9",
    ]


def test_an_invalid_file_does_not_hide_the_results_of_valid_ones(tmp_path: Path) -> None:
    good = write(tmp_path, HEADER + SAG + "      []\n", "good.test.yaml")
    bad = write(tmp_path, "tests: [{name: x, series: {P1: 1}", "bad.test.yaml")
    result = run_files([good, bad])
    assert result.exit_code == 2
    assert result.files[0].passed and result.files[1].invalid
    assert str(result.files[1].errors[0]).startswith(f"{bad}:1: not valid YAML")


# -- other inputs ------------------------------------------------------------------------------------

def test_a_replay_file_and_a_catalog_path_are_read_relative_to_the_test(tmp_path: Path) -> None:
    (tmp_path / "catalog.csv").write_text("sensor_id,network,zone,quantity,unit,interval_s\n"
                                          "P1,water,DMA1,pressure,bar,60\n")
    rows = [f"2025-03-01T00:{m:02d}:00Z,P1,{4.0 if m < 10 else 0.5}" for m in range(30)]
    (tmp_path / "readings.csv").write_text("time,sensor_id,value\n" + "\n".join(rows) + "\n")
    path = write(tmp_path, f"rule_files: [{WATER_RULES}]\ncatalog: catalog.csv\ntests:\n"
                 "  - name: replayed burst\n    replay: readings.csv\n    alerts:\n"
                 "      - {rule: water-burst-pressure-drop, zone: DMA1, subject: P1, grade: red, "
                 "window: {from: 10m, to: 2025-03-01T00:10:00Z}}\n")
    result = run_file(path)
    assert result.passed, [p.message for c in result.cases for p in c.problems]


def test_a_simulator_scenario_brings_its_own_catalog(tmp_path: Path) -> None:
    write(tmp_path, "start: 2025-01-06T18:00:00Z\nduration: 40m\nmissing_rate: 0\n"
          "water: {zones: 1, inlets: 1, pressure_loggers: 2}\nintervals: {water_flow: 60, water_pressure: 60}\n"
          "events: [{kind: burst, zone: DMA1, start: 600, duration: 20m, magnitude: 0.3}]\n", "burst.yaml")
    path = write(tmp_path, f"rule_files: [{WATER_RULES}]\ntests:\n  - name: simulated burst\n"
                 "    scenario: burst.yaml\n    alerts:\n      - {rule: water-burst-pressure-drop, zone: DMA1, "
                 "subject: W-DMA1-P01, grade: orange, window: {from: 10m, to: 15m}}\n")
    assert run_file(path).passed


def test_a_zone_grid_rule_that_judges_sensors_takes_a_sensor_as_subject(tmp_path: Path) -> None:
    """water-logger-drift reads the zone grid but alerts on the drifting logger, so its subject is a sensor."""
    sensors = "".join(
        f"  - {{sensor_id: {sid}, network: water, zone: DMA1, quantity: {q}, unit: {u}, interval_s: 60{role}}}\n"
        for sid, q, u, role in (("W-DMA1-FI01", "flow", "m3/h", ", role: inlet"), ("W-DMA1-P01", "pressure", "kPa", ""),
                                ("W-DMA1-P02", "pressure", "kPa", "")))
    body = (f"rule_files: [{WATER_RULES}]\ncatalog:\n{sensors}tests:\n"
            "  - name: a logger drifts away from the others\n    series:\n"
            '      W-DMA1-FI01: "100+0.01x2879"\n      W-DMA1-P01: "400+0.001x2879"\n'
            '      W-DMA1-P02: "380+0.001x2879"\n    alerts:\n'
            "      - {rule: water-logger-drift, zone: DMA1, subject: W-DMA1-P01, grade: yellow, "
            "window: {from: 0m, to: 2d}}\n")
    result = run_file(write(tmp_path, body))
    assert not result.errors  # valid: it runs (and fails, as nothing drifts), rather than being refused
    assert not result.passed


def test_a_hydraulic_scenario_that_cannot_be_simulated_is_a_located_error(tmp_path: Path) -> None:
    write(tmp_path, "engine: wntr\nname: bad\nnetwork: Hanoi\nstart: 2025-03-02T16:00:00Z\nduration: 1d\n"
          "events: [{kind: burst, zone: DMA9, start: 2h, duration: 1h, size: large}]\n", "bad.yaml")
    path = write(tmp_path, f"rule_files: [{WATER_RULES}]\ntests:\n  - name: no such zone\n"
                 "    scenario: bad.yaml\n    alerts: []\n")
    result = run_file(path)
    assert not result.passed
    text = "\n".join(str(e) for e in result.errors)
    assert "cannot simulate bad.yaml" in text and "DMA9" in text


# -- the expanding notation ----------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "values"), [
    ("300", [300]),
    ("300x3", [300, 300, 300, 300]),
    ("1x0", [1]),
    ("400-2x3", [400, 398, 396, 394]),
    ("-2+4x3", [-2, 2, 6, 10]),
    ("1-2x4", [1, -1, -3, -5, -7]),
    ("0.1+0.1x2", [0.1, 0.2, 0.3]),
    ("1.5e2 -3", [150, -3]),
    ("1 _ 2", [1, None, 2]),
    ("5 _x3 5", [5, None, None, None, 5]),
    ("  7\n  8 ", [7, 8]),
])
def test_expanding_notation(text: str, values: list[float | None]) -> None:
    got = expand(text)
    assert [None if math.isnan(v) else v for v in got] == values


@pytest.mark.parametrize(("text", "error"), [
    ("", "no values"),
    ("1+2", "token 1 '1+2' is not a value"),
    ("1 2 abc", "token 3 'abc' is not a value"),
    ("_x0", "token 1 '_x0': _xN needs N >= 1"),
    ("1x3000000000", "more than 2,000,000 samples"),
    ("1 _x3000000000", "token 2 '_x3000000000': more than 2,000,000 samples"),
])
def test_expanding_notation_rejects_what_it_cannot_read(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=re.escape(error)):
        expand(text)
