"""Smoke test of bench/kafka_pipeline.py: tiny sizes against a real Kafka (the `kafka` fixture) and a real
Mosquitto (the bench starts its own, with bench/mqtt_pipeline.py's anonymous config, so it only needs the
binary); the final JSON line has every number and they are positive. About 40 s (Faust start-up and the
two-worker rebalance take most of it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest_kafka import KafkaServer
from tests.conftest_mqtt import mosquitto_binary
from tests.servers import unavailable

REPO = Path(__file__).resolve().parents[1]


def test_bench_runs_every_configuration_and_reports_positive_rates(kafka: KafkaServer) -> None:
    if not mosquitto_binary():
        unavailable("mosquitto is not installed (scripts/test.sh installs it)")
    argv = [sys.executable, "-m", "bench.kafka_pipeline", "--kafka", kafka.bootstrap, "--sensors", "300",
            "--steps", "10", "--repeats", "1", "--lag-seconds", "2", "--lag-fractions", "0.5", "--timeout", "40"]
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=150, check=False)
    assert proc.returncode == 0, f"bench failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    out = json.loads(proc.stdout.strip().splitlines()[-1])

    assert out["bench"] == "kafka_pipeline"
    assert out["readings"] == 300 * 10
    for key in ("single_readings_per_s", "bridge_readings_per_s", "kafka_1_worker_readings_per_s",
                "kafka_2_workers_readings_per_s", "ratio_1_worker_vs_single", "ratio_2_workers_vs_single",
                "ratio_2_vs_1_worker"):
        assert out[key] > 0, key
    # every reading reached the workers, and two workers shared them
    assert sum(out["runs"]["1w"][0]["worker_readings"]) == 3000
    assert sum(out["runs"]["2w"][0]["worker_readings"]) == 3000
    [lag] = out["lag"]
    assert lag["published_readings_per_s"] > 0 and lag["samples"] > 0
    assert lag["drain_after_stop_s"] is not None, "the worker never caught up after publishing stopped"
    for key in ("lag_records_median", "lag_records_p90", "lag_records_max", "lag_s_max", "bounded"):
        assert key in lag, key
    # progress went to stderr, the summary to stdout
    assert "repeat 1/1" in proc.stderr and "sustained 50% of one worker" in proc.stdout
