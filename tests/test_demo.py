"""`sentinel demo`, the first thing a new user runs: a simulated burst must become an alert."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest

from sentinel.demo import run_demo
from tests.conftest_mqtt import MosquittoBroker


def _alerts(db: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT rule_id, zone, severity FROM alerts").fetchall()


def test_demo_on_the_embedded_broker_turns_the_burst_into_an_alert(tmp_path: Path) -> None:
    out = io.StringIO()
    assert run_demo(workdir=tmp_path, embedded=True, speed=240, out=out) == 0
    text = out.getvalue()
    assert "embedded (amqtt)" in text
    assert "OPENED water/DMA1" in text
    alerts = _alerts(tmp_path / "sentinel.sqlite")
    assert any(rule == "water-burst-pressure-drop" and zone == "DMA1" for rule, zone, _ in alerts)


@pytest.mark.mosquitto
def test_demo_against_the_projects_mosquitto_with_acls_stores_every_reading(tmp_path: Path,
                                                                           mosquitto: MosquittoBroker) -> None:
    out = io.StringIO()
    assert run_demo(workdir=tmp_path, mqtt=f"{mosquitto.host}:{mosquitto.port}", speed=240, out=out,
                    processor_auth=("sentinel", mosquitto.users["sentinel"]),
                    device_auth=("device", mosquitto.users["device"])) == 0
    with sqlite3.connect(tmp_path / "sentinel.sqlite") as conn:
        assert conn.execute("SELECT count(*) FROM readings").fetchone()[0] == 160
    assert _alerts(tmp_path / "sentinel.sqlite")
