"""MQTT through Mosquitto into the engine and the SQLite store, against a bare paho subscriber.

Both consumers drain the same backlog: batch payloads are queued in Mosquitto for a persistent
session while the consumer is away, then the consumer connects and the clock runs until every
message is consumed (bare: counted; pipeline: decoded, evaluated with the default rules, stored, and
acknowledged). That measures what each consumer sustains, not how fast the publisher is.
Prints medians over repeats, the ratio, and ends with one JSON line.

    python -m bench.mqtt_pipeline [--sensors 2000] [--steps 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as mqtt

from ingest.mqtt_publish import MqttPublisher
from ingest.topics import TopicScheme
from sentinel.catalog import Catalog, Sensor
from sentinel.readings import iso
from sentinel.settings import Settings
from sentinel.wiring import build_live

T0 = 1_735_689_600 * 10**9
ZONE_SIZE = 100


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def mosquitto(workdir: Path) -> Iterator[int]:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    conf = workdir / "bench.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    "max_queued_messages 1000000\nmax_queued_bytes 0\nmax_inflight_messages 1000\n")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def make_catalog(n: int) -> Catalog:
    sensors = []
    for i in range(n):
        zone = f"DMA{i // ZONE_SIZE:03d}"
        if i % ZONE_SIZE == 0:
            sensors.append(Sensor(sensor_id=f"F{i:05d}", network="water", zone=zone, quantity="flow", unit="m3/h",
                                  role="inlet", interval_s=60))
        else:
            sensors.append(Sensor(sensor_id=f"P{i:05d}", network="water", zone=zone, quantity="pressure",
                                  unit="kPa", interval_s=60))
    return Catalog.from_sensors(sensors)


def make_messages(cat: Catalog, steps: int) -> list[tuple[str, bytes]]:
    scheme = TopicScheme()
    out = []
    for k in range(steps):
        t = iso(T0 + k * 60 * 10**9)
        for z0 in range(0, len(cat), ZONE_SIZE):
            zone_sensors = cat.sensors[z0:z0 + ZONE_SIZE]
            readings = [{"sensor_id": s.sensor_id, "time": t,
                         "value": round((120.0 if s.quantity == "flow" else 350.0) + (j % 7) * 0.3, 2)}
                        for j, s in enumerate(zone_sensors)]
            out.append((scheme.batch_topic("water", zone_sensors[0].zone),
                        json.dumps({"readings": readings}, separators=(",", ":")).encode()))
    return out


def enqueue(port: int, client_id: str, messages: list[tuple[str, bytes]]) -> None:
    """Register a persistent session, go away, and publish the backlog into it."""
    sub = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                      clean_session=False)
    done = threading.Event()
    sub.on_subscribe = lambda *_: done.set()
    sub.connect("127.0.0.1", port)
    sub.subscribe(TopicScheme().readings_filter(), qos=1)
    sub.loop_start()
    assert done.wait(5), "subscription not confirmed"
    sub.disconnect()
    sub.loop_stop()
    with MqttPublisher("127.0.0.1", port, client_id=f"{client_id}-pub", max_inflight=500) as pub:
        pub.publish_many(messages)


def drain_bare(port: int, client_id: str, expected: int) -> float:
    count = 0
    first = threading.Event()
    done = threading.Event()
    t_start = [0.0]

    def on_message(_c: mqtt.Client, _u: object, _m: mqtt.MQTTMessage) -> None:
        nonlocal count
        if count == 0:
            t_start[0] = time.perf_counter()
            first.set()
        count += 1
        if count >= expected:
            done.set()

    c = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                    clean_session=False)
    c.on_message = on_message
    t0 = time.perf_counter()
    c.connect("127.0.0.1", port)
    c.loop_start()
    assert done.wait(300), f"bare subscriber got {count}/{expected}"
    elapsed = time.perf_counter() - t0
    c.disconnect()
    c.loop_stop()
    return elapsed


def drain_pipeline(port: int, client_id: str, cat: Catalog, expected_readings: int, workdir: Path) -> float:
    db = workdir / f"{client_id}.sqlite"
    settings = Settings(db=db, mqtt_host="127.0.0.1", mqtt_port=port, mqtt_client_id=client_id,
                        publish_alerts=False, stats_every_s=3600, poll_timeout_s=0.05)
    app = build_live(settings, cat, console=open("/dev/null", "w"))  # noqa: SIM115 - closed with the app
    counters = app.runner.pipeline.counters
    t0 = time.perf_counter()
    app.runner.source.start()
    app.runner.run(until=lambda: counters.readings_in >= expected_readings or time.perf_counter() - t0 > 300)
    elapsed = time.perf_counter() - t0
    app.close()
    assert counters.readings_in >= expected_readings, f"pipeline got {counters.readings_in}/{expected_readings}"
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sensors", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    cat = make_catalog(args.sensors)
    messages = make_messages(cat, args.steps)
    readings = args.sensors * args.steps
    bare, pipe = [], []
    with tempfile.TemporaryDirectory() as tmp, mosquitto(Path(tmp)) as port:
        for r in range(args.repeats):
            cid = f"bench-bare-{r}"
            enqueue(port, cid, messages)
            bare.append(readings / drain_bare(port, cid, len(messages)))
            cid = f"bench-pipe-{r}"
            enqueue(port, cid, messages)
            pipe.append(readings / drain_pipeline(port, cid, cat, readings, Path(tmp)))
            print(f"repeat {r + 1}/{args.repeats}: bare subscriber {bare[-1]:,.0f} readings/s, "
                  f"pipeline {pipe[-1]:,.0f} readings/s", flush=True)
    b, p = statistics.median(bare), statistics.median(pipe)
    print(f"{len(messages)} messages of {ZONE_SIZE} readings; median bare {b:,.0f}/s, pipeline {p:,.0f}/s "
          f"(decode + default rules + SQLite + ack), ratio {p / b:.2f}")
    print(json.dumps({"bench": "mqtt_pipeline", "messages": len(messages), "readings": readings,
                      "readings_per_message": ZONE_SIZE, "bare_readings_per_s": round(b),
                      "pipeline_readings_per_s": round(p), "ratio": round(p / b, 3)}))


if __name__ == "__main__":
    main()
