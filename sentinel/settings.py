"""Settings for the live processor: command-line flags over `SENTINEL_*` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    webhook_url: str | None = None
    resolve_after_s: float = 900.0
    poll_max: int = 5000
    poll_timeout_s: float = 0.2
    stats_every_s: float = 30.0
    state_every_s: float = 60.0
