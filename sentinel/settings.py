"""Settings for the live processor: command-line flags over `SENTINEL_*` environment variables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of `sentinel run`. Secrets are SecretStr so they never print in logs or reprs."""

    model_config = SettingsConfigDict(env_prefix="SENTINEL_", extra="ignore")

    catalog: Path | None = None
    rules: list[Path] = Field(default_factory=list, description="rule files; empty means the defaults")
    db: Path = Path("sentinel.sqlite")
    state: Path | None = Field(default=None, description="engine + alert state file for warm restarts")
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_client_id: str = "sentinel-processor"
    mqtt_prefix: str = "sentinel"
    mqtt_shared_group: str | None = None
    mqtt_protocol: str = "3.1.1"
    publish_alerts: bool = True
    webhook_url: SecretStr | None = None  # DingTalk/WeCom/Feishu webhook URLs carry their token
    resolve_after_s: float = 900.0
    # -- operator console (sentinel/console): served by `sentinel run` when `console` is set ----------
    console: str | None = Field(default=None, description="HOST:PORT to serve the operator console and API on")
    console_ops_db: Path = Field(default=Path("sentinel-console.sqlite"),
                                 description="the console's users, tokens, audit trail, silences, rule versions")
    console_secure_cookie: bool = Field(default=False, description="session cookie only over HTTPS (behind a "
                                        "TLS proxy)")
    # -- routing (alerts/routing): who hears about which alerts, grouped, inhibited, escalated --------
    routing: Path | None = Field(default=None, description="routing YAML (deploy/routing.example.yaml); "
                                 "without it every change goes to the console/MQTT/webhook notifiers as is")
    routing_state: Path | None = Field(default=None, description="where routing keeps its groups across restarts")
    deliveries_db: Path | None = Field(default=None, description="SQLite journal of every delivery attempt "
                                       "(default: next to SENTINEL_DB)")
    max_future_s: float = Field(default=600.0, ge=0, description="refuse readings stamped further ahead of "
                                "their arrival than this (a clock set wrong must not jump the watermark)")
    poll_max: int = 5000
    poll_timeout_s: float = 0.2
    stats_every_s: float = 30.0
    state_every_s: float = 60.0
    # -- stores: SQLite (the default, embedded), InfluxDB, or both (sentinel/stores/influx.py) -------
    store: Annotated[list[Literal["sqlite", "influx"]], NoDecode] = Field(
        default_factory=lambda: ["sqlite"], min_length=1,
        description='where results go: "sqlite", "influx" or "sqlite,influx" (also a JSON list)')
    influx_url: str = "http://127.0.0.1:8086"
    influx_org: str = "sentinel"
    influx_bucket: str = "sentinel"
    influx_token: SecretStr | None = None
    influx_token_file: Path | None = Field(default=None, description="file holding the token (e.g. a secret)")
    influx_spool_dir: Path = Field(default=Path("sentinel-influx-spool"),
                                   description="on-disk queue for points InfluxDB has not taken yet")
    influx_spool_max_bytes: int = Field(default=1 << 30, gt=0, description="spool bound; full = backpressure")
    influx_batch_size: int = Field(default=10_000, gt=0, description="lines per write request (bench/influx_write)")
    influx_flush_interval_s: float = Field(
        default=0.0, ge=0, description="0: every write is sent (or spooled) before the call returns, as the "
        "live runner's acknowledge-after-store needs; > 0 buffers up to this long (call flush())")
    influx_gzip: bool = Field(default=True, description="compress writes; false when InfluxDB is on this host")
    influx_timeout_s: float = Field(default=10.0, gt=0)
    influx_retry_budget_s: float = Field(default=3.0, ge=0, description="retry time per flush before spooling")
    influx_warm_hours: float = Field(default=0.0, ge=0, description="on start without a state file, learn "
                                     "baselines from this many hours of readings in InfluxDB")
    influx_downsample_bucket: str = "sentinel_1m"
    # -- Kafka / Faust scale-out (sentinel/scaleout, ingest/kafka_bridge.py) ---------------------------
    kafka_bootstrap: str = Field(default="127.0.0.1:9092", description="host:port[,host:port...] of Kafka")
    kafka_prefix: str = Field(default="sentinel", description="topics <prefix>.readings, .detections, "
                              ".alerts, .dead-letters")
    kafka_partitions: int = Field(default=8, gt=0, description="partitions of every topic; the most workers "
                                  "that can share the work")
    kafka_replication: int = Field(default=1, gt=0)
    kafka_timeout_s: float = Field(default=30.0, gt=0, description="a Kafka request not answered in this "
                                   "time fails; the bridge then holds its MQTT messages and retries")
    kafka_tick_every_s: float = Field(default=1.0, gt=0, description="how often producers send each zone "
                                      "the stream's watermark (deadman sweeps of quiet zones)")
    worker_app_id: str = Field(default="lifeline-sentinel", description="Faust app id: consumer group and "
                               "changelog topic names; workers with one id share the zones")
    worker_batch_max: int = Field(default=500, gt=0, description="Kafka messages per micro-batch")
    worker_batch_within_s: float = Field(default=0.2, gt=0)
    worker_session_timeout_s: float = Field(default=10.0, gt=0, description="a worker silent this long is "
                                            "presumed dead and its zones move to the others")
    heartbeat_file: Path | None = Field(default=None, description="touched every few seconds while a "
                                        "worker or bridge runs: its container health check reads the age")
    worker_stall_s: float = Field(default=60.0, ge=0, description="records waiting and none evaluated for "
                                  "this long: the worker exits (code 75) for its supervisor to restart it; "
                                  "0 turns the watchdog off")
    worker_sink: bool = Field(default=True, description="also write the outputs of owned partitions to the "
                              "store and notifiers")

    @field_validator("store", mode="before")
    @classmethod
    def _split_store(cls, v: object) -> object:
        if isinstance(v, str):
            text = v.strip()
            return json.loads(text) if text.startswith("[") else [p.strip() for p in text.split(",") if p.strip()]
        return v
