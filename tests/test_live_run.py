"""`sentinel run` as operators deploy it: configured by SENTINEL_* variables, against the project's
Mosquitto with auth and ACLs; nothing published while it is down is lost, and a restart is warm."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from sentinel.rules_watch import RulesWatcher
from simulators.publish import publish
from simulators.scenario import demo_scenario
from simulators.synthetic import generate
from tests.conftest_mqtt import MosquittoBroker

pytestmark = pytest.mark.mosquitto


def _count(db: Path, table: str) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        try:
            return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        except sqlite3.OperationalError:
            return 0


def _wait(cond, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return False


class Processor:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        """Start and wait until this run (not an earlier one in the same log) has subscribed."""
        seen = len(self.log.read_text()) if self.log.exists() else 0
        fh = self.log.open("a")
        self.proc = subprocess.Popen([sys.executable, "-m", "sentinel.cli", "run"], env=self.env, stdout=fh,
                                     stderr=subprocess.STDOUT)
        assert _wait(lambda: "subscribing to" in self.log.read_text()[seen:], 20), self.log.read_text()

    def output(self) -> str:
        return self.log.read_text()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(20)


@pytest.fixture
def processor(tmp_path: Path, mosquitto: MosquittoBroker) -> Iterator[Processor]:
    result = generate(demo_scenario(seed=3))
    (tmp_path / "catalog.csv").write_text(result.sensor_catalog().to_csv())
    env = {**os.environ, "SENTINEL_CATALOG": str(tmp_path / "catalog.csv"), "SENTINEL_DB": str(tmp_path / "s.sqlite"),
           "SENTINEL_STATE": str(tmp_path / "state.npz"), "SENTINEL_MQTT_HOST": mosquitto.host,
           "SENTINEL_MQTT_PORT": str(mosquitto.port), "SENTINEL_MQTT_USERNAME": "sentinel",
           "SENTINEL_MQTT_PASSWORD": mosquitto.users["sentinel"],
           "SENTINEL_MQTT_CLIENT_ID": f"test-processor-{tmp_path.name}", "PYTHONUNBUFFERED": "1"}
    p = Processor(env, tmp_path / "processor.log")
    p.result = result  # type: ignore[attr-defined]
    yield p
    if p.proc is not None and p.proc.poll() is None:
        p.proc.kill()


def _publish(p: Processor, mosquitto: MosquittoBroker) -> None:
    publish(p.result, mosquitto.host, mosquitto.port, client_id="test-device", username="device",  # type: ignore[attr-defined]
            password=mosquitto.users["device"])


def test_run_stores_readings_raises_the_burst_and_saves_state_on_stop(processor: Processor,
                                                                       mosquitto: MosquittoBroker,
                                                                       tmp_path: Path) -> None:
    alerts: list[dict] = []
    watcher = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id="test-ops-board")
    watcher.username_pw_set("sentinel", mosquitto.users["sentinel"])
    watcher.on_message = lambda _c, _u, m: alerts.append({"topic": m.topic, **json.loads(m.payload)})
    watcher.on_connect = lambda c, *_: c.subscribe("sentinel/alerts/#", qos=1)
    watcher.connect(mosquitto.host, mosquitto.port)
    watcher.loop_start()
    processor.start()
    _publish(processor, mosquitto)
    db = tmp_path / "s.sqlite"
    assert _wait(lambda: _count(db, "readings") == 160), processor.log.read_text()
    assert _wait(lambda: _count(db, "alerts") >= 1)
    assert _wait(lambda: any(a["change"] == "opened" for a in alerts), 10)
    watcher.loop_stop()
    opened = next(a for a in alerts if a["change"] == "opened")
    assert opened["topic"] == "sentinel/alerts/water/DMA1"
    assert opened["alert"]["grade_zh"] in ("三级", "二级", "一级")
    assert processor.stop() == 0
    assert (tmp_path / "state.npz").exists()
    processor.start()
    assert _wait(lambda: "restored engine and alert state" in processor.log.read_text(), 10)
    assert processor.stop() == 0
    assert "sentinel-dev" not in processor.log.read_text()  # secrets never reach the log


def test_readings_published_while_the_processor_is_down_arrive_after_it_returns(
        processor: Processor, mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    processor.start()  # registers the persistent session
    assert processor.stop() == 0
    _publish(processor, mosquitto)  # queued by the broker for the absent processor
    processor.start()
    db = tmp_path / "s.sqlite"
    assert _wait(lambda: _count(db, "readings") == 160), processor.log.read_text()
    assert processor.stop() == 0


def test_a_killed_processor_loses_nothing_it_had_not_stored(processor: Processor, mosquitto: MosquittoBroker,
                                                            tmp_path: Path) -> None:
    processor.start()
    _publish(processor, mosquitto)
    db = tmp_path / "s.sqlite"
    _wait(lambda: _count(db, "readings") > 0)
    processor.stop(signal.SIGKILL)  # no clean shutdown: un-acked messages stay with the broker
    processor.start()
    assert _wait(lambda: _count(db, "readings") == 160), processor.log.read_text()
    assert processor.stop() == 0


def test_rules_watcher_swaps_valid_files_and_keeps_running_rules_on_errors(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {id: low, kind: threshold, low: 100}\n")
    watcher = RulesWatcher([rules])
    assert watcher.poll() is None  # unchanged
    rules.write_text("rules:\n  - {id: low, kind: threshold, low: 150}\n")
    os.utime(rules, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    new = watcher.poll()
    assert new is not None and new.rules[0].low == 150
    rules.write_text("rules:\n  - {id: low, kind: threshold, low: {purple: 1}}\n")
    os.utime(rules, ns=(time.time_ns(), time.time_ns() + 2_000_000))
    assert watcher.poll() is None  # an invalid edit never replaces running rules
