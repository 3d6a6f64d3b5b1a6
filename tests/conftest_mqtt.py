"""Pytest plugin: real Mosquitto brokers for MQTT tests, started with the project's own config.

Enable it from tests/conftest.py with `pytest_plugins = ["tests.conftest_mqtt"]`
(or on the command line: `-p tests.conftest_mqtt`).

Fixtures
- `mosquitto` (session): one broker shared by all tests, started by scripts/mosquitto-up.sh from
  deploy/mosquitto/ on a free 127.0.0.1 port in a temporary runtime dir; stopped at the end.
  Yields a MosquittoBroker: `.host`, `.port`, `.users` ({"sentinel": pw, "device": pw}) and
  `.creds(user) -> {"username", "password"}` for MqttSource/MqttPublisher keyword arguments.
- `mosquitto_factory` (function): `make() -> MosquittoBroker`, a private broker per call (own port and
  persistence dir) for tests that stop, restart or wipe it; all are stopped after the test.

Without a mosquitto binary the tests are skipped, except under CI=true where that is a failure: a CI
image that silently skips its broker tests tests nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.servers import free_port, unavailable

REPO = Path(__file__).resolve().parents[1]
UP = REPO / "scripts" / "mosquitto-up.sh"
DOWN = REPO / "scripts" / "mosquitto-down.sh"
USERS = {"sentinel": "sentinel-dev", "device": "device-dev"}


def mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None


def _require_mosquitto() -> None:
    if mosquitto_binary() and shutil.which("mosquitto_passwd"):
        return
    msg = ("mosquitto (and mosquitto_passwd) not installed: apt-get install -y mosquitto, "
           "or run scripts/mosquitto-up.sh")
    unavailable(msg)


@dataclass
class MosquittoBroker:
    """A broker run by scripts/mosquitto-up.sh / mosquitto-down.sh in its own runtime dir."""

    run_dir: Path
    port: int
    host: str = "127.0.0.1"
    users: dict[str, str] = field(default_factory=lambda: dict(USERS))

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(MQTT_PORT=str(self.port), MQTT_BIND=self.host, MOSQUITTO_DIR=str(self.run_dir),
                   MQTT_SENTINEL_USER="sentinel", MQTT_SENTINEL_PASSWORD=self.users["sentinel"],
                   MQTT_DEVICE_USER="device", MQTT_DEVICE_PASSWORD=self.users["device"])
        return env

    def _run(self, script: Path) -> str:
        proc = subprocess.run(["bash", str(script)], env=self._env(), capture_output=True, text=True,
                              timeout=60, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{script.name} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc.stdout

    def start(self) -> str:
        return self._run(UP)

    def stop(self) -> str:
        return self._run(DOWN)

    def restart(self, *, wipe: bool = False) -> None:
        """Stop (SIGTERM: mosquitto saves its database) and start again on the same port; `wipe` deletes
        the persistence database in between, as if the broker had lost its disk."""
        self.stop()
        if wipe:
            for f in (self.run_dir / "data").glob("*"):
                f.unlink()
        self.start()

    def creds(self, user: str) -> dict[str, str]:
        return {"username": user, "password": self.users[user]}

    def log_tail(self, lines: int = 40) -> str:
        path = self.run_dir / "mosquitto.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoBroker]:
    _require_mosquitto()
    broker = MosquittoBroker(tmp_path_factory.mktemp("mosquitto"), free_port())
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def mosquitto_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], MosquittoBroker]]:
    _require_mosquitto()
    brokers: list[MosquittoBroker] = []

    def make() -> MosquittoBroker:
        broker = MosquittoBroker(tmp_path_factory.mktemp("mosquitto-private"), free_port())
        broker.start()
        brokers.append(broker)
        return broker

    try:
        yield make
    finally:
        for broker in brokers:
            broker.stop()
