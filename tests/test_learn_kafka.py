"""Commissioning the Kafka path: `sentinel kafka learn` puts each zone's learned state where Faust workers
restore it, so workers started afterwards answer as the single process going live from `sentinel learn`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ingest.kafka_codec import encode_tick, zone_records
from ingest.kafka_publish import ZoneProducer
from ingest.replay import read_replay
from rules.loader import load_rules
from sentinel.catalog import load_catalog
from sentinel.cli import main
from sentinel.replay_run import replay
from sentinel.scaleout.learn import learn_zones
from sentinel.scaleout.topics import Topics, changelog_topic
from sentinel.scaleout.zoned import Message, ZonedProcessor
from sentinel.stores.sqlite import SQLiteStore
from tests.conftest_kafka import KafkaServer, unique_name
from tests.hanoi_days import hanoi_days
from tests.worker_procs import DETECTIONS, changelog_states, count, launch_worker, ready, rows, wait_for

PARTITIONS = 3


@pytest.fixture(scope="module")
def hanoi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The eleven Hanoi days, and the single process's answer on the live day from `sentinel learn`'s state."""
    d = hanoi_days(tmp_path_factory.mktemp("hanoi-kafka"))
    assert main(["learn", "-q", "--catalog", str(d / "catalog.csv"), "--readings", str(d / "history.csv"),
                 "--state", str(d / "learned.state")]) == 0
    catalog = load_catalog(d / "catalog.csv")
    store = SQLiteStore(d / "single.sqlite", catalog)
    replay(catalog, d / "live.csv", load_rules(), store=store, show_progress=False, from_state=d / "learned.state")
    store.close()
    return d


def single_process_detections(hanoi: Path) -> list[tuple]:
    got = rows(hanoi / "single.sqlite", DETECTIONS)
    assert any(r[0] == "water-burst-fingerprint" and r[1] == "DMA2" for r in got), "the learned burst fingerprint"
    return got


def test_zones_learned_as_workers_run_them_answer_as_the_single_process_learned(hanoi: Path) -> None:
    catalog, rules = load_catalog(hanoi / "catalog.csv"), load_rules()
    states = learn_zones(catalog, rules, read_replay(hanoi / "history.csv", catalog).batch)
    assert set(states) == set(catalog.zones)
    proc = ZonedProcessor(catalog, rules)
    live = read_replay(hanoi / "live.csv", catalog).batch
    got = []
    high = None
    for chunk in live.split(5000):
        high = int(chunk.time_ns.max()) if high is None else max(high, int(chunk.time_ns.max()))
        records = {k.decode(): v for k, v in zone_records(catalog, chunk)}
        for key in catalog.zones:
            messages = [Message(records[key], "t")] if key in records else []
            out = proc.process(key, states[key], [*messages, Message(encode_tick(high), "t")])
            states[key] = out.state
            got += [(d.rule_id, d.subject, d.time_ns, d.transition, d.severity.label if d.severity else None,
                     d.message) for d in out.detections]
    want = single_process_detections(hanoi)
    assert sorted(got, key=lambda r: (r[2], r[0], r[1], r[3])) == want


def test_workers_started_after_kafka_learn_detect_the_live_day_as_the_single_process(
        kafka: KafkaServer, hanoi: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app_id, prefix = unique_name("sentinel-learn-app"), unique_name("sl")
    common = ["--kafka", kafka.bootstrap, "--partitions", str(PARTITIONS), "--prefix", prefix,
              "--catalog", str(hanoi / "catalog.csv")]
    learn = ["kafka", "learn", "-q", *common, "--app-id", app_id, "--readings", str(hanoi / "history.csv")]
    assert main(learn) == 0
    assert "3 zone state(s)" in capsys.readouterr().out
    catalog = load_catalog(hanoi / "catalog.csv")
    assert set(changelog_states(kafka.bootstrap, changelog_topic(app_id))) == set(catalog.zones)

    store = tmp_path / "store.sqlite"
    w = launch_worker("w", [*common, "--app-id", app_id, "--db", str(store)], tmp_path)
    try:
        wait_for("the worker ready", lambda: ready(w), 90, [w])
        live = read_replay(hanoi / "live.csv", catalog).batch

        async def publish() -> None:
            async with ZoneProducer(kafka.bootstrap, catalog, Topics(prefix)) as producer:
                for chunk in live.split(5000):
                    await producer.send_batch(chunk)
                    await producer.tick(force=True)

        asyncio.run(publish())
        want = single_process_detections(hanoi)
        wait_for("the live day evaluated and stored",
                 lambda: count(store, "readings") == len(live) and count(store, "detections") >= len(want), 180, [w])
        assert rows(store, DETECTIONS) == want
    finally:
        w.stop()

    assert main(learn) == 2  # the workers have state now: learning again would overwrite it
    assert "already holds" in capsys.readouterr().err
