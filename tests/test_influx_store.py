"""The InfluxDB store against a real influxd: exact round trip through the pipeline, re-sent data
overwrites, rejected points become dead letters, a wrong token is a clear error, not a crash."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from influxdb_client.client.write_api import SYNCHRONOUS

from rules.loader import load_rules
from sentinel.pipeline import Pipeline
from sentinel.readings import NS, Batch
from sentinel.settings import Settings
from sentinel.stores.base import Store
from sentinel.stores.influx import InfluxStore
from sentinel.stores.influx_schema import ReadingsEncoder
from sentinel.stores.multi import MultiStore
from sentinel.stores.sqlite import SQLiteStore
from sentinel.warm import query_readings
from sentinel.wiring import build_store
from simulators import default_scenario, generate
from tests.conftest_influx import (
    InfluxServer,
    assert_same_readings,
    points_per_sensor,
    read_back,
    sent_per_sensor,
    store_for,
)

HOUR = 3600 * NS


@pytest.fixture(scope="module")
def sim():
    result = generate(default_scenario(seed=3, days=1))
    return result.sensor_catalog(), result.to_batch()


def test_it_is_a_store(influxdb: InfluxServer, influx_bucket: str, sim, tmp_path: Path) -> None:
    catalog, _ = sim
    with store_for(influxdb, influx_bucket, catalog, tmp_path) as store:
        assert isinstance(store, Store)


def test_pipeline_results_read_back_exactly(influxdb: InfluxServer, influx_bucket: str, sim, tmp_path: Path) -> None:
    catalog, batch = sim
    store = store_for(influxdb, influx_bucket, catalog, tmp_path / "spool", batch_size=5000)
    pipeline = Pipeline(catalog, load_rules(None), store=store)
    detections, changes = [], []
    for part in batch.split(2000):
        out = pipeline.process(part)
        detections += out.detections
        changes += out.changes
    pipeline.close()
    assert detections and changes, "the scenario has events: something must fire"

    assert_same_readings(read_back(influxdb, influx_bucket, catalog), batch)
    assert points_per_sensor(influxdb, influx_bucket) == sent_per_sensor(catalog, batch)

    recs = influxdb.query(f'from(bucket: "{influx_bucket}") |> range(start: 0) |> filter(fn: (r) => '
                          'r._measurement == "detections" and r._field == "severity")')
    stored = sorted((r.values["rule"], r.values["subject"], r.values["transition"], r.get_time().timestamp(),
                     r.get_value()) for r in recs)
    assert stored == sorted((d.rule_id, d.subject, d.transition, d.time_ns / NS, int(d.severity or 0))
                            for d in detections)
    recs = influxdb.query(f'from(bucket: "{influx_bucket}") |> range(start: 0) |> filter(fn: (r) => '
                          'r._measurement == "alerts" and r._field == "state")')
    assert sorted((r.values["alert_id"], r.values["change"], r.get_value()) for r in recs) == \
        sorted((c.alert.alert_id, c.change, c.alert.state) for c in changes)
    stats = store.stats()
    assert stats["written"] == stats["accepted"] == len(batch) + len(detections) + len(changes)
    assert stats["spooled"] == stats["rejected"] == stats["pending"] == 0


def test_a_re_sent_batch_overwrites_instead_of_duplicating(influxdb: InfluxServer, influx_bucket: str, sim,
                                                          tmp_path: Path) -> None:
    catalog, batch = sim
    part = batch.take(slice(0, 3000))
    with store_for(influxdb, influx_bucket, catalog, tmp_path) as store:
        store.write_readings(part)
        store.write_readings(part)  # e.g. MQTT redelivery after a crash
        store.write_readings(Batch(part.sensor, part.time_ns, part.value + 1.0, part.quality))  # corrected
    got = read_back(influxdb, influx_bucket, catalog)
    assert_same_readings(got, Batch(part.sensor, part.time_ns, part.value + 1.0, part.quality))


def test_a_field_type_conflict_dead_letters_those_points_and_writes_the_rest(
        influxdb: InfluxServer, sim, tmp_path: Path) -> None:
    catalog, batch = sim
    bucket = influxdb.create_bucket(f"conflict-{tmp_path.name}", shard_group_s=3600)  # field types are per shard
    t0 = int(batch.time_ns[0]) // HOUR * HOUR
    bad_hour = (batch.time_ns >= t0 + 2 * HOUR) & (batch.time_ns < t0 + 3 * HOUR)
    four_hours = batch.time_ns < t0 + 4 * HOUR
    with influxdb.client() as c:  # someone wrote `value` as a string into hour 2's shard first
        c.write_api(write_options=SYNCHRONOUS).write(
            bucket, influxdb.org, f'readings,sensor=intruder value="broken" {t0 + 2 * HOUR + 1}')
    sqlite = SQLiteStore(tmp_path / "sentinel.db", catalog)
    store = store_for(influxdb, bucket, catalog, tmp_path / "spool", batch_size=1000,
                      on_dead_letter=sqlite.write_dead_letters)
    sent = batch.take(four_hours)
    for part in sent.split(1500):
        store.write_readings(part)  # no exception: the rest of the stream goes on
    store.close()

    n_bad = int((bad_hour & four_hours).sum())
    good = sent.take(~bad_hour[four_hours])
    assert n_bad > 100
    with influxdb.client() as c:  # (a Flux read spanning shards with both field types nulls one of them)
        got = Batch.concat([query_readings(c, influxdb.org, bucket, catalog, 0, t0 + 2 * HOUR),
                            query_readings(c, influxdb.org, bucket, catalog, t0 + 3 * HOUR, 2**62)])
    assert_same_readings(got, good)
    letters = sqlite.dead_letters(limit=10 * n_bad)
    assert len(letters) == n_bad == store.stats()["rejected"] == len(store.rejected)
    assert {d.field for d in letters} == {"value"}
    assert all(d.reason.startswith("influx rejected: ") and "field type conflict" in d.reason for d in letters)
    assert sorted(d.payload for d in letters) == sorted(
        ReadingsEncoder(catalog).encode(batch.take(bad_hour & four_hours)))  # the exact lines, kept
    assert store.stats()["written"] == len(good)
    sqlite.close()
    influxdb.delete_bucket(bucket)


def test_a_wrong_token_is_a_clear_error_spools_and_the_right_one_delivers_later(
        influxdb: InfluxServer, influx_bucket: str, sim, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    catalog, batch = sim
    part = batch.take(slice(0, 4000))
    caplog.set_level(logging.DEBUG)
    wrong = "not-the-token-0123456789"
    store = store_for(influxdb, influx_bucket, catalog, tmp_path, token=wrong, flush_interval_s=0)
    pipeline = Pipeline(catalog, load_rules(None), store=store)
    for p in part.split(1000):
        pipeline.process(p)  # no exception
    stats = store.stats()
    assert stats["state"] == "refused" and stats["spooled"] == len(part) and stats["written"] == 0
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors and "refused the token" in errors[0]
    assert f"bucket {influx_bucket!r} of org 'sentinel'" in errors[0] and influxdb.url in errors[0]
    pipeline.close()
    assert points_per_sensor(influxdb, influx_bucket) == {}

    fixed = store_for(influxdb, influx_bucket, catalog, tmp_path)  # same spool; drains on start
    assert fixed.stats()["drained"] == len(part)
    fixed.close()
    assert_same_readings(read_back(influxdb, influx_bucket, catalog), part)
    logged = "\n".join(r.getMessage() for r in caplog.records) + repr(store) + repr(fixed)
    assert wrong not in logged and influxdb.token not in logged


def test_settings_choose_sqlite_and_influx_with_a_token_file(influxdb: InfluxServer, influx_bucket: str, sim,
                                                            tmp_path: Path) -> None:
    catalog, batch = sim
    token_file = tmp_path / "token"
    token_file.write_text(influxdb.token + "\n")
    s = Settings(store="sqlite,influx", db=tmp_path / "s.db", influx_url=influxdb.url, influx_bucket=influx_bucket,
                 influx_token_file=token_file, influx_spool_dir=tmp_path / "spool")
    assert influxdb.token not in repr(s)
    store = build_store(s, catalog)
    assert isinstance(store, MultiStore)
    sqlite, influx = store.stores
    assert isinstance(sqlite, SQLiteStore) and isinstance(influx, InfluxStore)
    assert influx.on_dead_letter == sqlite.write_dead_letters
    part = batch.take(slice(0, 2500))
    store.write_readings(part)  # flush_interval 0 (the live default): in InfluxDB when the call returns
    assert sum(points_per_sensor(influxdb, influx_bucket).values()) == len(part)
    assert sqlite.counts()["readings"] == len(part)
    assert influxdb.token not in repr(store)
    store.close()
    assert isinstance(build_store(Settings(db=tmp_path / "only.db"), catalog), SQLiteStore)  # the default
