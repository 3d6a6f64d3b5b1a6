"""`sentinel run --console` as operators start it: readings over a real Mosquitto become an alert on the
console's API, an operator acknowledges it there, and the processor's own alert book and store agree."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from ingest.mqtt_publish import MqttPublisher
from ingest.topics import DEFAULT_SCHEME as TOPICS
from tests.servers import free_port

pytestmark = pytest.mark.mosquitto
REPO = Path(__file__).resolve().parents[1]
CATALOG = """sensor_id,network,zone,quantity,unit,role,interval_s
RC-P1,water,RC1,pressure,kPa,internal,60
"""
RULES = """
rules:
  - {id: rc-low, kind: threshold, low: {red: 200}, select: {network: water}}
"""


def sentinel(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sentinel.cli", *args], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=60, check=True, **kw)


def call(url: str, token: str | None = None, body: dict | None = None) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"{}")


def test_an_alert_from_mqtt_is_acknowledged_on_the_console_of_the_running_processor(mosquitto, tmp_path) -> None:
    (tmp_path / "catalog.csv").write_text(CATALOG)
    (tmp_path / "rules.yaml").write_text(RULES)
    ops = tmp_path / "ops.sqlite"
    sentinel("console", "user", "add", "li.na", "--role", "operator", "--ops-db", str(ops), input="s3cret-pass\n")
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO), SENTINEL_PUBLISH_ALERTS="false",
               SENTINEL_MQTT_PASSWORD=mosquitto.users["sentinel"], SENTINEL_POLL_TIMEOUT_S="0.1")
    log = (tmp_path / "run.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "sentinel.cli", "run", "--catalog", str(tmp_path / "catalog.csv"),
                             "--rules", str(tmp_path / "rules.yaml"), "--db", str(tmp_path / "s.sqlite"),
                             "--mqtt-host", mosquitto.host, "--mqtt-port", str(mosquitto.port),
                             "--mqtt-username", "sentinel", "--client-id", f"rc-{uuid.uuid4().hex[:6]}",
                             "--console", f"127.0.0.1:{port}", "--console-ops-db", str(ops)],
                            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                token = call(f"{base}/api/auth/login", body={"username": "li.na", "password": "s3cret-pass"})["token"]
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "run.log").read_text()
                time.sleep(0.3)
        time.sleep(1.0)  # the MQTT subscription is made just after start
        t0 = int(time.time()) - 600
        with MqttPublisher(mosquitto.host, mosquitto.port, f"dev-{uuid.uuid4().hex[:6]}",
                           **mosquitto.creds("device")) as pub:
            topic = TOPICS.reading_topic("water", "RC1", "RC-P1")
            for i, v in enumerate([300.0, 150.0, 150.0]):
                pub.publish(topic, json.dumps({"time": t0 + 60 * i, "value": v}))
        deadline = time.monotonic() + 30
        while not (alerts := call(f"{base}/api/alerts?state=open", token)["alerts"]):
            assert time.monotonic() < deadline, (tmp_path / "run.log").read_text()
            time.sleep(0.3)
        (alert,) = alerts
        assert (alert["rule_id"], alert["subject"], alert["severity"]) == ("rc-low", "RC-P1", "red")
        acked = call(f"{base}/api/alerts/{alert['alert_id']}/acknowledge", token, {"note": "crew on site"})
        assert (acked["state"], acked["acked_by"]) == ("acknowledged", "li.na")
        audit = call(f"{base}/api/audit", token)
        assert [(e["action"], e["actor"]) for e in audit["entries"] if e["action"].startswith("alert.")] == [
            ("alert.acknowledge", "li.na")]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert proc.returncode == 0, (tmp_path / "run.log").read_text()[-3000:]
    stored = sqlite3.connect(tmp_path / "s.sqlite").execute(
        "SELECT change, actor FROM alert_changes ORDER BY time_ns").fetchall()
    assert ("acknowledged", "li.na") in stored, "the processor's store has the operator's action"
