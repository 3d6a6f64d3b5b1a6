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


def test_a_worker_restoring_a_zone_with_carried_alerts_clears_them_and_says_so(hanoi: Path) -> None:
    """What `kafka learn --force` leaves: the learned zone state with the replaced state's open alerts.
    The worker that restores it clears them at once, as `sentinel run` does, and hands on the "cleared"
    detections and alert changes like any others (to their topics, then the store)."""
    from sentinel.learn import learn_file
    from sentinel.pipeline import Pipeline

    catalog, rules = load_catalog(hanoi / "catalog.csv"), load_rules()
    running = Pipeline(catalog, rules)
    running.state = learn_file(catalog, rules, hanoi / "history.csv").state
    live = read_replay(hanoi / "live.csv", catalog).batch
    running.process(live.take(live.time_ns < live.time_ns[0] + 11 * 3600 * 10**9))  # mid-burst in DMA2
    open_ids = {a.alert_id for a in running.book.open_alerts() if a.zone == "DMA2"}
    assert open_ids
    states = learn_zones(catalog, rules, read_replay(hanoi / "history.csv", catalog).batch,
                         books={"water/DMA2": running.book.snapshot()})
    out = ZonedProcessor(catalog, rules).process("water/DMA2", states["water/DMA2"],
                                                 [Message(encode_tick(int(live.time_ns[0])), "t")])
    assert {d.transition for d in out.detections} == {"cleared"}
    assert {c.alert.alert_id for c in out.changes if c.change == "cleared"} >= open_ids


def partitions_of(bootstrap: str, topic: str) -> dict[bytes, set[int]]:
    """Which partitions each key's records are on."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def read() -> dict[bytes, set[int]]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
            consumer.assign(tps)
            end = await consumer.end_offsets(tps)
            await consumer.seek_to_beginning(*tps)
            out: dict[bytes, set[int]] = {}
            while [tp for tp in tps if await consumer.position(tp) < end[tp]]:
                for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                    for r in records:
                        out.setdefault(r.key, set()).add(tp.partition)
            return out
        finally:
            await consumer.stop()

    return asyncio.run(read())


def test_workers_started_after_kafka_learn_detect_the_live_day_as_the_single_process(
        kafka: KafkaServer, hanoi: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app_id, prefix = unique_name("sentinel-learn-app"), unique_name("sl")
    common = ["--kafka", kafka.bootstrap, "--partitions", str(PARTITIONS), "--prefix", prefix,
              "--catalog", str(hanoi / "catalog.csv")]
    learn = ["kafka", "learn", "-q", *common, "--app-id", app_id, "--readings", str(hanoi / "history.csv")]
    assert main(learn) == 0
    assert main(learn) == 0  # no worker has used it yet: learning again (more history, other rules) is fine
    assert "3 zone state(s)" in capsys.readouterr().out
    catalog = load_catalog(hanoi / "catalog.csv")
    assert set(changelog_states(kafka.bootstrap, changelog_topic(app_id))) == set(catalog.zones)

    store = tmp_path / "store.sqlite"
    w = launch_worker("w", [*common, "--app-id", app_id, "--db", str(store)], tmp_path)
    try:
        wait_for("the worker ready", lambda: ready(w), 90, [w])
        assert main(learn) == 2  # a running worker would not see it, then overwrite it
        assert "1 worker(s) of app" in capsys.readouterr().err
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

    # each zone's state sits on the partition its readings take, where the zone's owner restores it
    states, readings = partitions_of(kafka.bootstrap, changelog_topic(app_id)), partitions_of(
        kafka.bootstrap, Topics(prefix).readings)
    for zone in catalog.zones:
        key = zone.encode()
        assert len(readings[key]) == 1 and states[key] == readings[key], (zone, states, readings)

    assert main(learn) == 2  # the (stopped) workers have evaluated readings with this state now
    assert "have evaluated readings" in capsys.readouterr().err
    assert main([*learn, "--force"]) == 0
