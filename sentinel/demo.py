"""`sentinel demo`: the whole path on one machine in under a minute, with nothing installed by hand.

A simulated night in one water district is published over MQTT (Mosquitto if installed or given,
else an embedded broker), the live processor detects the burst injected ten minutes in, alerts go
to the console and the MQTT alert topic, and everything lands in a SQLite file you can inspect.
"""

from __future__ import annotations

import math
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from sentinel.embedded_broker import EmbeddedBroker, free_port
from sentinel.readings import iso
from sentinel.settings import Settings
from sentinel.stores.sqlite import SQLiteStore
from sentinel.wiring import build_live
from simulators.publish import PublishProgress, publish
from simulators.scenario import demo_scenario
from simulators.synthetic import generate


@dataclass
class Broker:
    host: str
    port: int
    kind: str


def _mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)


def _start_mosquitto(binary: str, workdir: Path, stack: ExitStack) -> Broker:
    port = free_port()
    conf = workdir / "mosquitto-demo.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    "max_queued_messages 100000\nmax_inflight_messages 1000\n"
                    f"log_dest file {workdir / 'mosquitto-demo.log'}\n")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stack.callback(lambda: (proc.terminate(), proc.wait(10)))
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return Broker("127.0.0.1", port, "mosquitto")
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not start; see {workdir / 'mosquitto-demo.log'}") from None
            time.sleep(0.05)


def choose_broker(mqtt: str | None, embedded: bool, workdir: Path, stack: ExitStack) -> Broker:
    if mqtt:
        host, _, port = mqtt.rpartition(":")
        return Broker(host or "127.0.0.1", int(port), "given")
    binary = None if embedded else _mosquitto_binary()
    if binary:
        return _start_mosquitto(binary, workdir, stack)
    broker = stack.enter_context(EmbeddedBroker())
    return Broker(broker.host, broker.port, "embedded (amqtt)")


def run_demo(*, workdir: Path | None = None, mqtt: str | None = None, embedded: bool = False, seed: int = 0,
             speed: float = 120.0, timeout_s: float = 120.0, out: TextIO = sys.stdout,
             processor_auth: tuple[str, str] | None = None, device_auth: tuple[str, str] | None = None) -> int:
    """Returns 0 once the injected burst has become an alert. The auth pairs are (user, password) for a
    given broker with ACLs: the processor reads readings and writes alerts, the device writes readings."""
    workdir = workdir or Path(tempfile.mkdtemp(prefix="sentinel-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    result = generate(demo_scenario(seed=seed))
    catalog = result.sensor_catalog()
    (workdir / "catalog.csv").write_text(catalog.to_csv())
    db = workdir / "sentinel.sqlite"
    for stale in workdir.glob("sentinel.sqlite*"):
        stale.unlink()
    with ExitStack() as stack:
        broker = choose_broker(mqtt, embedded, workdir, stack)
        print(f"管网哨兵 Lifeline Sentinel demo: {len(catalog)} sensors in water/DMA1, broker {broker.kind} at "
              f"{broker.host}:{broker.port}, store {db}", file=out)
        for ev in result.events:
            print(f"  injected (hidden from the engine): {ev.kind} in {ev.network}/{ev.zone} "
                  f"{(ev.start_ns - result.readings.time_ns.min()) / 60e9:.0f} min into the data", file=out)
        user, password = processor_auth or (None, None)
        settings = Settings(db=db, mqtt_host=broker.host, mqtt_port=broker.port, mqtt_username=user,
                            mqtt_password=password,
                            mqtt_client_id=f"sentinel-demo-{int(time.time())}", resolve_after_s=300,
                            stats_every_s=3600, poll_timeout_s=0.1,
                            max_future_s=math.inf)  # the demo plays its data faster than the clock
        app = build_live(settings, catalog, console=out)
        stack.callback(app.close)
        app.runner.source.start()
        if not app.runner.source.wait_ready(10):
            print("error: could not subscribe to the broker", file=sys.stderr)
            return 2
        def show(p: PublishProgress) -> None:
            print(f"  simulator: {p.readings_sent}/{p.readings_total} readings published", file=out)

        sent: list[PublishProgress] = []
        failed: list[BaseException] = []

        def simulate() -> None:
            try:
                sent.append(publish(result, broker.host, broker.port, speed=speed, shift_to_now=True,
                                    client_id=f"sentinel-demo-sim-{int(time.time())}", progress=show,
                                    username=device_auth[0] if device_auth else None,
                                    password=device_auth[1] if device_auth else None))
            except BaseException as exc:  # reported below; the processor must still stop
                failed.append(exc)

        simulator = threading.Thread(target=simulate, name="demo-simulator", daemon=True)
        simulator.start()
        deadline = time.monotonic() + timeout_s
        counters = app.runner.pipeline.counters

        def finished() -> bool:
            if failed or time.monotonic() > deadline:
                return True
            seen = counters.readings_in + sum(counters.dead_letters.values())
            return bool(sent) and seen >= sent[0].readings_sent

        app.runner.run(until=finished)  # the processor runs here; the simulator publishes beside it
        simulator.join(10)
        if failed:
            print(f"error: the simulator could not publish: {failed[0]}", file=sys.stderr)
            return 2
        counters = app.runner.pipeline.counters.as_dict()
    with SQLiteStore(db, catalog) as store:
        alerts = store.alerts()
        counts = store.counts()
    print(f"\nprocessed {counters['accepted']} readings, {counters['dead_letters_total']} dead letters; "
          f"stored {counts}", file=out)
    for a in alerts:
        print(f"  alert {a.alert_id} [{a.severity.label} {a.severity.grade_zh}] {a.network}/{a.zone} {a.subject} "
              f"{a.rule_id} since {iso(a.started_ns)} ({a.state}): {a.message}", file=out)
    if not alerts:
        print("no alert was raised: the injected burst went undetected", file=out)
        return 1
    print(f"\nInspect: sentinel alerts --db {db} --state all; sentinel dead-letters --db {db}", file=out)
    return 0
