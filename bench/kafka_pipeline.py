"""The Kafka/Faust scale-out path against the single-process pipeline, on the same MQTT backlog, in one run.

Every configuration drains the same backlog of 100-reading batch messages queued in Mosquitto for a
persistent session (as bench/mqtt_pipeline.py, whose functions build and queue it):

- single:   the single-process pipeline (`sentinel run`'s loop: decode, default rules, SQLite, ack), as
            bench/mqtt_pipeline.py measures it;
- bridge:   `sentinel bridge` alone, MQTT -> Kafka (decode, one record per zone, acks=all, then MQTT ack),
            timed from its start line to the stats line that counts every reading;
- 1 worker: the bridge and one `sentinel worker` (SQLite store of its own), from the bridge's start until
            the worker's consumer group has committed the log-end offsets of the readings topic and then of
            the output topics (its sink agent has stored every detection, alert and dead letter);
- 2 workers: the same with two workers sharing the app id (one consumer group).

What the stores hold in the end (distinct readings, detections, alerts over the workers' SQLite files) is
compared with the single process's store. The backlog's values repeat per sensor, so the stuck-sensor
rule fires once for every sensor part-way through: every configuration has the same burst of detections
and alert changes to emit and store.

Workers are started, have joined their group and have processed a probe (a watermark tick to every
zone) before the bridge starts, so the clock sees steady-state processing, not Python or Faust start-up
(reported apart). Each run has its own topic prefix, app id and MQTT client id (its persistent session is
dropped afterwards). End-to-end times include up to 1 s of Faust's offset-commit interval
(broker_commit_interval=1.0). Also reported: CPU seconds per process (/proc) as µs per reading, and, when
the broker is ours, the bytes each topic took on disk (the readings topic and the zone-state changelog).

Then consumer lag under sustained load: readings published to MQTT at fixed fractions of the one-worker
rate for `--lag-seconds`, through bridge + one worker; every 0.5 s the lag (log-end minus committed
offsets of the readings topic, summed over partitions) in records, as an estimate in readings, and in
seconds (how long ago the oldest uncommitted record was appended), plus the MQTT backlog in front of the
bridge. Reports median, p90 and max, the trend, and the time to drain once publishing stops. The
published rate is set from this run's one-worker number; the publisher runs in this process, on the same
cores.

Prints medians over repeats and ratios to the single process (Kafka 1 worker / single, 2 workers /
single, 2 workers / 1 worker), and ends with one JSON line. Progress goes to stderr. Starts its own
Mosquitto (bench/mqtt_pipeline.py's config) and Kafka (scripts/kafka-up.sh, free ports, temp dir) and
stops every process it started, also on failure or Ctrl-C.

    python -m bench.kafka_pipeline [--sensors 2000] [--steps 150] [--repeats 3] [--partitions 8] [--workers 2]
                                   [--lag-seconds 30] [--lag-fractions 0.5,0.9] [--kafka HOST:PORT] [--keep]
                                   [--profile-worker worker.prof] [--env SENTINEL_X=Y ...]

About 3.5 minutes with the defaults on a 2-core machine. A failed or interrupted run keeps its work dir
(every bridge and worker log) and says where.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import ctypes
import json
import logging
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.mqtt_pipeline import ZONE_SIZE, drain_pipeline, enqueue, free_port, make_catalog, make_messages, mosquitto
from ingest.kafka_codec import encode_tick
from ingest.mqtt_publish import MqttPublisher
from sentinel.catalog import Catalog
from sentinel.scaleout.topics import Topics, changelog_topic, ensure_topics

REPO = Path(__file__).resolve().parents[1]
T0 = 1_735_689_600 * 10**9  # bench/mqtt_pipeline.py's first reading
NS = 10**9
CLK_TCK = os.sysconf("SC_CLK_TCK")
_started = time.monotonic()


def say(msg: str) -> None:
    print(f"[kafka_pipeline +{time.monotonic() - _started:6.1f}s] {msg}", file=sys.stderr, flush=True)


# -- subprocesses ------------------------------------------------------------------------------------

try:  # resolved here, not in the forked child (no dlopen between fork and exec)
    _prctl: Any = ctypes.CDLL(None).prctl
except (OSError, AttributeError):
    _prctl = None


def _die_with_parent() -> None:
    """In the child: SIGTERM when the bench dies, even by SIGKILL (Linux PR_SET_PDEATHSIG)."""
    if _prctl is not None:
        _prctl(1, int(signal.SIGTERM))


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a live process (0 when it is gone)."""
    if pid is None:
        return 0.0
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Proc:
    """A `sentinel` subprocess; a thread reads its output (stdout and stderr together) line by line into a
    log file and a tail, and hands each line with its arrival time to `on_line`."""

    def __init__(self, name: str, argv: list[str], *, env: dict[str, str], cwd: Path, log_path: Path,
                 on_line: Callable[[float, str], None] | None = None) -> None:
        self.name, self.argv, self.log_path = name, argv, log_path
        self.on_line = on_line
        self.tail: collections.deque[str] = collections.deque(maxlen=60)
        self.errors: list[str] = []
        self.launched = time.monotonic()
        self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, env=env, cwd=cwd, preexec_fn=_die_with_parent)
        self._reader = threading.Thread(target=self._read, name=f"read-{name}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        with self.log_path.open("w", encoding="utf-8") as log:
            for raw in self.popen.stdout:
                t = time.monotonic()
                line = raw.decode("utf-8", "replace").rstrip("\n")
                log.write(line + "\n")
                self.tail.append(line)
                if "] [ERROR] " in line or " ERROR " in line or line.startswith("Traceback"):
                    self.errors.append(line)
                if self.on_line is not None:
                    try:
                        self.on_line(t, line)
                    except Exception as exc:  # a parsing bug must not kill the reader (and block the pipe)
                        self.errors.append(f"bench could not parse {line!r}: {exc}")

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def cpu(self) -> float:
        return cpu_seconds(self.pid) if self.alive() else 0.0

    def check(self) -> None:
        if not self.alive():
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}; log {self.log_path}:\n"
                               + "\n".join(list(self.tail)[-25:]))

    def terminate(self) -> None:
        if self.alive():
            with suppress(ProcessLookupError):
                self.popen.terminate()

    def stop(self, timeout: float = 20.0) -> None:
        if self.alive():
            self.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                say(f"{self.name} did not stop within {timeout:.0f} s of SIGTERM: killing it")
                with suppress(ProcessLookupError):
                    self.popen.kill()
                self.popen.wait(10)
        self._reader.join(5)


class Procs:
    """Every subprocess of a run, stopped however the run ends: SIGTERM to all at once (Faust takes a second
    or two to shut down), then each is waited for, and killed if it takes too long."""

    def __init__(self) -> None:
        self.procs: list[Proc] = []

    def add(self, proc: Proc) -> Proc:
        self.procs.append(proc)
        return proc

    def dump_tails(self, lines: int = 20) -> None:
        """What every process of the failed run said last (its whole log stays in the kept work dir)."""
        for p in self.procs:
            state = "running" if p.alive() else f"exited {p.popen.returncode}"
            say(f"--- {p.name} (pid {p.pid}, {state}), last lines of {p.log_path}:")
            for line in list(p.tail)[-lines:]:
                print(f"    {line[:300]}", file=sys.stderr)

    def stop_all(self) -> None:
        for p in reversed(self.procs):
            p.terminate()
        while self.procs:
            p = self.procs.pop()
            try:
                p.stop()
            except Exception as exc:  # keep stopping the others
                say(f"could not stop {p.name} (pid {p.pid}): {exc}")


def forget_session(port: int, client_id: str) -> None:
    """Drop a persistent MQTT session (connect with clean_session=True): a finished run's session would
    otherwise stay subscribed and get a queued copy of every later backlog and live message."""
    import paho.mqtt.client as mqtt

    connected = threading.Event()
    c = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    c.on_connect = lambda *_: connected.set()
    try:
        c.connect("127.0.0.1", port)
        c.loop_start()
        connected.wait(5)
        c.disconnect()
    except OSError as exc:
        say(f"could not drop MQTT session {client_id}: {exc}")
    finally:
        c.loop_stop()


# -- servers -----------------------------------------------------------------------------------------

@dataclass
class Kafka:
    bootstrap: str
    pid_file: Path | None = None

    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip()) if self.pid_file else None
        except (OSError, ValueError):
            return None

    def topic_bytes(self, topic: str) -> int | None:
        """Bytes of a topic's log segments on disk (None when the broker is not ours)."""
        if self.pid_file is None:
            return None
        total = 0
        for d in (self.pid_file.parent / "data").glob(f"{topic}-*"):
            if d.name.rpartition("-")[0] == topic:
                total += sum(f.stat().st_size for f in d.glob("*.log"))
        return total


@contextmanager
def kafka_broker(workdir: Path, bootstrap: str | None) -> Iterator[Kafka]:
    """scripts/kafka-up.sh on two free loopback ports with its data in `workdir`; kafka-down.sh at the end."""
    if bootstrap:
        yield Kafka(bootstrap)
        return
    port = free_port()
    controller = free_port()
    while controller == port:
        controller = free_port()
    data = workdir / "kafka"
    env = dict(os.environ, KAFKA_PORT=str(port), KAFKA_CONTROLLER_PORT=str(controller), KAFKA_DATA_DIR=str(data),
               KAFKA_ENV_FILE=str(workdir / "kafka.env"))
    say(f"starting Kafka on 127.0.0.1:{port} (scripts/kafka-up.sh, data in {data})")
    try:
        proc = subprocess.run(["bash", str(REPO / "scripts/kafka-up.sh")], env=env, capture_output=True, text=True,
                              timeout=600, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"scripts/kafka-up.sh failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n"
                               f"{proc.stderr[-2000:]}")
        yield Kafka(f"127.0.0.1:{port}", data / "kafka.pid")
    finally:
        subprocess.run(["bash", str(REPO / "scripts/kafka-down.sh")], env=env, capture_output=True, timeout=120,
                       check=False)
        say("Kafka stopped")


# -- Kafka observations ------------------------------------------------------------------------------

class KafkaView:
    """Offsets and group membership, read with aiokafka's admin client and a group-less consumer."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.admin: Any = None
        self.consumer: Any = None
        self.producer: Any = None
        self._coordinator: dict[str, int] = {}

    async def __aenter__(self) -> KafkaView:
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
        from aiokafka.admin import AIOKafkaAdminClient

        self.admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=30_000)
        await self.admin.start()
        self.consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await self.consumer.start()
        self.producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        await self.producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for c in (self.producer, self.consumer):
            if c is not None:
                with suppress(Exception):
                    await c.stop()
        if self.admin is not None:
            with suppress(Exception):
                await self.admin.close()

    async def caught_up(self, group: str, topics: tuple[str, ...], partitions: int,
                        target: dict[str, list[int]] | None = None) -> tuple[bool, dict[str, list[int]]]:
        """Whether `group` has committed `target` (default: the log end now) on every partition of `topics`."""
        target = target or {t: await self.end_offsets(t, partitions) for t in topics}
        for t in topics:
            done = await self.committed(group, t, partitions)
            if any(c < e for c, e in zip(done, target[t], strict=True)):
                return False, target
        return True, target

    async def end_offsets(self, topic: str, partitions: int) -> list[int]:
        from aiokafka import TopicPartition

        tps = [TopicPartition(topic, p) for p in range(partitions)]
        ends = await self.consumer.end_offsets(tps)
        return [int(ends[tp]) for tp in tps]

    async def committed(self, group: str, topic: str, partitions: int) -> list[int]:
        from aiokafka import TopicPartition
        from aiokafka.errors import CoordinatorLoadInProgressError, CoordinatorNotAvailableError

        tps = [TopicPartition(topic, p) for p in range(partitions)]
        try:
            if group not in self._coordinator:  # one request per poll, not two
                self._coordinator[group] = await self.admin.find_coordinator(group)
            got = await self.admin.list_consumer_group_offsets(group, self._coordinator[group], partitions=tps)
        except (CoordinatorNotAvailableError, CoordinatorLoadInProgressError):
            return [0] * partitions  # a fresh broker has no offsets topic before the first group
        return [max(0, int(got[tp].offset)) if tp in got else 0 for tp in tps]

    async def group(self, group: str) -> tuple[str, int]:
        """(state, members) of a consumer group, e.g. ("Stable", 2)."""
        [resp] = await self.admin.describe_consumer_groups([group])
        err, _gid, state, _ptype, _proto, members, *_ = resp.groups[0]
        return (state if not err else f"error {err}"), len(members)

    async def send_ticks(self, topic: str, zones: tuple[str, ...], watermark_ns: int) -> None:
        """A watermark tick to every zone key, partitioned as the bridge's producer does it (by key)."""
        value = encode_tick(watermark_ns)
        futures = [await self.producer.send(topic, value=value, key=z.encode()) for z in zones]
        await asyncio.gather(*futures)

    async def delete_topics(self, names: list[str]) -> None:
        with suppress(Exception):
            existing = set(await self.admin.list_topics())
            doomed = [n for n in names if n in existing]
            if doomed:
                await self.admin.delete_topics(doomed)

    async def topics_starting(self, *prefixes: str) -> list[str]:
        return [t for t in await self.admin.list_topics() if t.startswith(prefixes)]


# -- one Kafka run -----------------------------------------------------------------------------------

BRIDGE_START = re.compile(r"bridge: MQTT \S+ -> Kafka")
BRIDGE_STATS = re.compile(r"bridge: (\d+) messages, (\d+) readings, (\d+) dead letters, (\d+) Kafka records, "
                          r"(\d+) ticks")
WORKER_STATS = re.compile(r"worker: (\d+) messages, (\d+) readings")
WORKER_GENERATION = re.compile(r"generation id (\d+) app consumers")
WORKER_READY = "Recovery]: Worker ready"


@dataclass
class BridgeState:
    started: float | None = None  # monotonic time of its "bridge: MQTT ... -> Kafka" line
    readings: int = 0
    records: int = 0
    ticks: int = 0
    dead_letters: int = 0
    reached: dict[int, float] = field(default_factory=dict)  # readings target -> first time reached
    targets: tuple[int, ...] = ()

    def on_line(self, t: float, line: str) -> None:
        if self.started is None and BRIDGE_START.search(line):
            self.started = t
        m = BRIDGE_STATS.search(line)
        if m:
            self.readings, self.dead_letters = int(m[2]), int(m[3])
            self.records, self.ticks = int(m[4]), int(m[5])
            for target in self.targets:
                if target not in self.reached and self.readings >= target:
                    self.reached[target] = t


@dataclass
class WorkerState:
    readings: int = 0
    messages: int = 0
    dead_letter_lines: int = 0
    generation: int = 0  # consumer-group generation of its latest assignment
    ready_generation: int = -1  # the generation it finished recovery (and its seek) for

    def on_line(self, _t: float, line: str) -> None:
        m = WORKER_STATS.search(line)
        if m:
            self.messages += int(m[1])
            self.readings += int(m[2])
        elif "dead letter:" in line:
            self.dead_letter_lines += 1
        elif WORKER_READY in line:
            self.ready_generation = self.generation
        else:
            g = WORKER_GENERATION.search(line)
            if g:
                self.generation = int(g[1])


@dataclass
class Ctx:
    """What every Kafka run shares."""

    kafka: Kafka
    mqtt_port: int
    catalog: Catalog
    catalog_csv: Path
    workdir: Path
    partitions: int
    procs: Procs
    extra_env: dict[str, str]
    sentinel: list[str]
    timeout_s: float
    runs: int = 0

    def new_run(self, label: str) -> tuple[str, Path]:
        self.runs += 1
        run_id = f"{label}-{self.runs}-{uuid.uuid4().hex[:8]}"
        rundir = self.workdir / run_id
        rundir.mkdir()
        return run_id, rundir

    def env(self, **overrides: str) -> dict[str, str]:
        # the caller's SENTINEL_* must not leak in (a SENTINEL_STORE=influx would change what is measured)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SENTINEL_")}
        env.update(SENTINEL_PUBLISH_ALERTS="false", SENTINEL_MQTT_PREFIX="sentinel", PYTHONUNBUFFERED="1")
        env.update(self.extra_env)
        env.update(overrides)  # the stats intervals the bench parses progress from
        return env

    def common(self, prefix: str) -> list[str]:
        return ["--catalog", str(self.catalog_csv), "--kafka", self.kafka.bootstrap, "--partitions",
                str(self.partitions), "--prefix", prefix]

    def start_worker(self, i: int, prefix: str, app_id: str, rundir: Path, *,
                     profile: Path | None = None) -> tuple[Proc, WorkerState]:
        state = WorkerState()
        head = ([sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "sentinel.cli"] if profile
                else self.sentinel)
        argv = [*head, "worker", *self.common(prefix), "--app-id", app_id, "--db", str(rundir / f"worker{i}.sqlite")]
        proc = Proc(f"worker {i + 1}", argv, env=self.env(SENTINEL_STATS_EVERY_S="1"), cwd=rundir,
                    log_path=rundir / f"worker{i}.log", on_line=state.on_line)
        return self.procs.add(proc), state

    def start_bridge(self, prefix: str, client_id: str, rundir: Path,
                     targets: tuple[int, ...]) -> tuple[Proc, BridgeState]:
        state = BridgeState(targets=targets)
        argv = [*self.sentinel, "bridge", *self.common(prefix), "--mqtt-host", "127.0.0.1", "--mqtt-port",
                str(self.mqtt_port), "--client-id", client_id]
        # stats after every poll round: the bench reads its progress from them
        proc = Proc("bridge", argv, env=self.env(SENTINEL_STATS_EVERY_S="0"), cwd=rundir,
                    log_path=rundir / "bridge.log", on_line=state.on_line)
        return self.procs.add(proc), state


async def wait_until(what: str, check: Callable[[], Any], procs: list[Proc], timeout: float,
                     every: float = 0.05) -> Any:
    """Poll `check` (sync or async) until it returns something truthy; fail fast if a process died."""
    deadline = time.monotonic() + timeout
    while True:
        for p in procs:
            p.check()
        got = check()
        if asyncio.iscoroutine(got):
            got = await got
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(every)


async def start_workers(ctx: Ctx, view: KafkaView, n: int, topics: Topics, app_id: str, rundir: Path,
                        profile: Path | None = None) -> tuple[list[Proc], list[WorkerState], float]:
    """Start n workers and return once they form a stable group and have processed a probe tick per zone."""
    t = time.monotonic()
    started = [ctx.start_worker(i, topics.prefix, app_id, rundir, profile=profile if i == 0 else None)
               for i in range(n)]
    workers = [p for p, _ in started]

    async def stable() -> bool:
        try:
            state, members = await view.group(app_id)
        except Exception:
            return False
        return state == "Stable" and members == n

    await wait_until(f"{n} worker(s) to join group {app_id}", stable, workers, ctx.timeout_s, every=0.1)
    # ...and to have finished recovery for that assignment. Records that land on a partition with no
    # committed offset between its assignment and Faust's "seek to committed offsets" can be skipped for
    # good (seen with two workers: the probe was never processed, yet its offsets got committed later).
    states = [s for _, s in started]
    await wait_until("the workers to finish recovery", lambda: len({s.generation for s in states}) == 1
                     and all(s.ready_generation == s.generation > 0 for s in states), workers, ctx.timeout_s)
    await view.send_ticks(topics.readings, ctx.catalog.zones, T0 - 60 * NS)
    probe = await view.end_offsets(topics.readings, ctx.partitions)

    async def probed() -> bool:
        done = await view.committed(app_id, topics.readings, ctx.partitions)
        return all(c >= e for c, e in zip(done, probe, strict=True))

    await wait_until("the workers to process the probe ticks", probed, workers, ctx.timeout_s, every=0.1)
    return workers, states, time.monotonic() - t


@dataclass
class DrainResult:
    workers: int
    bridge_s: float  # bridge start line -> every reading in Kafka
    end_to_end_s: float | None  # bridge start line -> group committed the log end (None: no workers)
    bridge_startup_s: float  # process launch -> start line (imports, catalog, topic check)
    worker_startup_s: float  # launch -> stable group and probe processed
    cpu_s: dict[str, float]
    worker_readings: list[int]
    records: int
    ticks: int
    topic_bytes: dict[str, int | None] = field(default_factory=dict)  # on disk, when the broker is ours
    evaluated_s: float | None = None  # bridge start line -> readings topic committed (before the sink is done)
    stored: dict[str, int] = field(default_factory=dict)  # what the workers' stores hold in the end


def stored(dbs: list[Path]) -> dict[str, int]:
    """Distinct readings, detections and alerts across SQLite stores (a zone's outputs go to one worker's)."""
    import sqlite3

    seen: dict[str, set[tuple]] = {"readings": set(), "detections": set(), "alerts": set()}
    queries = {"readings": "SELECT sensor_id, time_ns FROM readings",
               "detections": "SELECT rule_id, subject, time_ns, transition FROM detections",
               "alerts": "SELECT alert_id FROM alerts"}
    for db in dbs:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            for k, q in queries.items():
                seen[k].update(conn.execute(q).fetchall())
    return {k: len(v) for k, v in seen.items()}


async def drain_kafka(ctx: Ctx, n_workers: int, messages: list[tuple[str, bytes]], readings: int,
                      profile: Path | None = None) -> DrainResult:
    run_id, rundir = ctx.new_run(f"drain{n_workers}w")
    topics, app_id, client_id = Topics(f"bench-{run_id}"), f"bench-app-{run_id}", f"bench-bridge-{run_id}"
    try:
        async with KafkaView(ctx.kafka.bootstrap) as view:
            await ensure_topics(ctx.kafka.bootstrap, topics.all, ctx.partitions)
            await asyncio.to_thread(enqueue, ctx.mqtt_port, client_id, messages)
            workers, wstates, w_startup = [], [], 0.0
            if n_workers:
                workers, wstates, w_startup = await start_workers(ctx, view, n_workers, topics, app_id, rundir,
                                                                  profile)
            bridge, bstate = ctx.start_bridge(topics.prefix, client_id, rundir, (readings,))
            everyone = [bridge, *workers]
            await wait_until("the bridge to start", lambda: bstate.started, everyone, ctx.timeout_s)
            t0 = bstate.started
            assert t0 is not None
            cpu0 = {p.name: p.cpu() for p in everyone}
            kafka_cpu0 = cpu_seconds(ctx.kafka.pid())
            await wait_until("the bridge to send every reading to Kafka", lambda: readings in bstate.reached,
                             everyone, ctx.timeout_s, every=0.02)
            t_bridge = bstate.reached[readings]
            t_done = t_evaluated = None
            if n_workers:
                _, target = await view.caught_up(app_id, (topics.readings,), ctx.partitions)

                async def evaluated() -> bool:
                    return (await view.caught_up(app_id, (topics.readings,), ctx.partitions, target))[0]

                await wait_until("the workers to commit every reading", evaluated, everyone, ctx.timeout_s,
                                 every=0.05)
                t_evaluated = time.monotonic()
                # every output is in Kafka before its readings are committed; now the sink must store them
                _, outputs = await view.caught_up(app_id, topics.outputs, ctx.partitions)

                async def sunk() -> bool:
                    return (await view.caught_up(app_id, topics.outputs, ctx.partitions, outputs))[0]

                await wait_until("the sink to commit every output", sunk, everyone, ctx.timeout_s, every=0.05)
                t_done = time.monotonic()
            cpu = {p.name: round(p.cpu() - cpu0[p.name], 2) for p in everyone}
            cpu["kafka"] = round(cpu_seconds(ctx.kafka.pid()) - kafka_cpu0, 2) if ctx.kafka.pid() else 0.0
            if n_workers:  # their stats lines come every second: wait for the last one (per-worker shares)
                with suppress(TimeoutError):
                    await wait_until("the workers' stats", lambda: sum(w.readings for w in wstates) >= readings,
                                     everyone, 5.0, every=0.1)
            result = DrainResult(n_workers, t_bridge - t0, None if t_done is None else t_done - t0,
                                 t0 - bridge.launched, w_startup, cpu, [], bstate.records, bstate.ticks,
                                 evaluated_s=None if t_evaluated is None else t_evaluated - t0)
            ctx.procs.stop_all()
            result.worker_readings = [w.readings for w in wstates]
            result.stored = stored(sorted(rundir.glob("worker*.sqlite")))
            result.topic_bytes = {"readings": ctx.kafka.topic_bytes(topics.readings),
                                  "changelog": ctx.kafka.topic_bytes(changelog_topic(app_id))}
            for p in everyone:
                if p.errors:
                    say(f"{p.name} logged {len(p.errors)} error line(s), e.g. {p.errors[0][:200]} ({p.log_path})")
            await view.delete_topics([*topics.all, *await view.topics_starting(app_id)])
            return result
    except Exception:
        ctx.procs.dump_tails()
        raise
    finally:
        ctx.procs.stop_all()
        forget_session(ctx.mqtt_port, client_id)


# -- consumer lag under sustained load ---------------------------------------------------------------

class PacedPublisher(threading.Thread):
    """Publishes `messages` to MQTT at `rate` messages/s (QoS 1, acknowledged) for `seconds`."""

    def __init__(self, port: int, client_id: str, messages: list[tuple[str, bytes]], rate: float,
                 seconds: float) -> None:
        super().__init__(name="paced-publisher", daemon=True)
        self.port, self.client_id, self.messages, self.rate, self.seconds = port, client_id, messages, rate, seconds
        self.sent = 0
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.error: BaseException | None = None
        self.stop_event = threading.Event()

    def run(self) -> None:
        try:
            with MqttPublisher("127.0.0.1", self.port, client_id=self.client_id, max_inflight=500) as pub:
                self.started_at = t0 = time.monotonic()
                total = min(len(self.messages), int(self.rate * self.seconds))
                while self.sent < total and not self.stop_event.is_set():
                    due = min(total, int((time.monotonic() - t0) * self.rate))
                    if due > self.sent:
                        self.sent += pub.publish_many(self.messages[self.sent:due])
                    else:
                        time.sleep(0.01)
        except BaseException as exc:  # reported by the main thread
            self.error = exc
        finally:
            self.finished_at = time.monotonic()


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def slope(xs: list[float], ys: list[float]) -> float:
    if len(xs) < 3:
        return 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


async def sustained_lag(ctx: Ctx, rate: float, seconds: float, messages: list[tuple[str, bytes]],
                        sample_s: float = 0.5) -> dict[str, Any]:
    """Publish at `rate` readings/s through bridge + one worker; sample the consumer lag every `sample_s`."""
    run_id, rundir = ctx.new_run(f"lag{round(rate)}")
    topics, app_id, client_id = Topics(f"bench-{run_id}"), f"bench-app-{run_id}", f"bench-bridge-{run_id}"
    msg_rate = rate / ZONE_SIZE
    total = min(len(messages), int(msg_rate * seconds))
    try:
        async with KafkaView(ctx.kafka.bootstrap) as view:
            await ensure_topics(ctx.kafka.bootstrap, topics.all, ctx.partitions)
            await asyncio.to_thread(enqueue, ctx.mqtt_port, client_id, [])  # the session exists: nothing lost
            workers, _, _ = await start_workers(ctx, view, 1, topics, app_id, rundir)
            bridge, bstate = ctx.start_bridge(topics.prefix, client_id, rundir, ())
            everyone = [bridge, *workers]
            await wait_until("the bridge to start", lambda: bstate.started, everyone, ctx.timeout_s)
            await asyncio.sleep(1.0)  # its Kafka producer and MQTT subscription are up
            cpu0 = {p.name: p.cpu() for p in everyone}
            kafka_cpu0 = cpu_seconds(ctx.kafka.pid())
            t_cpu0 = time.monotonic()
            pub = PacedPublisher(ctx.mqtt_port, f"{client_id}-pub", messages[:total], msg_rate, seconds)
            pub.start()
            history: list[tuple[float, list[int]]] = []  # (time, log-end offsets)
            samples: list[dict[str, float]] = []
            t_pub_done = t_drained = None
            next_sample = time.monotonic()
            deadline = time.monotonic() + seconds + ctx.timeout_s
            while True:
                for p in everyone:
                    p.check()
                if pub.error is not None:
                    raise RuntimeError(f"publisher failed: {pub.error!r}")
                now = time.monotonic()
                ends = await view.end_offsets(topics.readings, ctx.partitions)
                history.append((now, ends))
                if now >= next_sample:
                    next_sample += sample_s
                    done = await view.committed(app_id, topics.readings, ctx.partitions)
                    lag_records = sum(max(0, e - c) for e, c in zip(ends, done, strict=True))
                    lag_s = 0.0
                    for p_, c in enumerate(done):
                        if ends[p_] > c:  # when was the oldest uncommitted record of this partition appended?
                            t_app = next((t for t, e in history if e[p_] > c), now)
                            lag_s = max(lag_s, now - t_app)
                    published = pub.sent * ZONE_SIZE
                    samples.append({"t": now - (pub.started_at or now), "lag_records": lag_records, "lag_s": lag_s,
                                    "mqtt_backlog": max(0, published - bstate.readings),
                                    "publishing": float(pub.is_alive())})
                    if t_pub_done is None and not pub.is_alive():
                        t_pub_done = pub.finished_at
                    if (t_pub_done is not None and lag_records == 0 and bstate.readings >= published):
                        t_drained = now
                        break
                if now > deadline:
                    say("lag run: not drained before the deadline")
                    break
                await asyncio.sleep(0.1)
            pub.stop_event.set()
            pub.join(10)
            cpu = {p.name: round(p.cpu() - cpu0[p.name], 2) for p in everyone}
            cpu["kafka"] = round(cpu_seconds(ctx.kafka.pid()) - kafka_cpu0, 2) if ctx.kafka.pid() else 0.0
            cpu_wall = time.monotonic() - t_cpu0
            ctx.procs.stop_all()
            topic_bytes = {"readings": ctx.kafka.topic_bytes(topics.readings),
                           "changelog": ctx.kafka.topic_bytes(changelog_topic(app_id))}
            await view.delete_topics([*topics.all, *await view.topics_starting(app_id)])
    except Exception:
        ctx.procs.dump_tails()
        raise
    finally:
        ctx.procs.stop_all()
        forget_session(ctx.mqtt_port, client_id)
    pub_s = max(1e-9, (pub.finished_at or time.monotonic()) - (pub.started_at or 0.0))
    # readings per readings-record: the bridge sends one record per zone and poll round
    per_record = bstate.readings / bstate.records if bstate.records else float(ZONE_SIZE)
    during = [s for s in samples if s["publishing"]]
    warm = [s for s in during if s["t"] >= 2.0] or during  # the first 2 s: bridge and worker warming up
    lag_rec = [s["lag_records"] for s in during]
    lag_s = [s["lag_s"] for s in during]
    backlog = [s["mqtt_backlog"] for s in during]
    # end-to-end lag in seconds: the consumer's plus the MQTT backlog in front of the bridge
    total_s = [s["lag_s"] + s["mqtt_backlog"] / max(rate, 1.0) for s in warm]
    thirds = max(1, len(warm) // 3)
    growth = statistics.median(total_s[-thirds:]) - statistics.median(total_s[:thirds]) if warm else 0.0
    trend = slope([s["t"] for s in warm], total_s)
    drain_s = None if t_drained is None or t_pub_done is None else t_drained - t_pub_done
    return {
        "target_readings_per_s": round(rate), "published_readings_per_s": round(pub.sent * ZONE_SIZE / pub_s),
        "seconds": round(pub_s, 1), "samples": len(during), "readings_per_record": round(per_record, 1),
        "lag_records_median": statistics.median(lag_rec) if lag_rec else 0, "lag_records_p90": pct(lag_rec, 0.9),
        "lag_records_max": max(lag_rec, default=0),
        "lag_readings_median": round(statistics.median(lag_rec) * per_record) if lag_rec else 0,
        "lag_readings_p90": round(pct(lag_rec, 0.9) * per_record),
        "lag_readings_max": round(max(lag_rec, default=0) * per_record),
        "lag_s_median": round(statistics.median(lag_s), 2) if lag_s else 0.0, "lag_s_p90": round(pct(lag_s, 0.9), 2),
        "lag_s_max": round(max(lag_s, default=0.0), 2),
        "mqtt_backlog_readings_median": round(statistics.median(backlog)) if backlog else 0,
        "mqtt_backlog_readings_max": round(max(backlog, default=0)),
        "lag_trend_s_per_s": round(trend, 3), "drain_after_stop_s": None if drain_s is None else round(drain_s, 2),
        "lag_growth_s": round(growth, 2),
        # bounded: drained once publishing stopped, and the median lag of the last third of the run exceeds
        # that of the first third by less than Faust's 1 s commit interval. A consumer short of the rate by a
        # fraction f falls behind by f s per s: over 30 s that shows from f ~ 5 %. Medians, not the slope,
        # so that one burst (the stuck-sensor alerts) does not decide it.
        "bounded": bool(drain_s is not None and growth < 1.0), "cpu_s": cpu,
        "cpu_wall_s": round(cpu_wall, 1),
        "topic_bytes": topic_bytes,
        "timeline": [[round(s["t"], 1), s["lag_records"], round(s["lag_s"], 2), round(s["mqtt_backlog"])]
                     for s in samples],  # [s since publishing began, lag records, lag s, MQTT backlog readings]
    }


# -- main --------------------------------------------------------------------------------------------

def sentinel_command() -> list[str]:
    script = Path(sys.executable).with_name("sentinel")
    if script.exists():
        return [str(script)]
    found = shutil.which("sentinel")
    return [found] if found else [sys.executable, "-m", "sentinel.cli"]


_interrupted = False


def _interrupt(signum: int, _frame: object) -> None:
    # our own handler for SIGINT too: asyncio.run's would only cancel the running task, and a cancellation
    # that lands inside an aiokafka call can be swallowed there, so Ctrl-C went unnoticed. Only the first
    # signal interrupts: a second one must not cut the clean-up short (it is bounded by timeouts).
    global _interrupted
    if _interrupted:
        say("still stopping processes and servers; please wait")
        return
    _interrupted = True
    raise KeyboardInterrupt(signal.Signals(signum).name)


def fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sensors", type=int, default=2000, help="sensors (100 per zone)")
    ap.add_argument("--steps", type=int, default=150, help="readings per sensor in the backlog")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--partitions", type=int, default=8, help="partitions of every topic")
    ap.add_argument("--workers", type=int, default=2, help="the largest worker count measured (1..N)")
    ap.add_argument("--lag-seconds", type=float, default=30.0, help="publishing time per sustained-load run "
                    "(0 skips the lag runs)")
    ap.add_argument("--lag-fractions", default="0.5,0.9",
                    help="sustained-load rates as fractions of the one-worker rate")
    ap.add_argument("--kafka", help="use this running Kafka (host:port) instead of starting one")
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds any single wait may take")
    ap.add_argument("--profile-worker", type=Path, help="after the measured runs, one more 1-worker drain with "
                    "the worker under cProfile (main thread only), written to this file")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (bridge and worker logs of every run)")
    ap.add_argument("--env", action="append", default=[], metavar="SENTINEL_X=Y",
                    help="extra environment for bridge and workers (e.g. SENTINEL_WORKER_BATCH_MAX=2000)")
    args = ap.parse_args(argv)
    extra_env = dict(e.split("=", 1) for e in args.env)
    fractions = [float(f) for f in args.lag_fractions.split(",") if f.strip()] if args.lag_seconds > 0 else []
    worker_counts = list(range(1, max(1, args.workers) + 1))

    # MqttPublisher.stop() logs a normal disconnect as a warning (ingest/mqtt_publish.py): not news here
    logging.getLogger("ingest.mqtt_publish").setLevel(logging.ERROR)
    old_handlers = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    t_begin = time.monotonic()
    cat = make_catalog(args.sensors)
    messages = make_messages(cat, args.steps)
    readings = args.sensors * args.steps
    cores = os.cpu_count() or 1
    say(f"{readings:,} readings in {len(messages):,} messages of {ZONE_SIZE} ({args.sensors} sensors, "
        f"{len(cat.zones)} zones, {args.steps} steps); {args.partitions} partitions; {cores} CPU cores")
    single: list[float] = []
    single_cpu: list[float] = []
    single_stored: dict[str, int] = {}
    bridge: list[float] = []
    e2e: dict[int, list[float]] = {n: [] for n in worker_counts}
    details: dict[str, list[dict[str, Any]]] = {"bridge": [], **{f"{n}w": [] for n in worker_counts}}
    lag: list[dict[str, Any]] = []
    procs = Procs()
    failed = False

    def remove_workdir(path: Path) -> None:
        if args.keep or failed:
            say(f"kept the work dir (process logs per run): {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)

    try:
        with ExitStack() as stack:
            tmp = Path(tempfile.mkdtemp(prefix="bench-kafka-"))
            stack.callback(remove_workdir, tmp)  # last: after Kafka and Mosquitto have stopped
            failed = True  # until the end of this block: a failed or interrupted run keeps its logs
            kafka = stack.enter_context(kafka_broker(tmp, args.kafka))
            port = stack.enter_context(mosquitto(tmp))
            stack.callback(procs.stop_all)
            csv = tmp / "catalog.csv"
            csv.write_text(cat.to_csv())
            ctx = Ctx(kafka, port, cat, csv, tmp, args.partitions, procs, extra_env, sentinel_command(), args.timeout)
            say(f"Mosquitto on 127.0.0.1:{port}, Kafka on {kafka.bootstrap}; workdir {tmp}")
            for r in range(args.repeats):
                cid = f"bench-single-{r}-{uuid.uuid4().hex[:6]}"
                enqueue(port, cid, messages)
                cpu0 = time.process_time()
                single.append(readings / drain_pipeline(port, cid, cat, readings, tmp))
                single_cpu.append(time.process_time() - cpu0)
                forget_session(port, cid)
                single_stored = stored([tmp / f"{cid}.sqlite"])
                say(f"repeat {r + 1}/{args.repeats}: single process {single[-1]:,.0f} readings/s "
                    f"(CPU {single_cpu[-1]:.2f} s)")
                res = asyncio.run(drain_kafka(ctx, 0, messages, readings))
                bridge.append(readings / res.bridge_s)
                details["bridge"].append({"bridge_s": round(res.bridge_s, 2), "cpu_s": res.cpu_s})
                say(f"repeat {r + 1}/{args.repeats}: bridge alone {bridge[-1]:,.0f} readings/s "
                    f"({res.records} records, start-up {res.bridge_startup_s:.1f} s, CPU s {res.cpu_s})")
                for n in worker_counts:
                    res = asyncio.run(drain_kafka(ctx, n, messages, readings))
                    assert res.end_to_end_s is not None
                    e2e[n].append(readings / res.end_to_end_s)
                    if res.stored != single_stored:
                        say(f"  NOTE: {n} worker(s) stored {res.stored}, the single process {single_stored}")
                    details[f"{n}w"].append({"end_to_end_s": round(res.end_to_end_s, 2),
                                             "evaluated_s": round(res.evaluated_s or 0.0, 2), "stored": res.stored,
                                             "bridge_s": round(res.bridge_s, 2),
                                             "worker_startup_s": round(res.worker_startup_s, 2),
                                             "worker_readings": res.worker_readings, "cpu_s": res.cpu_s,
                                             "topic_bytes": res.topic_bytes})
                    say(f"repeat {r + 1}/{args.repeats}: Kafka, {n} worker(s): {e2e[n][-1]:,.0f} readings/s end to "
                        f"end ({res.end_to_end_s:.2f} s; bridge done at {res.bridge_s:.2f} s, readings committed at "
                        f"{res.evaluated_s or 0.0:.2f} s; stored {res.stored}; readings per worker "
                        f"{res.worker_readings}; worker start-up {res.worker_startup_s:.1f} s; CPU s {res.cpu_s}; "
                        f"bytes on disk {res.topic_bytes})")
            one = statistics.median(e2e[1])
            for frac in fractions:
                rate = frac * one
                say(f"sustained load: {rate:,.0f} readings/s ({frac:.0%} of one worker) for {args.lag_seconds:.0f} s")
                need = math.ceil(rate / ZONE_SIZE * args.lag_seconds)
                live = make_messages(cat, math.ceil(need * ZONE_SIZE / args.sensors) + 1)
                res_lag = asyncio.run(sustained_lag(ctx, rate, args.lag_seconds, live))
                res_lag["fraction"] = frac
                lag.append(res_lag)
                say(f"  lag records median {res_lag['lag_records_median']}, p90 {res_lag['lag_records_p90']}, "
                    f"max {res_lag['lag_records_max']} (~{res_lag['lag_readings_max']:,} readings, "
                    f"{res_lag['lag_s_max']:.1f} s); MQTT backlog max {res_lag['mqtt_backlog_readings_max']:,}; "
                    f"trend {res_lag['lag_trend_s_per_s']} s/s; drained {res_lag['drain_after_stop_s']} s after "
                    f"publishing stopped; bounded: {res_lag['bounded']}")
            if args.profile_worker:
                prof = args.profile_worker.resolve()
                say(f"profiling one worker (cProfile) -> {prof}")
                res = asyncio.run(drain_kafka(ctx, 1, messages, readings, profile=prof))
                say(f"  under cProfile: {readings / (res.end_to_end_s or 1):,.0f} readings/s end to end")
            failed = False
    except KeyboardInterrupt:
        say("interrupted: stopping every process and server")
        raise
    finally:
        procs.stop_all()
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)

    s, b = statistics.median(single), statistics.median(bridge)
    w = {n: statistics.median(v) for n, v in e2e.items()}
    elapsed = time.monotonic() - t_begin
    print(f"{readings:,} readings ({len(messages):,} MQTT messages of {ZONE_SIZE}, {len(cat.zones)} zones, "
          f"{args.partitions} partitions); medians of {args.repeats}; this machine has {cores} CPU cores, shared "
          f"by Mosquitto, Kafka, the bridge and every worker")
    print(f"  single process (decode + rules + SQLite + ack)  {fmt(s)} readings/s")
    print(f"  bridge alone (MQTT -> Kafka)                    {fmt(b)} readings/s  ({b / s:.2f}x single)")
    for n in worker_counts:
        print(f"  Kafka, bridge + {n} worker(s), end to end        {fmt(w[n])} readings/s  ({w[n] / s:.2f}x single)")
    ratios = {"ratio_1_worker_vs_single": round(w[1] / s, 3)}
    if 2 in w:
        ratios["ratio_2_workers_vs_single"] = round(w[2] / s, 3)
        ratios["ratio_2_vs_1_worker"] = round(w[2] / w[1], 3)
        print(f"  ratios: 1 worker / single {w[1] / s:.2f}, 2 workers / single {w[2] / s:.2f}, "
              f"2 workers / 1 worker {w[2] / w[1]:.2f}"
              + ("  (2 cores: a second worker competes with everything else for the same CPUs)" if cores <= 2 else ""))
    # where the CPU goes: µs of CPU time per reading, per process (medians over repeats)
    def us(runs: list[dict[str, Any]], pick: Callable[[dict[str, float]], float]) -> float:
        return statistics.median(pick(r["cpu_s"]) for r in runs) / readings * 1e6

    cpu_us: dict[str, Any] = {"single": round(statistics.median(single_cpu) / readings * 1e6, 2),
                              "bridge_alone": round(us(details["bridge"], lambda c: c["bridge"]), 2)}
    for n in worker_counts:
        runs = details[f"{n}w"]
        cpu_us[f"{n}w"] = {"bridge": round(us(runs, lambda c: c["bridge"]), 2),
                           "workers": round(us(runs, lambda c: sum(v for k, v in c.items() if k.startswith("worker"))),
                                            2),
                           "kafka": round(us(runs, lambda c: c.get("kafka", 0.0)), 2)}
    print(f"  CPU per reading: single process {cpu_us['single']} µs; bridge alone {cpu_us['bridge_alone']} µs; "
          + "; ".join(f"{n} worker(s): bridge {cpu_us[f'{n}w']['bridge']} + worker(s) {cpu_us[f'{n}w']['workers']} "
                      f"+ Kafka broker {cpu_us[f'{n}w']['kafka']} µs" for n in worker_counts))
    changelog = [r["topic_bytes"].get("changelog") for r in details["1w"]]
    if changelog and all(c is not None for c in changelog):
        readings_b = statistics.median(r["topic_bytes"]["readings"] for r in details["1w"])
        print(f"  Kafka bytes on disk per reading (1 worker): readings topic {readings_b / readings:.1f}, "
              f"zone-state changelog {statistics.median(changelog) / readings:.1f}")
    same = all(r["stored"] == single_stored for n in worker_counts for r in details[f"{n}w"])
    print(f"  stored in the end: single process {single_stored}; Kafka runs "
          + ("the same in every run" if same else
             "; ".join(f"{n} worker(s) {[r['stored'] for r in details[f'{n}w']]}" for n in worker_counts)))
    if 2 in w:
        print(f"  readings per worker with 2 workers: {[r['worker_readings'] for r in details['2w']]} "
              f"({len(cat.zones)} zones on {args.partitions} partitions)")
    for res_lag in lag:
        print(f"  sustained {res_lag['fraction']:.0%} of one worker ({res_lag['published_readings_per_s']:,} "
              f"readings/s for {res_lag['seconds']} s): consumer lag median/p90/max {res_lag['lag_records_median']}/"
              f"{res_lag['lag_records_p90']}/{res_lag['lag_records_max']} records "
              f"(~{res_lag['lag_readings_median']:,}/{res_lag['lag_readings_p90']:,}/{res_lag['lag_readings_max']:,} "
              f"readings, {res_lag['lag_s_median']}/{res_lag['lag_s_p90']}/{res_lag['lag_s_max']} s); "
              f"{'bounded' if res_lag['bounded'] else 'NOT bounded'} (median lag last third - first third "
              f"{res_lag['lag_growth_s']} s, trend {res_lag['lag_trend_s_per_s']} s/s, "
              f"drained {res_lag['drain_after_stop_s']} s after publishing stopped)")
        secs = max(1e-9, res_lag["cpu_wall_s"])
        tb = res_lag["topic_bytes"]
        print(f"      CPU share of one core over {secs:.0f} s: "
              + ", ".join(f"{k} {v / secs:.0%}" for k, v in res_lag["cpu_s"].items())
              + ("" if tb.get("changelog") is None else
                 f"; Kafka bytes written: readings topic {tb['readings'] / 1e6:.1f} MB, "
                 f"zone-state changelog {tb['changelog'] / 1e6:.1f} MB"))
    print(f"  ({elapsed:.0f} s in all)")
    out = {"bench": "kafka_pipeline", "readings": readings, "messages": len(messages),
           "readings_per_message": ZONE_SIZE, "sensors": args.sensors, "zones": len(cat.zones),
           "partitions": args.partitions, "repeats": args.repeats, "cpu_cores": cores,
           "single_readings_per_s": round(s), "bridge_readings_per_s": round(b),
           **{f"kafka_{n}_worker{'s' if n > 1 else ''}_readings_per_s": round(v) for n, v in w.items()},
           **ratios, "cpu_us_per_reading": cpu_us, "single_stored": single_stored, "runs": details, "lag": lag,
           "elapsed_s": round(elapsed, 1)}
    print(json.dumps(out), flush=True)
    return out


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
