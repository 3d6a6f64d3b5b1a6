"""Warm start: baselines learned from InfluxDB history make a restarted engine see what a running one sees."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from rules.engine import Engine
from rules.loader import load_rules
from sentinel.catalog import Catalog, Sensor
from sentinel.readings import NS, Batch
from sentinel.warm import warm_start
from simulators import default_scenario, generate
from tests.conftest_influx import InfluxServer, free_port, store_for

DAY = 86400 * NS


@pytest.fixture(scope="module")
def stream():
    result = generate(default_scenario(seed=2, days=3))
    catalog, batch = result.sensor_catalog(), result.to_batch()
    split = int(batch.time_ns[0]) // DAY * DAY + 2 * DAY
    return catalog, batch.take(batch.time_ns < split), batch.take(batch.time_ns >= split), split


def detections_on(engine: Engine, state, new: Batch) -> list:
    return [d for part in new.split(3000) for d in engine.step(state, part).detections]


def test_a_warm_started_engine_detects_exactly_like_one_that_saw_the_history(
        influxdb: InfluxServer, influx_bucket: str, stream, tmp_path: Path) -> None:
    catalog, history, new, split = stream
    with store_for(influxdb, influx_bucket, catalog, tmp_path) as store:
        store.write_readings(history)
    ruleset = load_rules(None)

    seen = Engine(catalog, ruleset)
    seen_state = seen.new_state()
    for part in history.split(5000):
        seen.step(seen_state, part)
    expected = detections_on(seen, seen_state, new)

    warm = Engine(catalog, ruleset)
    warm_state = warm.new_state()
    with influxdb.client() as client:
        result = warm_start(warm, warm_state, client, influxdb.org, influx_bucket, hours=48, now_ns=split)
    assert result.readings == len(history) and result.batches == 6  # 32 h of history in 6-hour windows
    assert detections_on(warm, warm_state, new) == expected

    cold = Engine(catalog, ruleset)
    assert expected and detections_on(cold, cold.new_state(), new) != expected  # without history it differs


def test_warm_start_reads_only_the_window_asked_for(influxdb: InfluxServer, influx_bucket: str, stream,
                                                   tmp_path: Path) -> None:
    catalog, history, _, split = stream
    with store_for(influxdb, influx_bucket, catalog, tmp_path) as store:
        store.write_readings(history)
    engine = Engine(catalog, load_rules(None))
    state = engine.new_state()
    with influxdb.client() as client:
        result = warm_start(engine, state, client, influxdb.org, influx_bucket, hours=6, now_ns=split)
    in_window = int(((history.time_ns >= split - 6 * 3600 * NS) & (history.time_ns < split)).sum())
    assert result.readings == in_window and result.first_ns >= split - 6 * 3600 * NS and result.last_ns < split
    assert int(state.last_t.max()) == result.last_ns  # the engine saw them


def test_sentinel_run_warms_from_influxdb_only_without_a_state_file(influxdb: InfluxServer, influx_bucket: str,
                                                                     tmp_path: Path) -> None:
    from rules import snapshot
    from sentinel.settings import Settings
    from sentinel.wiring import build_live

    catalog = Catalog.from_sensors([Sensor(sensor_id="P1", network="water", zone="DMA1", quantity="pressure",
                                           unit="kPa", interval_s=60)])
    now = time.time_ns() // NS * NS
    t = now - 3600 * NS + np.arange(50) * 60 * NS  # the last hour, once a minute
    with store_for(influxdb, influx_bucket, catalog, tmp_path / "writer") as store:
        store.write_readings(Batch.of(np.zeros(50), t, np.full(50, 300.0)))
    s = Settings(store="influx", influx_url=influxdb.url, influx_bucket=influx_bucket, influx_token=influxdb.token,
                 influx_spool_dir=tmp_path / "spool", influx_warm_hours=2, publish_alerts=False,
                 state=tmp_path / "state.npz", mqtt_port=free_port())
    app = build_live(s, catalog)
    assert int(app.runner.pipeline.state.last_t[0]) == int(t[-1])  # the engine has seen the last hour
    app.close()

    snapshot.save(s.state, app.runner.pipeline.engine.new_state())  # a state file now exists: it wins
    app = build_live(s, catalog)
    assert int(app.runner.pipeline.state.last_t[0]) < int(t[0])
    app.close()
