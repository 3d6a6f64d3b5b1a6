"""Commissioning from history: `sentinel learn` teaches the rules a SCADA export, so going live is not a week
blind, and what it learned is exactly what an engine that had watched all along would know."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from ingest.replay import read_replay
from rules import snapshot
from rules.engine import Engine
from rules.loader import load_rules
from sentinel.catalog import load_catalog
from sentinel.cli import main
from sentinel.errors import InputError
from sentinel.learn import learn_file
from sentinel.replay_run import replay
from tests.hanoi_days import hanoi_days, split_readings


@pytest.fixture(scope="module")
def hanoi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return hanoi_days(tmp_path_factory.mktemp("hanoi"))


@pytest.fixture(scope="module")
def learned(hanoi: Path) -> Path:
    state = hanoi / "learned.state"
    assert main(["learn", "-q", "--catalog", str(hanoi / "catalog.csv"), "--readings", str(hanoi / "history.csv"),
                 "--state", str(state)]) == 0
    return state


def fingerprint_alerts(alerts) -> list:
    return [a for a in alerts if a.rule_id == "water-burst-fingerprint"]


def test_a_learned_zone_names_a_burst_on_its_first_live_day_which_a_cold_start_cannot(hanoi: Path,
                                                                                     learned: Path) -> None:
    catalog, rules = load_catalog(hanoi / "catalog.csv"), load_rules(None)
    warm = replay(catalog, hanoi / "live.csv", rules, show_progress=False, from_state=learned)
    cold = replay(catalog, hanoi / "live.csv", rules, show_progress=False)
    [burst] = fingerprint_alerts(warm.alerts)
    assert burst.zone == "DMA2" and "pressure fell most at" in burst.message
    assert fingerprint_alerts(cold.alerts) == []  # Thursday never seen: the fingerprint does not judge yet


def test_learning_then_going_live_detects_exactly_like_an_engine_that_watched_all_along(hanoi: Path,
                                                                                       learned: Path) -> None:
    catalog, rules = load_catalog(hanoi / "catalog.csv"), load_rules(None)
    whole = replay(catalog, hanoi / "readings.csv", rules, show_progress=False)
    warm = replay(catalog, hanoi / "live.csv", rules, show_progress=False, from_state=learned)
    split_ns = warm.first_ns
    assert not [a for a in whole.alerts if a.started_ns < split_ns <= (a.resolved_ns or split_ns)]  # none open
    expected = [d for d in whole.detections if d.time_ns >= split_ns]
    assert expected and warm.detections == expected


def test_learn_reports_what_it_read_and_how_to_go_live(hanoi: Path, learned: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    state = hanoi / "again.state"
    assert main(["learn", "-q", "--catalog", str(hanoi / "catalog.csv"), "--readings", str(hanoi / "history.csv"),
                 "--state", str(state)]) == 0
    out = capsys.readouterr().out
    assert "66,240 readings (long form, 0 dead letters) from 2025-03-02T16:00:00Z to 2025-03-12T15:55:00Z" in out
    assert f"sentinel run --catalog {hanoi / 'catalog.csv'} --state {state}" in out
    assert "water/DMA2" in out and "every weekday" in out and "not yet" not in out
    assert state.read_bytes() == learned.read_bytes()  # the same history teaches the same state


def test_a_short_history_names_the_weekdays_the_weekly_rules_have_not_seen(hanoi: Path, tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    three_days = tmp_path / "three.csv"
    split_readings(hanoi / "history.csv", three_days, tmp_path / "rest.csv", at="2025-03-05T16:00:00Z")
    assert main(["learn", "-q", "--json", "--catalog", str(hanoi / "catalog.csv"), "--readings", str(three_days),
                 "--state", str(tmp_path / "s")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["weekday_rules"] == ["water-burst-fingerprint", "water-inflow-drop", "water-inflow-excess",
                                       "water-night-flow"]
    assert {z["zone"]: z["weekdays_missing"] for z in report["zones"]} == {
        f"water/DMA{i}": ["Thu", "Fri", "Sat", "Sun"] for i in (1, 2, 3)}  # Monday to Wednesday seen


def test_learn_will_not_overwrite_a_state_file_unless_told(hanoi: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "live.state"
    state.write_bytes(b"a running processor's state")
    args = ["learn", "-q", "--catalog", str(hanoi / "catalog.csv"), "--readings", str(hanoi / "history.csv"),
            "--state", str(state)]
    assert main(args) == 2
    assert "exists" in capsys.readouterr().err and state.read_bytes() == b"a running processor's state"
    assert main([*args, "--force"]) == 0 and state.read_bytes() != b"a running processor's state"


def test_learn_names_the_lines_it_could_not_use_and_learns_from_the_rest(hanoi: Path, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    head, first, *rest = (hanoi / "history.csv").read_text(encoding="utf-8").splitlines()
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([head, first, "2025-03-02T16:00:00Z,NOT-A-SENSOR,1.0", "yesterday,W-DMA1-FI01,3.0",
                              *rest]) + "\n", encoding="utf-8")
    assert main(["learn", "-q", "--catalog", str(hanoi / "catalog.csv"), "--readings", str(bad),
                 "--state", str(tmp_path / "s")]) == 0
    captured = capsys.readouterr()
    assert "2 dead letters" in captured.out
    assert f"dead letter: {bad}:3" in captured.err and "NOT-A-SENSOR" in captured.err
    assert f"dead letter: {bad}:4" in captured.err


def test_learn_writes_nothing_from_a_file_with_no_readings_of_the_catalog(hanoi: Path, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other.csv"
    other.write_text("time,sensor_id,value\n2025-03-02T16:00:00Z,SOMEONE-ELSES,1.0\n", encoding="utf-8")
    assert main(["learn", "-q", "--catalog", str(hanoi / "catalog.csv"), "--readings", str(other),
                 "--state", str(tmp_path / "s")]) == 2
    assert "nothing learned" in capsys.readouterr().err and not (tmp_path / "s").exists()


def test_a_replay_from_a_state_the_rules_no_longer_fit_is_an_error_naming_the_rule(hanoi: Path, learned: Path,
                                                                                  tmp_path: Path) -> None:
    tuned = tmp_path / "water.yaml"
    defaults = Path(__file__).resolve().parents[1] / "rules" / "defaults" / "water.yaml"
    tuned.write_text(defaults.read_text(encoding="utf-8").replace("min_ratio: 0.02 ", "min_ratio: 0.03 "),
                     encoding="utf-8")
    catalog = load_catalog(hanoi / "catalog.csv")
    with pytest.raises(InputError, match=r"learned.state: rule water-inflow-excess changed since it was saved"):
        replay(catalog, hanoi / "live.csv", load_rules([tuned]), show_progress=False, from_state=learned)
    with pytest.raises(InputError, match=r"catalog.csv: not a saved engine state"):
        replay(catalog, hanoi / "live.csv", load_rules(None), show_progress=False, from_state=hanoi / "catalog.csv")


def test_a_state_learned_for_another_catalog_does_not_load_strictly(hanoi: Path, learned: Path,
                                                                    tmp_path: Path) -> None:
    lines = (hanoi / "catalog.csv").read_text(encoding="utf-8").splitlines()
    fewer = tmp_path / "catalog.csv"
    fewer.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    engine = Engine(load_catalog(fewer), load_rules(None))
    with pytest.raises(InputError, match="saved for another sensor catalog"):
        snapshot.load(learned, engine, strict=True)


def test_the_live_processor_starts_from_the_learned_state_array_for_array(hanoi: Path, learned: Path,
                                                                          tmp_path: Path) -> None:
    from sentinel.settings import Settings
    from sentinel.wiring import build_live
    from tests.servers import free_port

    catalog = load_catalog(hanoi / "catalog.csv")
    taught = learn_file(catalog, load_rules(None), hanoi / "history.csv")
    s = Settings(state=learned, publish_alerts=False, mqtt_port=free_port(), db=tmp_path / "s.sqlite")
    app = build_live(s, catalog)
    try:
        got, want = snapshot.flatten(app.runner.pipeline.state), snapshot.flatten(taught.state)
        assert got.keys() == want.keys()
        for path in want:
            assert np.array_equal(got[path], want[path], equal_nan=want[path].dtype.kind == "f"), path
    finally:
        app.close()


def test_going_live_hours_after_the_history_ends_raises_no_silent_sensor_storm(hanoi: Path, tmp_path: Path) -> None:
    """A SCADA export is hours old when the processor starts: the engine heard nothing in between, so no
    sensor counts as silent across the gap, and the burst is still named."""
    catalog, rules = load_catalog(hanoi / "catalog.csv"), load_rules(None)
    older = tmp_path / "older.csv"
    split_readings(hanoi / "history.csv", older, tmp_path / "unseen.csv", at="2025-03-12T10:00:00Z")  # 6 h gap
    taught = learn_file(catalog, rules, older)
    snapshot.save(tmp_path / "older.state", taught.state, engine=taught.engine)
    out = replay(catalog, hanoi / "live.csv", rules, show_progress=False, from_state=tmp_path / "older.state")
    assert not [a for a in out.alerts if a.rule_id == "water-sensor-silent"]
    assert [a.zone for a in fingerprint_alerts(out.alerts)] == ["DMA2"]
    # a stale reading first (a retained MQTT message, an overlapping export) does not start the clock
    head, *rows = (hanoi / "live.csv").read_text(encoding="utf-8").splitlines()
    stale = (older.read_text(encoding="utf-8").splitlines())[-1]
    (tmp_path / "live_stale.csv").write_text("\n".join([head, stale, *rows]) + "\n", encoding="utf-8")
    out = replay(catalog, tmp_path / "live_stale.csv", rules, show_progress=False,
                 from_state=tmp_path / "older.state")
    assert not [a for a in out.alerts if a.rule_id == "water-sensor-silent"]


def test_learn_says_when_the_burst_fingerprint_has_not_learned_its_spread(hanoi: Path, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Nine days see every weekday, but the fingerprint learns its step's spread for three days after the
    first week: ten days give it most hours of the day, nine none."""
    nine = tmp_path / "nine.csv"
    split_readings(hanoi / "history.csv", nine, tmp_path / "rest.csv", at="2025-03-11T16:00:00Z")
    for history, share in ((nine, 0.0), (hanoi / "history.csv", 22 / 24)):
        assert main(["learn", "-q", "--json", "--catalog", str(hanoi / "catalog.csv"), "--readings", str(history),
                     "--state", str(tmp_path / "s"), "--force"]) == 0
        zones = json.loads(capsys.readouterr().out)["zones"]
        assert {z["zone"]: z["weekdays_missing"] for z in zones} == {f"water/DMA{i}": [] for i in (1, 2, 3)}
        for z in zones:
            assert z["ready"]["water-burst-fingerprint"] == pytest.approx(share)
            assert z["ready"]["water-inflow-excess"] == 1.0


def test_a_wide_export_teaches_what_the_long_one_does(hanoi: Path, learned: Path, tmp_path: Path) -> None:
    catalog = load_catalog(hanoi / "catalog.csv")
    taught = learn_file(catalog, load_rules(None), hanoi / "history_wide.csv")
    assert taught.form == "wide" and taught.learned.readings == 66_240
    snapshot.save(tmp_path / "wide.state", taught.state, engine=taught.engine)
    assert (tmp_path / "wide.state").read_bytes() == learned.read_bytes()


def shifted(data: object, by_ns: int) -> object:
    """A JSON-able alert-book snapshot with every time (keys ending in _ns, and last_start's) moved."""
    if isinstance(data, dict):
        return {k: (v + by_ns if k.endswith("_ns") and isinstance(v, int) else shifted(v, by_ns))
                for k, v in data.items()}
    if isinstance(data, list) and len(data) == 4 and isinstance(data[2], int):  # last_start: rule, subject, t, q
        return [data[0], data[1], data[2] + by_ns, data[3]]
    if isinstance(data, list):
        return [shifted(v, by_ns) for v in data]
    return data


def test_learning_over_a_state_with_open_alerts_keeps_them_so_that_going_live_clears_them(
        hanoi: Path, learned: Path, tmp_path: Path) -> None:
    from sentinel.pipeline import Pipeline

    catalog, rules = load_catalog(hanoi / "catalog.csv"), load_rules(None)
    running = Pipeline(catalog, rules)
    running.resume(*snapshot.load(learned, running.engine))
    live = read_replay(hanoi / "live.csv", catalog).batch
    running.process(live.take(live.time_ns < live.time_ns[0] + 11 * 3600 * 10**9))  # 11:00 local: mid-burst
    assert running.book.open_alerts()
    # that book, two days earlier: a processor's state with a burst alert still open before going live
    book = shifted(running.book.snapshot(), -2 * 86400 * 10**9)
    state = tmp_path / "live.state"
    snapshot.save(state, running.state, {"alerts": book}, engine=running.engine)

    assert main(["learn", "-q", "--catalog", str(hanoi / "catalog.csv"), "--readings", str(hanoi / "history.csv"),
                 "--state", str(state), "--force"]) == 0
    resumed = Pipeline(catalog, rules)
    resumed.resume(*snapshot.load(state, resumed.engine))
    carried = {a["alert_id"] for a in book["open"]}
    assert {a.alert_id for a in resumed.book.open_alerts()} == carried
    cleared = resumed.reconcile_alerts()  # what `sentinel run` does on restoring a state
    assert {d.transition for d in cleared.detections} == {"cleared"}
    assert {c.alert.alert_id for c in cleared.changes} == carried
    assert all(a.cleared_ns is not None for a in resumed.book.open_alerts())

    # a replay from it (the check before going live) clears them at its start too, before any live reading
    from sentinel.stores.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "check.sqlite", catalog)
    replay(catalog, hanoi / "live.csv", rules, show_progress=False, from_state=state, store=store)
    store.close()
    con = sqlite3.connect(tmp_path / "check.sqlite")
    early = con.execute("SELECT alert_id FROM alert_changes WHERE change = 'cleared' AND time_ns < ?",
                        (int(live.time_ns[0]),)).fetchall()
    con.close()
    assert {r[0] for r in early} == carried  # without it the old alert stood, and took the new burst in


def test_a_backtest_from_a_learned_state_does_not_score_events_of_the_history(
        hanoi: Path, learned: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = tmp_path / "events.csv"
    lines = (hanoi / "events.csv").read_text(encoding="utf-8").splitlines()
    head, burst = lines[0], lines[1]
    assert burst.startswith("EV001,")
    history_event = burst.replace("EV001", "EV000").replace("2025-03-13", "2025-03-06")  # a week earlier
    events.write_text("\n".join([head, history_event, burst]) + "\n", encoding="utf-8")
    assert main(["backtest", "-q", "--json", "--catalog", str(hanoi / "catalog.csv"), "--readings",
                 str(hanoi / "live.csv"), "--events", str(events), "--from-state", str(learned)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["events"] == 1 and json.loads(captured.out)["detected"] == 1
    assert "1 event(s) ended before the replayed readings begin" in captured.err
