"""Operators act on alerts through the pipeline: the change is kept in the book, stored and announced."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest

from alerts.lifecycle import AlertError
from alerts.notifiers import ConsoleNotifier
from sentinel.pipeline import Pipeline
from sentinel.stores.sqlite import SQLiteStore
from tests.helpers import MIN, T0, catalog, ruleset, series_batch

CAT = catalog({"sensor_id": "P1", "network": "water", "zone": "Z", "quantity": "pressure", "unit": "kPa",
               "interval_s": 60})
RULES = ruleset({"id": "low", "kind": "threshold", "low": 200, "severity": "red"})


def firing(tmp_path, *, store: bool = True) -> tuple[Pipeline, str, io.StringIO]:
    out = io.StringIO()
    pipe = Pipeline(CAT, RULES, store=SQLiteStore(tmp_path / "s.sqlite", CAT) if store else None,
                    notifiers=[ConsoleNotifier(out)])
    pipe.process(series_batch(CAT, {"P1": np.array([300.0, 150.0, 150.0])}))
    (alert,) = pipe.book.open_alerts()
    return pipe, alert.alert_id, out


def test_acknowledge_is_stored_and_announced_with_who_and_why(tmp_path) -> None:
    pipe, alert_id, out = firing(tmp_path)
    change = pipe.acknowledge(alert_id, "wang.li", "crew on the way", time_ns=T0 + 10 * MIN)
    assert (change.change, change.actor, change.alert.acked_by) == ("acknowledged", "wang.li", "wang.li")
    assert pipe.book.get(alert_id).state == "acknowledged"
    assert [c.change for c in pipe.store.alert_history(alert_id)][-1] == "acknowledged"
    assert "ACKNOWLEDGED" in out.getvalue() and "by wang.li (crew on the way)" in out.getvalue()


def test_resolving_by_hand_closes_it_and_a_second_action_is_refused(tmp_path) -> None:
    pipe, alert_id, _ = firing(tmp_path)
    pipe.resolve(alert_id, "zhao.min", "valve closed")
    assert pipe.book.open_alerts() == []
    assert pipe.store.alerts("resolved")[0].resolved_by == "zhao.min"
    with pytest.raises(AlertError):
        pipe.acknowledge(alert_id, "wang.li")


def test_live_runner_runs_submitted_actions_on_its_own_thread(tmp_path) -> None:
    from sentinel.live import LiveRunner

    pipe, alert_id, _ = firing(tmp_path, store=False)  # SQLite connections belong to their thread
    runner = LiveRunner.__new__(LiveRunner)  # only the command queue is exercised here
    LiveRunner.__init__(runner, pipe, source=None, decoder=None)  # type: ignore[arg-type]
    seen: list[str] = []
    fut = runner.submit(lambda: (seen.append(threading.current_thread().name), pipe.acknowledge(alert_id, "a"))[1])
    worker = threading.Thread(target=runner._run_commands, name="loop")
    worker.start()
    worker.join()
    assert fut.result(1).actor == "a" and seen == ["loop"]
    bad = runner.submit(lambda: pipe.resolve("nope", "a"))
    runner._run_commands()
    with pytest.raises(AlertError):
        bad.result(1)
