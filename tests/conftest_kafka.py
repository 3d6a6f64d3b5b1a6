"""Pytest plugin: a real Apache Kafka 3.9.1 broker (KRaft, single node) for the Kafka tests, never a fake.

Enabled from tests/conftest.py (`pytest_plugins`). The first use fetches the broker's jars from Maven
Central with scripts/kafka-build.sh (about 10 s on a fresh machine, cached afterwards: a no-op in
milliseconds), then starts it with scripts/kafka-up.sh on two free 127.0.0.1 ports (PLAINTEXT and
controller) with its data dir and env file in a temporary folder; start-up takes about 4 s.

Fixtures
- `kafka` (session): a `KafkaServer` with `.bootstrap` ("127.0.0.1:<port>"), `stop()`/`start()` (same
  ports and data, for outage tests: restore it with `start()` in a `finally`), `answers()`; stopped at the
  end of the session.

Helpers: `create_topic(bootstrap, name, partitions)` (AIOKafkaAdminClient, waits until every partition
has a leader) and `unique_name(prefix)` for per-test topic and consumer-group names, so tests sharing
the one broker stay independent.

If the broker cannot be fetched or started the tests are skipped, except under CI=true where that is a
failure (as in tests/conftest.py's `require`): a CI run that silently skips its broker tests tests nothing.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import free_port, unavailable

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"


@dataclass
class KafkaServer:
    """A Kafka broker run by scripts/kafka-up.sh / kafka-down.sh in its own data dir."""

    run_dir: Path
    port: int
    controller_port: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.run_dir / "data"

    @property
    def env_file(self) -> Path:
        return self.run_dir / "kafka.env"

    def env(self) -> dict[str, str]:
        return dict(os.environ, KAFKA_PORT=str(self.port), KAFKA_CONTROLLER_PORT=str(self.controller_port),
                    KAFKA_DATA_DIR=str(self.data_dir), KAFKA_ENV_FILE=str(self.env_file))

    def run_script(self, script: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """Run one of scripts/kafka-*.sh for this broker; the finished process, whatever its exit code."""
        return subprocess.run(["bash", str(SCRIPTS / script)], env=self.env(), capture_output=True, text=True,
                              timeout=timeout, check=False)

    def _run(self, script: str, timeout: float = 180) -> str:
        proc = self.run_script(script, timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"{script} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc.stdout

    def start(self) -> None:
        """Start the broker (a no-op when it already answers); returns once it serves requests."""
        self._run("kafka-up.sh")

    def stop(self) -> None:
        """Stop it cleanly (SIGTERM); its topics and committed offsets stay for the next start()."""
        self._run("kafka-down.sh")

    def pid(self) -> int | None:
        try:
            return int((self.data_dir / "kafka.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def answers(self, timeout: float = 2.0) -> bool:
        """Whether something accepts TCP connections on the broker port (a quick liveness probe)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=timeout):
                return True
        except OSError:
            return False

    def log_tail(self, lines: int = 40) -> str:
        path = self.data_dir / "server.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaServer]:
    try:
        subprocess.run(["bash", str(SCRIPTS / "kafka-build.sh")], capture_output=True, text=True,
                       timeout=1800, check=True)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        tail = getattr(exc, "stderr", "") or ""
        unavailable(f"could not fetch the Kafka jars with scripts/kafka-build.sh: {exc}\n{tail[-2000:]}")
    port = free_port()
    controller_port = free_port()
    while controller_port == port:
        controller_port = free_port()
    server = KafkaServer(tmp_path_factory.mktemp("kafka"), port, controller_port)
    try:
        server.start()
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        server.stop()
        unavailable(f"could not start Kafka: {exc}")
    try:
        yield server
    finally:
        server.stop()


# -- helpers for the tests ---------------------------------------------------------------------------


def unique_name(prefix: str) -> str:
    """A topic / consumer-group name no other test (or earlier run against the same broker) uses."""
    clean = re.sub(r"[^A-Za-z0-9._-]", "-", prefix)[:150] or "t"
    return f"{clean}-{uuid.uuid4().hex[:12]}"


def create_topic(bootstrap: str, name: str, partitions: int = 4, *, timeout: float = 30.0) -> str:
    """Create a topic (replication factor 1) and wait until every partition has a leader; returns `name`."""
    asyncio.run(_create_topic(bootstrap, name, partitions, timeout))
    return name


async def _create_topic(bootstrap: str, name: str, partitions: int, timeout: float) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import for_code

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    await admin.start()
    try:
        resp = await admin.create_topics([NewTopic(name, partitions, 1)], timeout_ms=int(timeout * 1000))
        for topic, code, *rest in resp.topic_errors:
            if code:
                raise for_code(code)(f"could not create topic {topic!r}: {rest[0] if rest else ''}")
        deadline = time.monotonic() + timeout
        while True:
            [desc] = await admin.describe_topics([name])
            ready = [p for p in desc["partitions"] if p["error_code"] == 0 and p["leader"] >= 0]
            if desc["error_code"] == 0 and len(ready) == partitions:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {name!r} has no leader for every partition after {timeout}s: {desc}")
            await asyncio.sleep(0.05)
    finally:
        await admin.close()
