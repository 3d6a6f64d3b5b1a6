"""compose.yaml cannot run here (no Docker), so its parts are checked against what does run: the files it
mounts exist and are the ones the tests use, its commands parse as `sentinel` commands, and every
SENTINEL_* variable it sets is a real setting."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from sentinel.cli import build_parser
from sentinel.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
GENERATED = {"deploy/mosquitto/passwd"}  # written by scripts/mosquitto-passwd.sh, never committed


def _sentinel_services() -> dict[str, dict]:
    return {name: svc for name, svc in COMPOSE["services"].items() if "build" in svc}


def test_every_mounted_config_file_is_in_the_repo() -> None:
    for name, svc in COMPOSE["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                rel = source[2:]
                assert rel in GENERATED or (ROOT / rel).exists(), f"{name} mounts missing {rel}"
    assert (ROOT / "scripts" / "mosquitto-passwd.sh").exists()


def test_mosquitto_gets_the_config_the_tests_start_it_with() -> None:
    volumes = COMPOSE["services"]["mosquitto"]["volumes"]
    assert "./deploy/mosquitto/mosquitto.conf:/mosquitto/config/mosquitto.conf:ro" in volumes
    assert "deploy/mosquitto" in (ROOT / "scripts" / "mosquitto-up.sh").read_text()


def test_every_sentinel_command_parses() -> None:
    parser = build_parser()
    for name, svc in _sentinel_services().items():
        command = svc["command"]
        args = command if isinstance(command, list) else shlex.split(command)
        args = [re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", a) for a in args]
        parsed = parser.parse_args(args)
        assert callable(parsed.func), name


def test_every_sentinel_variable_is_a_setting() -> None:
    fields = {f"SENTINEL_{name.upper()}" for name in Settings.model_fields}
    env_example = (ROOT / "deploy" / "sentinel.env.example").read_text()
    names = set(re.findall(r"^#?\s*(SENTINEL_[A-Z_]+)=", env_example, re.M))
    for svc in _sentinel_services().values():
        names |= {k for k in svc.get("environment", {}) if k.startswith("SENTINEL_")}
    assert names and names <= fields, names - fields


def test_the_image_copies_every_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("sentinel", "ingest", "rules", "alerts", "simulators"):
        assert f"COPY {package} ./{package}" in dockerfile
