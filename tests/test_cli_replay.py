"""Engineers' loop: check rules, replay history, backtest against labelled events, from the command line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from sentinel.cli import main
from simulators.files import write_replay
from simulators.scenario import default_scenario
from simulators.synthetic import generate


@pytest.fixture(scope="module")
def replay_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    write_replay(generate(default_scenario(seed=101, days=3)), out, wide=True)
    return out


def test_rules_check_accepts_the_shipped_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "check"]) == 0
    assert "valid" in capsys.readouterr().out


def test_rules_check_names_file_line_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - id: low-p\n    kind: threshold\n    low: {purple: 3}\n"
                   "  - id: x\n    kind: teleport\n")
    assert main(["rules", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:4: rules[0] (low-p) low: unknown severity 'purple'" in err
    assert f"{bad}:5: rules[1] (x): unknown rule kind" in err


def test_rules_check_with_catalog_shows_what_each_rule_watches(replay_set: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "check", "--catalog", str(replay_set / "catalog.csv")]) == 0
    out = capsys.readouterr().out
    assert "gas-lel" in out and "subject(s)" in out


def test_replay_of_long_and_wide_forms_gives_the_same_alerts(replay_set: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    results = []
    for name in ("readings.csv", "readings_wide.csv"):
        assert main(["replay", "--catalog", str(replay_set / "catalog.csv"), "--readings",
                     str(replay_set / name), "--json", "-q"]) == 0
        results.append(json.loads(capsys.readouterr().out))
    long, wide = results
    assert long["alerts"], "three days with events must raise something"
    assert [a["alert_id"] for a in long["alerts"]] == [a["alert_id"] for a in wide["alerts"]]


def test_backtest_reports_recall_precision_and_time_to_detect(replay_set: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    alerts_csv = tmp_path / "alerts.csv"
    assert main(["backtest", "--catalog", str(replay_set / "catalog.csv"), "--readings",
                 str(replay_set / "readings.csv"), "--events", str(replay_set / "events.csv"), "--json", "-q",
                 "--alerts-out", str(alerts_csv)]) == 0
    report = json.loads(capsys.readouterr().out)
    for key in ("events", "detected", "recall", "precision", "false_alerts", "false_alerts_per_zone_week",
                "median_time_to_detect_s", "by_kind"):
        assert key in report
    assert report["events"] > 0 and report["detected"] > 0
    with alerts_csv.open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["alert_id", "rule", "network", "zone", "sensor_id", "severity", "start", "end"]
    assert len(rows) == report["alerts"]


def test_backtest_counts_the_false_alerts_raised_by_benign_anomalies(replay_set: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A holiday is city-wide: every water alert while it lasts counts, whichever zone the label names;
    gas and heat alerts do not."""
    no_events = tmp_path / "none.csv"
    no_events.write_text("event_id,network,zone,kind,start,end\n")
    holiday = tmp_path / "anomalies.csv"
    holiday.write_text("event_id,network,zone,kind,start,end\n"
                       "AN1,water,DMA1,holiday,2000-01-01T00:00:00Z,2100-01-01T00:00:00Z\n")
    alerts_csv = tmp_path / "alerts.csv"
    args = ["backtest", "--catalog", str(replay_set / "catalog.csv"), "--readings", str(replay_set / "readings.csv"),
            "--events", str(no_events), "--json", "-q", "--alerts-out", str(alerts_csv)]
    assert main([*args, "--anomalies", str(holiday)]) == 0
    report = json.loads(capsys.readouterr().out)
    with alerts_csv.open() as fh:
        water = [r for r in csv.DictReader(fh) if r["network"] == "water"]
    assert report["false_alerts"] == report["alerts"] > len(water) > 0
    assert report["false_alerts_on_benign_anomalies"] == len(water)
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["false_alerts_on_benign_anomalies"] == 0


def test_replay_dead_letters_bad_rows_with_file_and_line(replay_set: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    readings = tmp_path / "r.csv"
    lines = (replay_set / "readings.csv").read_text().splitlines()[:200]
    lines[5] = lines[5].rsplit(",", 1)[0] + ",not-a-number"
    lines[7] = "2025-01-01T00:00:00Z,NO-SUCH-SENSOR,1.0"
    readings.write_text("\n".join(lines) + "\n")
    db = tmp_path / "s.sqlite"
    assert main(["replay", "--catalog", str(replay_set / "catalog.csv"), "--readings", str(readings), "-q",
                 "--db", str(db)]) == 0
    from sentinel.catalog import load_catalog
    from sentinel.stores.sqlite import SQLiteStore

    with SQLiteStore(db, load_catalog(replay_set / "catalog.csv")) as store:
        letters = {(d.source, d.field) for d in store.dead_letters()}
        assert store.counts()["readings"] == 197
    assert (f"{readings}:6", "value") in letters
    assert (f"{readings}:8", "sensor_id") in letters


def test_replay_writes_a_report_page(replay_set: Path, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    assert main(["replay", "--catalog", str(replay_set / "catalog.csv"), "--readings",
                 str(replay_set / "readings.csv"), "-q", "--report", str(page)]) == 0
    text = page.read_text()
    assert "<svg" in text and 'class="alert' in text


def test_alerts_and_dead_letters_of_a_store_can_be_listed(replay_set: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    readings = tmp_path / "r.csv"
    lines = (replay_set / "readings.csv").read_text().splitlines()
    lines.insert(3, "2025-01-05T16:00:00Z,NO-SUCH-SENSOR,1")
    readings.write_text("\n".join(lines) + "\n")
    db = tmp_path / "s.sqlite"
    assert main(["replay", "--catalog", str(replay_set / "catalog.csv"), "--readings", str(readings), "-q",
                 "--db", str(db), "--json"]) == 0
    replayed = json.loads(capsys.readouterr().out)["alerts"]
    assert main(["alerts", "--db", str(db), "--state", "all", "--json"]) == 0
    assert [a["alert_id"] for a in json.loads(capsys.readouterr().out)] == [a["alert_id"] for a in replayed]
    assert main(["dead-letters", "--db", str(db)]) == 0
    assert f"{readings}:4: sensor_id: unknown sensor 'NO-SUCH-SENSOR'" in capsys.readouterr().out
    assert main(["alerts", "--db", str(tmp_path / "missing.sqlite")]) == 2
