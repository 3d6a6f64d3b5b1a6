"""`sentinel influx init` sets up the long-retention bucket and the 1-minute task idempotently, the task
computes what it claims, and `sentinel influx check` reports health, token, buckets and counts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from sentinel.catalog import Catalog, Sensor
from sentinel.cli import main
from sentinel.readings import NS, Batch
from tests.conftest_influx import InfluxServer, store_for

MIN = 60 * NS


@pytest.fixture
def setup(influxdb: InfluxServer, influx_bucket: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    monkeypatch.setenv("SENTINEL_INFLUX_URL", influxdb.url)
    monkeypatch.setenv("SENTINEL_INFLUX_TOKEN", influxdb.token)
    monkeypatch.setenv("SENTINEL_INFLUX_BUCKET", influx_bucket)
    names = {"ds": f"{influx_bucket}-1m", "task": f"test-downsample-{influx_bucket}"}
    yield names
    with influxdb.client() as c:
        for t in c.tasks_api().find_tasks(name=names["task"]):
            c.tasks_api().delete_task(t.id)
    influxdb.delete_bucket(names["ds"])


def test_init_twice_creates_one_bucket_and_one_task(influxdb: InfluxServer, setup: dict,
                                                    capsys: pytest.CaptureFixture) -> None:
    args = ["influx", "init", "--downsample-bucket", setup["ds"], "--task-name", setup["task"]]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main(args) == 0
    second = capsys.readouterr().out
    assert f"bucket '{setup['ds']}' (retention 400d): created" in first and f"'{setup['task']}'" in first
    assert first.rstrip().endswith("created")
    assert "created" not in second and second.count("unchanged") == 3
    with influxdb.client() as c:
        tasks = c.tasks_api().find_tasks(name=setup["task"])
        assert len(tasks) == 1 and tasks[0].status == "active" and tasks[0].every == "60s"
        rules = c.buckets_api().find_bucket_by_name(setup["ds"]).retention_rules
        assert rules[0].every_seconds == 400 * 86400

    assert main([*args, "--retention", "30d"]) == 0  # a changed setting updates in place
    assert f"bucket '{setup['ds']}' (retention 30d): updated" in capsys.readouterr().out
    with influxdb.client() as c:
        assert c.buckets_api().find_bucket_by_name(setup["ds"]).retention_rules[0].every_seconds == 30 * 86400
        assert len(c.tasks_api().find_tasks(name=setup["task"])) == 1


def test_the_task_writes_one_minute_means_of_complete_minutes(influxdb: InfluxServer, influx_bucket: str,
                                                              setup: dict, tmp_path: Path) -> None:
    assert main(["influx", "init", "--downsample-bucket", setup["ds"], "--task-name", setup["task"]]) == 0
    catalog = Catalog.from_sensors([Sensor(sensor_id="P1", network="water", zone="DMA1", quantity="pressure",
                                           unit="kPa", interval_s=10)])
    minute = time.time_ns() // MIN * MIN
    t = minute - 5 * MIN + np.arange(5 * 6) * 10 * NS  # five whole minutes before this one, every 10 s
    values = np.random.default_rng(1).normal(300, 5, len(t))
    with store_for(influxdb, influx_bucket, catalog, tmp_path) as store:
        store.write_readings(Batch.of(np.zeros(len(t)), t, values))
    with influxdb.client() as c:
        (task,) = c.tasks_api().find_tasks(name=setup["task"])
        run_id = c.tasks_api().run_manually(task.id).id
        status = None
        for _ in range(100):  # a queued manual run is not listed yet: wait for it to show up and finish
            status = next((r.status for r in c.tasks_api().get_runs(task.id) if r.id == run_id), None)
            if status in ("success", "failed"):
                break
            time.sleep(0.1)
        assert status == "success", [e.message for e in c.tasks_api().get_logs(task.id)]
    recs = influxdb.query(f'from(bucket: "{setup["ds"]}") |> range(start: 0)')
    got = sorted((int(r.get_time().timestamp()) * NS, r.get_value(), r.values["sensor"], r.values["zone"],
                  r.get_measurement(), r.get_field()) for r in recs)
    if len(got) == 6:  # the run started in the next minute: the current one is complete too (rare)
        got = got[:5]
    assert [g[0] for g in got] == [minute - (5 - i) * MIN for i in range(5)]  # stamped at the minute's start
    assert [g[1] for g in got] == pytest.approx(values.reshape(5, 6).mean(axis=1), rel=1e-12)
    assert {g[2:] for g in got} == {("P1", "DMA1", "readings", "value")}


def test_check_reports_and_fails_on_a_refused_token(influxdb: InfluxServer, influx_bucket: str, setup: dict,
                                                    capsys: pytest.CaptureFixture,
                                                    monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    args = ["influx", "check", "--downsample-bucket", setup["ds"], "--task-name", setup["task"], "--hours", "0"]
    assert main(args) == 0  # present and healthy; downsampling not set up yet is reported, not fatal
    out = capsys.readouterr().out
    assert ": pass (v2.9.1)" in out and "token: accepted" in out and f"bucket '{influx_bucket}': present" in out
    assert f"bucket '{setup['ds']}': MISSING" in out and "readings 0" in out

    monkeypatch.delenv("SENTINEL_INFLUX_TOKEN")
    token_file = tmp_path / "token"
    token_file.write_text("wrong-token-42\n")
    assert main([*args, "--token-file", str(token_file)]) == 1
    captured = capsys.readouterr()
    assert "refused the token" in captured.err and "wrong-token-42" not in captured.out + captured.err
