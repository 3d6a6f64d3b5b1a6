"""Faust workers on a real Kafka broker: the single-process answer, take-over after a kill, dead letters.

Workers run as `sentinel worker` processes (as operators run them) sharing one SQLite store; the input
is a simulated two-day stream of every network published as the MQTT bridge would (zone keys, ticks).
The reference is the single-process replay of the same readings into its own SQLite store.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from ingest.kafka_codec import encode_tick, zone_records
from ingest.kafka_publish import ZoneProducer
from rules import snapshot
from rules.loader import load_rules
from sentinel.catalog import Catalog, load_catalog
from sentinel.readings import Batch
from sentinel.replay_run import replay
from sentinel.scaleout.topics import Topics, changelog_topic
from sentinel.scaleout.zoned import Message, ZonedProcessor
from sentinel.stores.sqlite import SQLiteStore
from simulators.files import write_replay
from simulators.scenario import default_scenario
from simulators.synthetic import generate
from tests.conftest_kafka import KafkaServer, unique_name
from tests.worker_procs import (
    CHANGES,
    DETECTIONS,
    Worker,
    changelog_states,
    count,
    launch_worker,
    ready,
    rows,
    wait_for,
)

PARTITIONS = 4


@dataclass(frozen=True)
class Sim:
    dir: Path
    catalog: Catalog
    batch: Batch
    reference: Path  # SQLite store of the single-process replay

    @property
    def catalog_csv(self) -> Path:
        return self.dir / "catalog.csv"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Sim:
    d = tmp_path_factory.mktemp("faust-sim")
    result = generate(default_scenario(seed=21, days=2))
    paths = write_replay(result, d)
    catalog = load_catalog(paths["catalog.csv"])
    ref = d / "single.sqlite"
    store = SQLiteStore(ref, catalog)
    replay(catalog, paths["readings.csv"], load_rules(), store=store, show_progress=False)
    store.close()
    return Sim(d, catalog, result.to_batch(), ref)


@pytest.fixture
def workers(kafka: KafkaServer, sim: Sim, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []
    app_id, prefix = unique_name("sentinel-test-app"), unique_name("st")

    def start(name: str) -> Worker:
        w = launch_worker(name, ["--kafka", kafka.bootstrap, "--partitions", str(PARTITIONS), "--prefix", prefix,
                                 "--app-id", app_id, "--catalog", str(sim.catalog_csv),
                                 "--db", str(tmp_path / "store.sqlite")], tmp_path)
        started.append(w)
        return w

    start.prefix = prefix  # type: ignore[attr-defined]
    start.app_id = app_id  # type: ignore[attr-defined]
    start.store = tmp_path / "store.sqlite"  # type: ignore[attr-defined]
    yield start
    for w in started:
        w.stop()
    for w in started:
        if w.proc.returncode not in (0, -signal.SIGKILL, None):
            print(f"--- {w.name} log ---\n{w.text()[-4000:]}")


async def publish(bootstrap: str, sim: Sim, prefix: str, chunks: list[Batch], *, pause_s: float = 0.0,
                  after: Callable[[int], None] | None = None) -> None:
    async with ZoneProducer(bootstrap, sim.catalog, Topics(prefix)) as producer:
        for i, chunk in enumerate(chunks):
            await producer.send_batch(chunk)
            await producer.tick(force=True)
            if after is not None:
                await asyncio.get_running_loop().run_in_executor(None, after, i)
            if pause_s:
                await asyncio.sleep(pause_s)


def assert_same_as_single_process(sim: Sim, store: Path) -> None:
    want_d, want_c = rows(sim.reference, DETECTIONS), rows(sim.reference, CHANGES)
    assert len(want_d) > 10
    wait_for("every detection and alert change in the store",
             lambda: count(store, "detections") >= len(want_d) and count(store, "alert_changes") >= len(want_c),
             90)
    assert rows(store, DETECTIONS) == want_d
    assert rows(store, CHANGES) == want_c


def reference_zone_states(sim: Sim, chunks: list[Batch]) -> dict[str, bytes]:
    """Each zone's state after the stream, computed in this process with the same records and ticks."""
    proc = ZonedProcessor(sim.catalog, load_rules())
    states: dict[str, bytes] = {}
    high = None
    for chunk in chunks:
        high = max(high or 0, int(chunk.time_ns.max()))
        records = {k.decode(): v for k, v in zone_records(sim.catalog, chunk)}
        for key in sim.catalog.zones:
            msgs = [Message(records[key], "t")] if key in records else []
            out = proc.process(key, states.get(key), [*msgs, Message(encode_tick(high), "t")])
            states[key] = out.state
    return states


def assert_same_memory(sim: Sim, got: dict[str, bytes], want: dict[str, bytes]) -> None:
    """Learned baselines, alarm levels, zone buckets and open alerts: array for array, per zone."""
    assert set(got) == set(want) == set(sim.catalog.zones)
    proc = ZonedProcessor(sim.catalog, load_rules())
    for key in want:
        g, w = proc.restore(key, got[key]), proc.restore(key, want[key])
        ga, wa = snapshot.flatten(g.state), snapshot.flatten(w.state)
        assert ga.keys() == wa.keys()
        for path in wa:
            assert np.array_equal(ga[path], wa[path], equal_nan=ga[path].dtype.kind == "f"), f"{key}: {path}"
        assert g.book.snapshot() == w.book.snapshot(), key


def test_two_workers_share_the_zones_and_one_takes_over_from_a_killed_one(kafka: KafkaServer, sim: Sim,
                                                                          workers: Callable[..., Worker]) -> None:
    a, b = workers("a"), workers("b")
    wait_for("both workers ready", lambda: ready(a) and ready(b), 90, [a, b])
    chunks = sim.batch.split(2000)
    kill_at = len(chunks) // 2
    killed_at_ns: list[int] = []

    def maybe_kill(i: int) -> None:
        if i != kill_at:
            return
        wait_for("worker a to evaluate part of the stream", lambda: a.processed_messages() > 0, 60, [a, b])
        a.proc.send_signal(signal.SIGKILL)  # no goodbye: its zones' state lives on in the changelog only
        a.proc.wait(10)
        killed_at_ns.append(int(chunks[i].time_ns.max()))

    asyncio.run(publish(kafka.bootstrap, sim, workers.prefix, chunks, pause_s=0.15, after=maybe_kill))
    assert killed_at_ns, "the stream ended before the kill"
    store: Path = workers.store
    wait_for("every reading evaluated and stored", lambda: count(store, "readings") == len(sim.batch), 240, [b])
    assert b.proc.poll() is None, "the surviving worker is still running"
    if b.restarts:  # a faust-streaming consumer stuck after the rebalance: the watchdog restarted it
        print(f"worker b was restarted {b.restarts} time(s) by its watchdog")
    assert a.processed_messages() > 0 and b.processed_messages() > 0, "both workers had zones to evaluate"
    assert_same_as_single_process(sim, store)
    # learned baselines survived: detections of baseline rules after the kill are the single process's
    after = [r for r in rows(store, DETECTIONS) if r[2] > killed_at_ns[0]]
    assert after, "the stream goes on after the kill"
    assert after == [r for r in rows(sim.reference, DETECTIONS) if r[2] > killed_at_ns[0]]
    # and the memory every zone ends with, whoever evaluated it, is the one an unbroken run ends with
    changelog = changelog_topic(workers.app_id)
    assert_same_memory(sim, changelog_states(kafka.bootstrap, changelog), reference_zone_states(sim, chunks))


def test_malformed_messages_are_dead_lettered_and_the_worker_keeps_going(kafka: KafkaServer, sim: Sim,
                                                                         workers: Callable[..., Worker]) -> None:
    w = workers("solo")
    wait_for("the worker ready", lambda: ready(w), 90, [w])

    async def garbage() -> None:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
        await producer.start()
        try:
            zone = sim.catalog.zones[0].encode()
            await producer.send_and_wait(Topics(workers.prefix).readings, b"\x00\xffnot json", key=zone)
            await producer.send_and_wait(Topics(workers.prefix).readings, b'{"sensor": ["x"]}', key=zone)
            await producer.send_and_wait(Topics(workers.prefix).readings, b'{"watermark": 1}', key=b"water/ATLANTIS")
        finally:
            await producer.stop()

    asyncio.run(garbage())
    asyncio.run(publish(kafka.bootstrap, sim, workers.prefix, sim.batch.split(5000)))
    store: Path = workers.store
    wait_for("every reading evaluated and stored", lambda: count(store, "readings") == len(sim.batch), 120, [w])
    letters = rows(store, "SELECT source, field, reason FROM dead_letters ORDER BY source")
    assert len(letters) == 3
    by_reason = {r[2].split(":")[0]: r for r in letters}
    assert by_reason["undecodable JSON"][0].startswith(f"{Topics(workers.prefix).readings}[")
    assert by_reason["missing field(s) t, v, q (readings need sensor, t, v, q)"][1] == "t"
    assert "unknown zone key 'water/ATLANTIS'" in " ".join(r[2] for r in letters)
    assert_same_as_single_process(sim, store)
    assert w.proc.poll() is None
