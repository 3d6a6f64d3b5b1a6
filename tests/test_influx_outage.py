"""Nothing lost, nothing doubled: InfluxDB stopped mid-stream, the processor killed with points spooled,
and an overloaded server answering 429/503 (through a fault-injecting proxy in front of the real one)."""

from __future__ import annotations

import http.server
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from rules.loader import load_rules
from sentinel.pipeline import Pipeline
from simulators import default_scenario, generate
from tests.conftest_influx import (
    InfluxServer,
    assert_same_readings,
    free_port,
    points_per_sensor,
    read_back,
    sent_per_sensor,
    store_for,
)

REPO = Path(__file__).resolve().parents[1]
SEED = 5


@pytest.fixture(scope="module")
def sim():
    result = generate(default_scenario(seed=SEED, days=1))
    return result.sensor_catalog(), result.to_batch()


def measurement_count(influxdb: InfluxServer, bucket: str, measurement: str, field: str) -> int:
    recs = influxdb.query(f'from(bucket: "{bucket}") |> range(start: 0) |> filter(fn: (r) => r._measurement == '
                          f'"{measurement}" and r._field == "{field}") |> group() |> count()')
    return int(recs[0].get_value()) if recs else 0


def test_influxdb_stopped_mid_stream_every_point_arrives_exactly_once(influxdb: InfluxServer, influx_bucket: str,
                                                                      sim, tmp_path: Path) -> None:
    catalog, batch = sim
    parts = batch.split(1500)
    third = len(parts) // 3
    store = store_for(influxdb, influx_bucket, catalog, tmp_path, batch_size=1000, flush_interval_s=0,
                      retry_budget_s=1.0)
    pipeline = Pipeline(catalog, load_rules(None), store=store)
    for p in parts[:third]:
        pipeline.process(p)
    assert store.stats()["spooled"] == 0
    influxdb.stop()
    try:
        slowest = 0.0
        for p in parts[third:2 * third]:
            t = time.monotonic()
            pipeline.process(p)  # no exception, and no long wait: the spool takes it
            slowest = max(slowest, time.monotonic() - t)
        stats = store.stats()
        assert stats["state"] == "down" and stats["spooled"] >= sum(len(p) for p in parts[third:2 * third])
        assert slowest < 1.0 + 1.5, f"a write blocked {slowest:.1f} s with InfluxDB down"
    finally:
        influxdb.start()
    for p in parts[2 * third:]:
        pipeline.process(p)
    assert store.drain(timeout_s=30)
    pipeline.close()

    stats = store.stats()
    assert stats["drained"] > 0 and stats["spool_segments"] == 0 and stats["rejected"] == 0
    assert points_per_sensor(influxdb, influx_bucket) == sent_per_sensor(catalog, batch)  # none twice, none lost
    assert_same_readings(read_back(influxdb, influx_bucket, catalog), batch)  # and every value is the sent one
    c = pipeline.counters
    assert measurement_count(influxdb, influx_bucket, "detections", "severity") == c.detections > 0
    assert measurement_count(influxdb, influx_bucket, "alerts", "state") == c.alert_changes > 0


KILLED_PROCESSOR = """
import json, os, signal, sys
from rules.loader import load_rules
from sentinel.pipeline import Pipeline
from sentinel.stores.influx import InfluxStore
from simulators import default_scenario, generate

url, bucket, token, spool = sys.argv[1:5]
result = generate(default_scenario(seed=int(sys.argv[5]), days=1))
catalog, batch = result.sensor_catalog(), result.to_batch()
store = InfluxStore(url, "sentinel", bucket, token, catalog, spool_dir=spool, flush_interval_s=0,
                    retry_budget_s=0.3)
pipeline = Pipeline(catalog, load_rules(None), store=store)
for part in batch.split(2000):
    pipeline.process(part)  # returned: durable in the spool, as a live runner would now acknowledge
print(json.dumps(store.stats()), flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no close(), no flush(), no atexit
"""


def test_a_processor_killed_with_points_spooled_loses_none(influxdb: InfluxServer, influx_bucket: str, sim,
                                                           tmp_path: Path) -> None:
    catalog, batch = sim
    influxdb.stop()
    try:
        proc = subprocess.run([sys.executable, "-c", KILLED_PROCESSOR, influxdb.url, influx_bucket, influxdb.token,
                               str(tmp_path), str(SEED)], cwd=REPO, capture_output=True, text=True, timeout=120,
                              check=False)
    finally:
        influxdb.start()
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    stats = json.loads(proc.stdout)
    assert stats["spooled"] == stats["accepted"] >= len(batch) and stats["written"] == 0

    restarted = store_for(influxdb, influx_bucket, catalog, tmp_path)  # drains the dead one's spool on start
    assert restarted.stats()["drained"] == stats["spooled"]
    restarted.close()
    assert points_per_sensor(influxdb, influx_bucket) == sent_per_sensor(catalog, batch)
    assert_same_readings(read_back(influxdb, influx_bucket, catalog), batch)


class _FaultProxy(http.server.ThreadingHTTPServer):
    """Forwards to the real InfluxDB, after answering the first `faults` writes with `status`."""

    def __init__(self, upstream: str, faults: int, status: int, retry_after: str | None) -> None:
        self.upstream, self.faults, self.status, self.retry_after = upstream, faults, status, retry_after
        self.seen: list[tuple[float, int]] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", free_port()), _ProxyHandler)


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    server: _FaultProxy

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.server.lock:
            fault = self.server.faults > 0
            self.server.faults -= fault
        if fault:
            self.server.seen.append((time.monotonic(), self.server.status))
            self.send_response(self.server.status)
            if self.server.retry_after is not None:
                self.send_header("Retry-After", self.server.retry_after)
            self.send_header("Content-Type", "application/json")
            payload = b'{"code":"unavailable","message":"overloaded, try later"}'
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        req = urllib.request.Request(self.server.upstream + self.path, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, data = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, data = e.code, e.read()
        self.server.seen.append((time.monotonic(), status))
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fault_proxy(influxdb: InfluxServer) -> Iterator:
    proxies: list[_FaultProxy] = []

    def make(faults: int, status: int, retry_after: str | None = None) -> _FaultProxy:
        proxy = _FaultProxy(influxdb.url, faults, status, retry_after)
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        proxies.append(proxy)
        return proxy

    yield make
    for p in proxies:
        p.shutdown()
        p.server_close()


def test_429_is_retried_after_the_servers_retry_after(influxdb: InfluxServer, influx_bucket: str, sim,
                                                     tmp_path: Path, fault_proxy) -> None:
    catalog, batch = sim
    proxy = fault_proxy(faults=2, status=429, retry_after="0.4")
    part = batch.take(slice(0, 3000))
    store = _store_via(proxy, influxdb, influx_bucket, catalog, tmp_path, retry_budget_s=5.0)
    store.write_readings(part)
    store.flush()
    stats = store.stats()
    assert stats["retries"] == 2 and stats["written"] == len(part) and stats["spooled"] == 0
    (t1, s1), (t2, s2), (t3, s3) = proxy.seen[:3]
    assert (s1, s2, s3) == (429, 429, 204)
    assert t2 - t1 >= 0.35 and t3 - t2 >= 0.35  # waited as told, not a hammering retry loop
    store.close()
    assert_same_readings(read_back(influxdb, influx_bucket, catalog), part)


def test_5xx_beyond_the_retry_budget_spools_then_delivers(influxdb: InfluxServer, influx_bucket: str, sim,
                                                         tmp_path: Path, fault_proxy) -> None:
    catalog, batch = sim
    proxy = fault_proxy(faults=6, status=503)
    part = batch.take(slice(0, 3000))
    store = _store_via(proxy, influxdb, influx_bucket, catalog, tmp_path, retry_budget_s=0.5, flush_interval_s=0)
    t = time.monotonic()
    store.write_readings(part)
    assert time.monotonic() - t < 0.5 + 1.5
    assert store.stats()["spooled"] == len(part) and store.stats()["state"] == "down"
    deadline = time.monotonic() + 30
    while not store.drain() and time.monotonic() < deadline:  # the proxy still answers 503 a few more times
        time.sleep(0.2)
    assert store.stats()["drained"] == len(part)
    store.close()
    assert_same_readings(read_back(influxdb, influx_bucket, catalog), part)


def _store_via(proxy: _FaultProxy, influxdb: InfluxServer, bucket: str, catalog, spool: Path, **kw):
    from sentinel.stores.influx import InfluxStore

    return InfluxStore(f"http://127.0.0.1:{proxy.server_address[1]}", influxdb.org, bucket, influxdb.token, catalog,
                       spool_dir=spool, **kw)
