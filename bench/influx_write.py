"""Points per second into a real InfluxDB 2: our InfluxStore vs influxdb-client's default WriteApi vs a
plain line-protocol HTTP POST, the same points, in one run.

Each way gets the same stream - `--points` readings of `--sensors` sensors, arriving as 5,000-reading
Batches as the pipeline hands them over - encoded by the same `ReadingsEncoder` (so the comparison is
of the write path: batching, compression, HTTP), each run into a fresh bucket whose point count is
verified afterwards:

- ours:    InfluxStore(batch_size, gzip) write_readings per Batch, then close() (synchronous, spool-backed)
- default: influxdb-client `write_api()` with default options (background batching of 1,000, no gzip),
           closed properly so it flushes
- plain:   urllib POST /api/v2/write of `--batch-size` lines, no gzip, one after the other

Prints medians over `--repeats`, the ratios ours/default and ours/plain, and ends with one JSON line.
Starts its own influxd (scripts/influxdb-up.sh, free port, temp dir) unless INFLUXDB_URL and
INFLUXDB_TOKEN (and INFLUXDB_ORG) point at one.

    python -m bench.influx_write [--points 500000] [--sensors 5000] [--repeats 3] [--batch-size 10000]
    python -m bench.influx_write --sweep     # ours only: batch sizes 2k-20k, gzip on and off (how we chose)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from influxdb_client import InfluxDBClient

from sentinel.catalog import Catalog, Sensor
from sentinel.readings import NS, Batch
from sentinel.stores.influx import DEFAULT_BATCH_SIZE, InfluxStore
from sentinel.stores.influx_schema import ReadingsEncoder

REPO = Path(__file__).resolve().parents[1]
T0 = 1_735_689_600 * NS
BATCH_SIZE = DEFAULT_BATCH_SIZE  # chosen with --sweep


@dataclass(frozen=True)
class Server:
    url: str
    org: str
    token: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def influxd() -> Iterator[Server]:
    if os.environ.get("INFLUXDB_URL") and os.environ.get("INFLUXDB_TOKEN"):
        env = os.environ
        yield Server(env["INFLUXDB_URL"], env.get("INFLUXDB_ORG", "sentinel"), env["INFLUXDB_TOKEN"])
        return
    work = Path(tempfile.mkdtemp(prefix="bench-influx-"))
    port = free_port()
    env = dict(os.environ, INFLUXDB_PORT=str(port), INFLUXDB_DATA_DIR=str(work / "data"),
               INFLUXDB_ENV_FILE=str(work / "influxdb.env"))
    subprocess.run(["bash", str(REPO / "scripts/influxdb-up.sh")], env=env, check=True, stdout=subprocess.DEVNULL)
    try:
        yield Server(f"http://127.0.0.1:{port}", "sentinel", "sentinel-dev-token")
    finally:
        subprocess.run(["bash", str(REPO / "scripts/influxdb-down.sh")], env=env, check=False,
                       stdout=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


def make_stream(points: int, sensors: int) -> tuple[Catalog, list[Batch]]:
    """Every sensor reports once a minute; the stream arrives in time order, 5,000 readings a Batch."""
    quantities = [("pressure", "kPa", 300.0), ("flow", "m3/h", 120.0), ("temperature", "degC", 70.0)]
    cat = Catalog.from_sensors(
        Sensor(sensor_id=f"S{i:05d}", network="water", zone=f"DMA{i // 100:03d}", quantity=quantities[i % 3][0],
               unit=quantities[i % 3][1], interval_s=60) for i in range(sensors))
    steps = -(-points // sensors)
    rng = np.random.default_rng(7)
    sensor = np.tile(np.arange(sensors, dtype=np.int32), steps)[:points]
    t = np.repeat(T0 + np.arange(steps, dtype=np.int64) * 60 * NS, sensors)[:points]
    base = np.array([quantities[i % 3][2] for i in range(sensors)])
    value = np.round(base[sensor] + rng.normal(0, 5, points), 2)
    return cat, Batch.of(sensor, t, value).split(5000)


def count(client: InfluxDBClient, org: str, bucket: str) -> int:
    flux = (f'from(bucket: "{bucket}") |> range(start: 0) |> filter(fn: (r) => r._field == "quality") '
            '|> group() |> count()')
    tables = client.query_api().query(flux, org=org)
    return int(tables[0].records[0].get_value()) if tables else 0


def write_ours(srv: Server, bucket: str, cat: Catalog, batches: list[Batch], batch_size: int, gzip: bool,
               spool: Path) -> None:
    store = InfluxStore(srv.url, srv.org, bucket, srv.token, cat, spool_dir=spool, batch_size=batch_size, gzip=gzip)
    for b in batches:
        store.write_readings(b)
    store.close()
    stats = store.stats()
    if stats["spooled"] or stats["rejected"]:
        raise RuntimeError(f"our store did not write everything directly: {stats}")


def write_default_client(srv: Server, bucket: str, cat: Catalog, batches: list[Batch]) -> None:
    enc = ReadingsEncoder(cat)
    errors: list[object] = []
    with InfluxDBClient(url=srv.url, token=srv.token, org=srv.org) as client, \
            client.write_api(error_callback=lambda conf, data, exc: errors.append(exc)) as w:
        for b in batches:
            w.write(bucket, srv.org, enc.encode(b))
    if errors:
        raise RuntimeError(f"influxdb-client reported {len(errors)} failed batches: {errors[0]}")


def write_plain(srv: Server, bucket: str, cat: Catalog, batches: list[Batch], batch_size: int) -> None:
    enc = ReadingsEncoder(cat)
    url = f"{srv.url}/api/v2/write?org={srv.org}&bucket={bucket}&precision=ns"
    headers = {"Authorization": f"Token {srv.token}", "Content-Type": "text/plain; charset=utf-8"}
    pending: list[str] = []

    def post(lines: list[str]) -> None:
        req = urllib.request.Request(url, data="\n".join(lines).encode(), headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=60) as r:
            if r.status != 204:
                raise RuntimeError(f"plain POST answered {r.status}")

    for b in batches:
        pending += enc.encode(b)
        while len(pending) >= batch_size:
            post(pending[:batch_size])
            del pending[:batch_size]
    if pending:
        post(pending)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=500_000)
    ap.add_argument("--sensors", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="our batch size and the plain POST's")
    ap.add_argument("--sweep", action="store_true", help="only our store, over batch sizes and gzip on/off")
    args = ap.parse_args(argv)
    cat, batches = make_stream(args.points, args.sensors)
    n = sum(len(b) for b in batches)
    work = Path(tempfile.mkdtemp(prefix="bench-influx-spool-"))

    def ours(size: int, gzip: bool) -> Callable[[Server, str], None]:
        return lambda s, bk: write_ours(s, bk, cat, batches, size, gzip, work / bk)

    if args.sweep:
        ways = {f"ours_{size}{'' if gz else '_no_gzip'}": ours(size, gz)
                for size in (2000, 5000, 10000, 20000) for gz in (True, False)}
    else:
        ways = {
            "ours": ours(args.batch_size, True),
            "ours_no_gzip": ours(args.batch_size, False),
            "default_client": lambda s, bk: write_default_client(s, bk, cat, batches),
            "plain_post": lambda s, bk: write_plain(s, bk, cat, batches, args.batch_size),
        }
    rates: dict[str, list[float]] = {k: [] for k in ways}
    print(f"{n:,} readings of {args.sensors:,} sensors, {len(batches)} Batches; batch size {args.batch_size}; "
          f"{args.repeats} repeats")
    with influxd() as srv, InfluxDBClient(url=srv.url, token=srv.token, org=srv.org, timeout=120_000) as client:
        buckets = client.buckets_api()
        for r in range(args.repeats):
            for name, write in ways.items():
                bucket = f"bench-{name}-{r}-{time.time_ns()}"
                created = buckets.create_bucket(bucket_name=bucket, org=srv.org)
                t = time.perf_counter()
                write(srv, bucket)
                dt = time.perf_counter() - t
                got = count(client, srv.org, bucket)
                if got != n:
                    raise SystemExit(f"{name}: {got:,} points in InfluxDB, expected {n:,}")
                rates[name].append(n / dt)
                print(f"  repeat {r + 1} {name:20s} {dt:6.2f} s  {n / dt / 1e3:7.1f} k points/s  (count ok)")
                buckets.delete_bucket(created)
    shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    print("\nmedian points/s: " + ", ".join(f"{k} {v / 1e3:.1f}k" for k, v in med.items()))
    if args.sweep:
        print(json.dumps({"bench": "influx_write_sweep", "points": n, "points_per_s": {k: round(v) for k, v in
                                                                                        med.items()}}))
        return 0
    vs_default, vs_plain = med["ours"] / med["default_client"], med["ours"] / med["plain_post"]
    no_gzip = med["ours_no_gzip"] / med["plain_post"]
    print(f"ours / influxdb-client default WriteApi = {vs_default:.2f}x; ours / plain LP POST = {vs_plain:.2f}x "
          f"(without gzip: {no_gzip:.2f}x)")
    print(json.dumps({"bench": "influx_write", "points": n, "sensors": args.sensors, "batch_size": args.batch_size,
                      "repeats": args.repeats, "points_per_s": {k: round(v) for k, v in med.items()},
                      "ratio_ours_to_default_client": round(vs_default, 3),
                      "ratio_ours_to_plain_post": round(vs_plain, 3),
                      "ratio_ours_no_gzip_to_plain_post": round(no_gzip, 3)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
