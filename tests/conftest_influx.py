"""Pytest plugin: a real InfluxDB 2.9.1 for the InfluxDB store tests, never a fake.

Enabled from tests/conftest.py (`pytest_plugins`). The first use builds influxd from its Go module with
scripts/influxdb-build.sh (about 6 minutes on a fresh machine, cached afterwards: a no-op in under a
second), then starts it with scripts/influxdb-up.sh on a free 127.0.0.1 port with its data dir and env
file in a temporary folder (org `sentinel`, token `sentinel-dev-token`).

Fixtures
- `influxdb` (session): an `InfluxServer` with `.url`, `.org`, `.bucket`, `.token`, `stop()`/`start()`
  (same port and data, for outage tests), `client()`, `create_bucket()`; stopped at the end.
- `influx_bucket` (function): a fresh bucket for one test (deleted afterwards), so tests stay independent;
  it also restarts the server if an earlier test left it stopped.

Helpers: `store_for` (an InfluxStore on the server), `read_back` (readings via Flux, as a Batch),
`assert_same_readings` (same series, times and bit-identical values), `points_per_sensor` (InfluxDB's
own count() per series) and `sent_per_sensor`.

If influxd cannot be built or started the tests are skipped, except under CI=true where that is a
failure (as in tests/conftest.py's `require`): a CI run that silently skips its database tests tests nothing.
"""

from __future__ import annotations

import os
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path

import numpy as np
import pytest

from sentinel.catalog import Catalog
from sentinel.readings import Batch
from sentinel.stores.influx import InfluxStore
from sentinel.warm import query_readings
from tests.servers import free_port, unavailable

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"
TOKEN = "sentinel-dev-token"
_bucket_numbers = count(1)


@dataclass
class InfluxServer:
    """An influxd run by scripts/influxdb-up.sh / influxdb-down.sh in its own data dir."""

    run_dir: Path
    port: int
    org: str = "sentinel"
    bucket: str = "sentinel"
    token: str = TOKEN

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.run_dir / "data"

    def _run(self, script: str, timeout: float = 120) -> str:
        env = dict(os.environ, INFLUXDB_PORT=str(self.port), INFLUXDB_DATA_DIR=str(self.data_dir),
                   INFLUXDB_ENV_FILE=str(self.run_dir / "influxdb.env"), INFLUXDB_ORG=self.org,
                   INFLUXDB_BUCKET=self.bucket, INFLUXDB_TOKEN=self.token)
        proc = subprocess.run(["bash", str(SCRIPTS / script)], env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{script} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc.stdout

    def start(self) -> None:
        self._run("influxdb-up.sh")

    def stop(self) -> None:
        self._run("influxdb-down.sh")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                return b'"pass"' in r.read()
        except OSError:
            return False

    def client(self, token: str | None = None):
        from influxdb_client import InfluxDBClient

        return InfluxDBClient(url=self.url, token=token or self.token, org=self.org, timeout=30_000)

    def create_bucket(self, name: str, *, retention_s: int = 0, shard_group_s: int | None = None) -> str:
        from influxdb_client.domain.bucket_retention_rules import BucketRetentionRules

        rules = []
        if retention_s or shard_group_s:
            rules = [BucketRetentionRules(type="expire", every_seconds=retention_s,
                                          shard_group_duration_seconds=shard_group_s)]
        with self.client() as c:
            c.buckets_api().create_bucket(bucket_name=name, org=self.org, retention_rules=rules)
        return name

    def delete_bucket(self, name: str) -> None:
        with self.client() as c:
            api = c.buckets_api()
            found = api.find_bucket_by_name(name)
            if found is not None:
                api.delete_bucket(found)

    def query(self, flux: str) -> list:
        """Flux records of every table."""
        with self.client() as c:
            return [rec for table in c.query_api().query(flux, org=self.org) for rec in table.records]

    def log_tail(self, lines: int = 40) -> str:
        path = self.data_dir / "influxd.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


@pytest.fixture(scope="session")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    try:
        subprocess.run(["bash", str(SCRIPTS / "influxdb-build.sh")], capture_output=True, text=True,
                       timeout=3600, check=True)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        tail = getattr(exc, "stderr", "") or ""
        unavailable(f"could not build influxd with scripts/influxdb-build.sh: {exc}\n{tail[-2000:]}")
    server = InfluxServer(tmp_path_factory.mktemp("influxdb"), free_port())
    try:
        server.start()
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        server.stop()
        unavailable(f"could not start influxd: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def influx_bucket(influxdb: InfluxServer, request: pytest.FixtureRequest) -> Iterator[str]:
    if not influxdb.healthy():  # an earlier test stopped it and failed before restarting
        influxdb.start()
    name = f"t{next(_bucket_numbers)}-{re.sub(r'[^A-Za-z0-9_-]', '-', request.node.name)[:60]}"
    influxdb.create_bucket(name)
    yield name
    if influxdb.healthy():
        influxdb.delete_bucket(name)


# -- helpers for the tests: write with our store, read back with Flux ---------------------------------


def store_for(influxdb: InfluxServer, bucket: str, catalog: Catalog, spool: Path, **kw) -> InfluxStore:
    kw.setdefault("token", influxdb.token)
    return InfluxStore(influxdb.url, influxdb.org, bucket, catalog=catalog, spool_dir=spool, **kw)


def read_back(influxdb: InfluxServer, bucket: str, catalog: Catalog) -> Batch:
    with influxdb.client() as c:
        return query_readings(c, influxdb.org, bucket, catalog, 0, 2**62)


def by_series(b: Batch) -> Batch:
    return b.take(np.lexsort((b.time_ns, b.sensor)))


def assert_same_readings(got: Batch, sent: Batch) -> None:
    got, sent = by_series(got), by_series(sent)
    assert len(got) == len(sent)
    assert np.array_equal(got.sensor, sent.sensor) and np.array_equal(got.time_ns, sent.time_ns)
    assert np.array_equal(got.value.view(np.int64), sent.value.view(np.int64))  # bit for bit
    assert np.array_equal(got.quality, sent.quality)


def points_per_sensor(influxdb: InfluxServer, bucket: str) -> dict[str, int]:
    """Counted by InfluxDB itself (count() per series), independent of our reader."""
    recs = influxdb.query(f'from(bucket: "{bucket}") |> range(start: 0) |> filter(fn: (r) => r._measurement == '
                          '"readings" and r._field == "quality") |> group(columns: ["sensor"]) |> count()')
    return {r.values["sensor"]: int(r.get_value()) for r in recs}


def sent_per_sensor(catalog: Catalog, b: Batch) -> dict[str, int]:
    counts = np.bincount(b.sensor, minlength=len(catalog))
    return {s.sensor_id: int(n) for s, n in zip(catalog.sensors, counts, strict=True) if n}
