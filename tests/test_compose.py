"""compose.yaml cannot run here (no Docker), so its parts are checked against what does run: the files it
mounts exist and are the ones the tests use, its commands parse as `sentinel` commands, every SENTINEL_*
variable it sets is a real setting, every variable it interpolates is documented, health checks and
start-up order hold together, Kafka's config is a valid single-node KRaft config, and Grafana's
provisioning files point at a data source and dashboard that exist. (The dashboard's Flux queries are
run against a real InfluxDB in tests/test_grafana_dashboards.py.)"""

from __future__ import annotations

import base64
import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
import typing
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from alerts.model import ALERT_STATES, CHANGE_KINDS
from sentinel.catalog import NETWORKS
from sentinel.cli import build_parser
from sentinel.detections import Transition
from sentinel.settings import Settings
from sentinel.severity import Severity
from sentinel.stores import influx_schema as schema
from tests.conftest import require
from tests.conftest_mqtt import free_port

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_TEXT = (ROOT / "compose.yaml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, dict] = COMPOSE["services"]
GENERATED = {"deploy/mosquitto/passwd": "scripts/mosquitto-passwd.sh"}  # file -> the script that writes it
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD_FILE = GRAFANA / "dashboards" / "lifeline.json"
DASHBOARD = json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))

LONG_RUNNING = {"mosquitto", "influxdb", "kafka", "grafana", "sentinel", "bridge", "worker"}
ONE_SHOT = {"catalog", "influx-init", "simulator"}

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error} and $NAME; $$ is a literal $.
_INTERPOLATION = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?])?(?P<arg>[^}]*)\}"
                            r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*)|(?P<escaped>\$))")


def _sentinel_services() -> dict[str, dict]:
    return {name: svc for name, svc in SERVICES.items() if "build" in svc}


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable interpolation (the subset compose.yaml uses)."""

    def sub(m: re.Match) -> str:
        if m.group("escaped"):
            return "$"
        name = m.group("braced") or m.group("plain")
        value, op = env.get(name), m.group("op") or ""
        if op.startswith(":") and not value:
            value = None
        if value is not None:
            return value
        if op.endswith("?"):
            raise KeyError(f"{name}: {m.group('arg')}")
        return m.group("arg") if op.endswith("-") else ""

    return _INTERPOLATION.sub(sub, text)


def interpolated_names(text: str) -> dict[str, str]:
    """name -> how it is used ('' plain, ':-' default, ':?' required) for every variable in `text`."""
    out = {}
    for m in _INTERPOLATION.finditer(text):
        if not m.group("escaped"):
            out[m.group("braced") or m.group("plain")] = m.group("op") or ""
    return out


def env_examples() -> dict[str, dict[str, str]]:
    """deploy/**/*.env.example -> {NAME: example value}, commented-out `# NAME=value` lines included."""
    out = {}
    for path in sorted((ROOT / "deploy").rglob("*.env.example")):
        names = {}
        for line in path.read_text().splitlines():
            m = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line)
            if m:
                names[m.group(1)] = m.group(2).strip()
        out[str(path.relative_to(ROOT))] = names
    return out


def example_env() -> dict[str, str]:
    """The variables deploy/compose.env.example sets: what `--env-file deploy/compose.env` gives compose."""
    text = (ROOT / "deploy" / "compose.env.example").read_text()
    return dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", text, re.M))


def service_env(name: str, env: dict[str, str] | None = None) -> dict[str, str]:
    """A service's `environment`, interpolated with `env` (the example values by default)."""
    raw = SERVICES[name].get("environment", {})
    return {k: interpolate(str(v), example_env() if env is None else env) for k, v in raw.items()}


def mounts(name: str) -> dict[str, str]:
    """container path -> source (./repo/path or volume name) of a service's volumes."""
    out = {}
    for volume in SERVICES[name].get("volumes", []):
        source, target = volume.split(":")[:2]
        out[target] = source
    return out


def repo_path_of(name: str, container_path: str) -> Path | None:
    """The repository file or folder a bind mount shows at `container_path` in service `name`."""
    for target, source in sorted(mounts(name).items(), key=lambda kv: -len(kv[0])):
        if source.startswith("./") and (container_path == target or container_path.startswith(target + "/")):
            return ROOT / source[2:] / container_path[len(target):].lstrip("/")
    return None


# ---- files, commands, settings ---------------------------------------------------------------------------


def test_every_mounted_config_file_is_in_the_repo() -> None:
    header = COMPOSE_TEXT.split("\nname:")[0]
    for name, svc in SERVICES.items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                rel = source[2:]
                assert rel in GENERATED or (ROOT / rel).exists(), f"{name} mounts missing {rel}"
        for env_file in svc.get("env_file", []):
            rel = env_file.removeprefix("./")
            assert (ROOT / f"{rel}.example").exists(), f"{name}: {rel} has no {rel}.example to copy"
            assert f"cp {rel}.example {rel}" in header, f"the header does not say how to make {rel}"
    for generated, script in GENERATED.items():
        assert (ROOT / script).exists()
        assert f"{script} {generated}" in header, f"the header does not say how to write {generated}"


def test_mosquitto_gets_the_config_the_tests_start_it_with() -> None:
    volumes = SERVICES["mosquitto"]["volumes"]
    assert "./deploy/mosquitto/mosquitto.conf:/mosquitto/config/mosquitto.conf:ro" in volumes
    assert "deploy/mosquitto" in (ROOT / "scripts" / "mosquitto-up.sh").read_text()


def test_every_sentinel_command_parses() -> None:
    parser = build_parser()
    for name, svc in _sentinel_services().items():
        command = svc["command"]
        args = command if isinstance(command, list) else shlex.split(command)
        args = [interpolate(a, example_env()) for a in args]
        parsed = parser.parse_args(args)
        assert callable(parsed.func), name


def test_every_sentinel_variable_is_a_setting() -> None:
    fields = {f"SENTINEL_{name.upper()}" for name in Settings.model_fields}
    names = set(env_examples()["deploy/sentinel.env.example"])
    for svc in _sentinel_services().values():
        names |= {k for k in svc.get("environment", {}) if k.startswith("SENTINEL_")}
    assert names and names <= fields, names - fields


def test_the_processor_settings_compose_gives_it_load(monkeypatch) -> None:
    """The sentinel service's environment (with the example secrets) is a valid Settings: SQLite and
    InfluxDB stores, InfluxDB reached by its service name, the shared token."""
    for key in list(os.environ):
        if key.startswith("SENTINEL_"):
            monkeypatch.delenv(key)
    for key, value in service_env("sentinel").items():
        monkeypatch.setenv(key, value)
    s = Settings()
    assert s.store == ["sqlite", "influx"]
    assert urlparse(s.influx_url).hostname == "influxdb" and urlparse(s.influx_url).port == 8086
    assert s.influx_token is not None and s.influx_token.get_secret_value() == example_env()["INFLUXDB_TOKEN"]
    assert (s.influx_org, s.influx_bucket) == (example_env()["INFLUXDB_ORG"], example_env()["INFLUXDB_BUCKET"])
    assert str(s.influx_spool_dir).startswith("/data/")  # on the sentinel-data volume, kept across restarts
    assert mounts("sentinel")["/data"] == "sentinel-data"


def test_shared_names_and_secrets_come_from_one_variable() -> None:
    """InfluxDB is set up with the same org, bucket and token the processor, the init job and Grafana use,
    and the broker's health check logs in with the processor's MQTT password."""
    raw = {name: SERVICES[name].get("environment", {}) for name in SERVICES}
    same = [
        [raw["influxdb"]["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"], raw["grafana"]["INFLUX_TOKEN"],
         raw["sentinel"]["SENTINEL_INFLUX_TOKEN"], raw["influx-init"]["SENTINEL_INFLUX_TOKEN"]],
        [raw["influxdb"]["DOCKER_INFLUXDB_INIT_ORG"], raw["grafana"]["INFLUX_ORG"],
         raw["sentinel"]["SENTINEL_INFLUX_ORG"], raw["influx-init"]["SENTINEL_INFLUX_ORG"]],
        [raw["influxdb"]["DOCKER_INFLUXDB_INIT_BUCKET"], raw["grafana"]["INFLUX_BUCKET"],
         raw["sentinel"]["SENTINEL_INFLUX_BUCKET"], raw["influx-init"]["SENTINEL_INFLUX_BUCKET"]],
        [raw["mosquitto"]["MQTT_PASSWORD"], raw["sentinel"]["SENTINEL_MQTT_PASSWORD"]],
    ]
    for group in same:
        assert len(set(group)) == 1 and group[0].startswith("${"), group
    assert raw["mosquitto"]["MQTT_USER"] == raw["sentinel"]["SENTINEL_MQTT_USERNAME"]
    assert raw["influx-init"]["SENTINEL_INFLUX_URL"] == raw["sentinel"]["SENTINEL_INFLUX_URL"]


def test_the_image_installs_the_client_of_every_store_compose_turns_on() -> None:
    """The image is `pip install .`: a store the sentinel service enables needs its client among the
    project's dependencies, or `sentinel run` and `sentinel influx init` fail in the container."""
    needs = {"influx": "influxdb-client"}
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[\s<>=!~;\[]", d, maxsplit=1)[0].lower().replace("_", "-") for d in deps}
    for store in json.loads(service_env("sentinel")["SENTINEL_STORE"]):
        if store in needs:
            assert needs[store] in names, f"pyproject.toml must depend on {needs[store]} (SENTINEL_STORE has {store})"


def test_the_image_copies_every_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("sentinel", "ingest", "rules", "alerts", "simulators"):
        assert f"COPY {package} ./{package}" in dockerfile


# ---- environment files -----------------------------------------------------------------------------------


def test_every_interpolated_variable_is_documented_and_secrets_have_no_default() -> None:
    used = interpolated_names(COMPOSE_TEXT.split("\nname:", 1)[1])  # the header's shell lines are not compose
    examples = env_examples()
    documented = {name for names in examples.values() for name in names}
    assert used and set(used) <= documented, set(used) - documented
    compose_env = example_env()
    assert set(compose_env) == set(used), "deploy/compose.env.example lists what compose.yaml interpolates"
    for name, op in used.items():
        if op == ":?":  # required: no default in compose.yaml, a placeholder (never a real secret) in the example
            assert compose_env[name].startswith("change-me"), name
    required = {n for n, op in used.items() if op == ":?"}
    assert {"INFLUXDB_TOKEN", "INFLUXDB_ADMIN_PASSWORD", "GRAFANA_ADMIN_PASSWORD"} <= required
    with pytest.raises(KeyError, match="INFLUXDB_TOKEN"):  # compose refuses to start without the token
        service_env("influxdb", {k: v for k, v in example_env().items() if k != "INFLUXDB_TOKEN"})


def test_real_env_files_are_git_ignored() -> None:
    """The files the header copies the examples to (and any other deploy/*.env) match a .gitignore in
    deploy/, so secrets are never committed; the examples themselves do not."""
    patterns = []
    for ignore in (ROOT / "deploy").rglob(".gitignore"):
        base = ignore.parent.relative_to(ROOT)
        for line in ignore.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                patterns.append((base, line.strip()))

    def ignored(rel: str) -> bool:
        p = Path(rel)
        return any(p.is_relative_to(base) and (fnmatch.fnmatch(p.name, pat) or
                                               fnmatch.fnmatch(str(p.relative_to(base)), pat))
                   for base, pat in patterns)

    real = {e.removesuffix(".example") for e in env_examples()}
    assert {"deploy/compose.env", "deploy/sentinel.env"} <= real
    for rel in real | set(GENERATED):
        assert ignored(rel), f"{rel} is not git-ignored"
    for rel in env_examples():
        assert not ignored(rel), f"{rel} must be committed"
    assert "--env-file deploy/compose.env" in COMPOSE_TEXT


# ---- health checks, order, ports -------------------------------------------------------------------------


def test_long_running_services_have_health_checks_and_the_rest_are_one_shot_jobs() -> None:
    assert set(SERVICES) == LONG_RUNNING | ONE_SHOT
    for name, svc in SERVICES.items():
        check = svc.get("healthcheck", {})
        if name in LONG_RUNNING:
            assert svc.get("restart") in ("always", "unless-stopped"), name
            test = check.get("test")
            assert test and test[0] in ("CMD", "CMD-SHELL") and not check.get("disable"), name
            assert {"interval", "timeout", "retries"} <= set(check), name
        else:
            assert svc.get("restart", "no") == "no" and "healthcheck" not in svc, name
            assert svc.get("command"), name


def test_depends_on_waits_for_health_or_completion() -> None:
    for name, svc in SERVICES.items():
        deps = svc.get("depends_on", {})
        assert isinstance(deps, dict), f"{name}: depends_on needs conditions"
        for dep, spec in deps.items():
            expected = "service_healthy" if dep in LONG_RUNNING else "service_completed_successfully"
            assert spec.get("condition") == expected, f"{name} -> {dep}"
    # the processor starts once its broker, database, catalog and buckets are there; the simulator publishes
    # only once the processor runs (its persistent MQTT session then keeps everything)
    assert set(SERVICES["sentinel"]["depends_on"]) == {"mosquitto", "influxdb", "catalog", "influx-init"}
    assert set(SERVICES["grafana"]["depends_on"]) == {"influxdb"}
    assert set(SERVICES["simulator"]["depends_on"]) == {"sentinel"}


def test_ports_are_published_on_loopback_only() -> None:
    published = {}
    for name, svc in SERVICES.items():
        assert "network_mode" not in svc, name
        for port in svc.get("ports", []):
            assert isinstance(port, str), f"{name}: use HOST_IP:HOST:CONTAINER strings"
            host_ip, host, _container = port.split(":")
            assert host_ip == "127.0.0.1", f"{name} publishes {port} beyond this host"
            assert host not in published, f"{name} and {published.get(host)} both publish {host}"
            published[host] = name
    assert set(published.values()) == {"mosquitto", "influxdb", "kafka", "grafana"}


def test_sentinel_health_check_passes_only_while_the_state_file_is_fresh(tmp_path) -> None:
    """Runs the service's own check command against a state file that is fresh, stale and missing."""
    svc = SERVICES["sentinel"]
    test = svc["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    state = svc["environment"]["SENTINEL_STATE"]
    assert f"'{state}'" in test[3], "the check must read the file the processor saves"
    limit = float(re.search(r"< (\d+)", test[3]).group(1))
    every = float(svc["environment"]["SENTINEL_STATE_EVERY_S"])
    assert limit >= 2 * every + 15, "a healthy processor must not flap between two saves"
    code = test[3].replace(state, str(tmp_path / "state.npz"))

    def check() -> int:
        return subprocess.run([sys.executable, "-c", code], timeout=30).returncode

    assert check() == 1  # not written yet
    (tmp_path / "state.npz").write_bytes(b"x")
    assert check() == 0
    old = time.time() - limit - 5
    os.utime(tmp_path / "state.npz", (old, old))
    assert check() == 1


def test_influxdb_health_check_passes_only_against_a_ready_server(influxdb) -> None:
    """Runs the service's own check command against the real test server (and a port nobody answers)."""
    test = SERVICES["influxdb"]["healthcheck"]["test"]
    assert test[0] == "CMD" and "http://localhost:8086/health" in test
    require("curl", shutil.which("curl"))

    def check(url: str) -> int:
        cmd = [a.replace("http://localhost:8086", url) for a in test[1:]]
        return subprocess.run(cmd, capture_output=True, timeout=30).returncode

    assert check(influxdb.url) == 0
    assert check(f"http://127.0.0.1:{free_port()}") != 0


def test_influxdb_is_the_version_the_tests_run() -> None:
    script = (ROOT / "scripts" / "influxdb-up.sh").read_text()
    version = re.search(r'VERSION="\$\{INFLUXDB_VERSION:-v([0-9.]+)\}"', script).group(1)
    assert SERVICES["influxdb"]["image"] == f"influxdb:{version}"
    env = service_env("influxdb")
    assert env["DOCKER_INFLUXDB_INIT_MODE"] == "setup"
    assert env["DOCKER_INFLUXDB_INIT_ORG"] == env["DOCKER_INFLUXDB_INIT_BUCKET"] == "sentinel"
    assert len(env["DOCKER_INFLUXDB_INIT_PASSWORD"]) >= 8  # influx setup refuses shorter ones
    assert mounts("influxdb")["/var/lib/influxdb2"] == "influxdb-data"


# ---- Kafka -----------------------------------------------------------------------------------------------


def read_properties(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")):
            key, _, value = line.partition("=")
            assert key.strip() not in out, f"{key} twice in {path.name}"
            out[key.strip()] = value.strip()
    return out


def listeners(value: str) -> dict[str, tuple[str, int]]:
    out = {}
    for item in value.split(","):
        name, _, rest = item.partition("://")
        host, _, port = rest.rpartition(":")
        out[name] = (host, int(port))
    return out


def test_kafka_is_a_single_kraft_node_as_the_design_requires() -> None:
    svc = SERVICES["kafka"]
    assert re.fullmatch(r"apache/kafka:3\.9\.\d+", svc["image"])
    props_file = repo_path_of("kafka", "/mnt/shared/config/server.properties")
    assert props_file == ROOT / "deploy" / "kafka" / "server.properties"
    p = read_properties(props_file)
    # the image appends KAFKA_* variables to the file: none may silently override it
    assert not [k for k in svc.get("environment", {}) if k.startswith("KAFKA_") and k != "KAFKA_HEAP_OPTS"]

    # combined broker + controller, one voter: this node, on its controller listener
    assert set(p["process.roles"].split(",")) == {"broker", "controller"}
    node = p["node.id"]
    own = listeners(p["listeners"])
    advertised = listeners(p["advertised.listeners"])
    protocols = dict(item.split(":") for item in p["listener.security.protocol.map"].split(","))
    controller = p["controller.listener.names"]
    assert p["controller.quorum.voters"] == f"{node}@kafka:{own[controller][1]}"
    assert svc.get("hostname", "kafka") == "kafka" and "kafka" in SERVICES
    assert controller not in advertised  # clients never see the quorum listener
    assert set(own) <= set(protocols) and set(advertised) <= set(own)
    assert p["inter.broker.listener.name"] in advertised

    # in-network clients reach kafka:9092; host clients 127.0.0.1:P, published as the same port
    assert advertised[p["inter.broker.listener.name"]] == ("kafka", own[p["inter.broker.listener.name"]][1])
    host_side = {name: port for name, (host, port) in advertised.items() if host == "127.0.0.1"}
    assert host_side
    for name, port in host_side.items():
        assert own[name][1] == port and f"127.0.0.1:{port}:{port}" in svc["ports"], name
    assert all(host in ("0.0.0.0", "") for host, _ in own.values())

    # one node: internal topics must not ask for more replicas than there are brokers
    assert p["offsets.topic.replication.factor"] == "1"
    assert p["transaction.state.log.replication.factor"] == "1"
    assert p["transaction.state.log.min.isr"] == "1"
    assert p["group.initial.rebalance.delay.ms"] == "0"

    # data on the kafka-data volume, formatted with a valid, fixed cluster id
    assert mounts("kafka")[p["log.dirs"]] == "kafka-data"
    cluster_id = svc["environment"]["CLUSTER_ID"]
    assert len(cluster_id) == 22 and len(base64.urlsafe_b64decode(cluster_id + "==")) == 16

    # the health check asks the in-network listener
    assert f"localhost:{own[p['inter.broker.listener.name']][1]}" in " ".join(svc["healthcheck"]["test"])


# ---- Grafana provisioning --------------------------------------------------------------------------------


def provisioning(kind: str) -> list[dict]:
    files = sorted((GRAFANA / "provisioning" / kind).glob("*.y*ml"))
    assert files, f"no {kind} provisioning files"
    docs = []
    for f in files:
        doc = yaml.safe_load(f.read_text())
        assert doc["apiVersion"] == 1, f.name
        docs.append(doc)
    return docs


def datasource() -> dict:
    [ds] = [d for doc in provisioning("datasources") for d in doc["datasources"]]
    return ds


def test_grafana_mounts_the_provisioning_folders() -> None:
    for kind in ("datasources", "dashboards"):
        assert repo_path_of("grafana", f"/etc/grafana/provisioning/{kind}") == GRAFANA / "provisioning" / kind
    home = service_env("grafana")["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert repo_path_of("grafana", home) == DASHBOARD_FILE


def test_grafana_datasource_is_the_influxdb_service_with_flux_and_the_token_from_env() -> None:
    ds = datasource()
    assert ds["type"] == "influxdb" and ds["access"] == "proxy" and ds["uid"]
    url = urlparse(ds["url"])
    assert url.hostname in SERVICES and SERVICES[url.hostname]["image"].startswith("influxdb:")
    assert url.port == 8086
    assert ds["jsonData"]["version"] == "Flux"
    env = SERVICES["grafana"]["environment"]
    refs = {"organization": ds["jsonData"]["organization"], "defaultBucket": ds["jsonData"]["defaultBucket"],
            "token": ds["secureJsonData"]["token"]}
    for key, value in refs.items():  # Grafana expands $VAR / ${VAR} from its environment in provisioning files
        m = re.fullmatch(r"\$\{?([A-Z_][A-Z0-9_]*)\}?", str(value))
        assert m and m.group(1) in env, f"{key} must come from the grafana service's environment"
    assert env[refs["token"].strip("${}")] == SERVICES["influxdb"]["environment"]["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"]
    for f in (GRAFANA / "provisioning").rglob("*"):
        if f.is_file():
            assert example_env()["INFLUXDB_TOKEN"] not in f.read_text() and "sentinel-dev-token" not in f.read_text()


def test_grafana_dashboard_provider_points_at_the_dashboard() -> None:
    [provider] = [p for doc in provisioning("dashboards") for p in doc["providers"]]
    assert provider["type"] == "file"
    folder = repo_path_of("grafana", provider["options"]["path"])
    assert folder is not None and (folder / DASHBOARD_FILE.name).exists()
    for f in folder.glob("*.json"):
        json.loads(f.read_text(encoding="utf-8"))


# ---- the dashboard ---------------------------------------------------------------------------------------


def all_panels(panels: list[dict] | None = None) -> list[dict]:
    out = []
    for p in DASHBOARD["panels"] if panels is None else panels:
        out.append(p)
        out += all_panels(p.get("panels", []))
    return out


def flux_queries() -> list[tuple[str, str]]:
    out = [(f"variable {v['name']}", v["query"]) for v in DASHBOARD["templating"]["list"] if v["type"] == "query"]
    out += [(f"panel {p['title']}", t["query"]) for p in all_panels() for t in p.get("targets", [])]
    return out


def test_dashboard_panels_and_variables_use_the_provisioned_datasource() -> None:
    uid = datasource()["uid"]
    assert DASHBOARD["uid"] and DASHBOARD.get("id") is None
    panels = [p for p in all_panels() if p["type"] != "row"]
    assert panels and len({p["id"] for p in panels}) == len(panels)
    for p in panels:
        assert p["datasource"] == {"type": "influxdb", "uid": uid}, p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"] == {"type": "influxdb", "uid": uid} and t["query"].strip(), p["title"]
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
    assert {"network", "zone"} <= set(variables)
    for name in ("network", "zone"):
        v = variables[name]
        assert v["type"] == "query" and v["datasource"] == {"type": "influxdb", "uid": uid}
        assert "schema.tagValues(" in v["query"] and f'tag: "{name}"' in v["query"]
    assert "${network}" in variables["zone"]["query"]  # zones of the chosen network


def _schema() -> dict[str, tuple[set[str], set[str]]]:
    return {
        schema.READINGS: (set(schema.READING_TAGS), set(schema.READING_FIELDS)),
        schema.DETECTIONS: (set(schema.DETECTION_TAGS), set(schema.DETECTION_FIELDS)),
        schema.ALERTS: (set(schema.ALERT_TAGS), set(schema.ALERT_FIELDS)),
    }


# the values a tag or string field can take, where the code has them as a closed list
ENUMS = {
    "network": set(NETWORKS), "quantity": set(schema.UNITS), "transition": set(typing.get_args(Transition)),
    "change": set(CHANGE_KINDS), "state": set(ALERT_STATES),
}
FLUX_COLUMNS = {"_time", "_value", "_field", "_measurement", "_start", "_stop"}


def test_every_flux_query_uses_only_the_sinks_schema() -> None:
    """Measurements, tags, fields and the literal values compared with them are the ones
    sentinel/stores/influx_schema.py writes; a renamed tag or field fails here, not on a blank panel."""
    known = _schema()
    for where, q in flux_queries():
        assert re.findall(r"bucket:\s*(\S+?)[,)\s]", q) == ["v.defaultBucket"], f"{where}: use the provisioned bucket"
        measurements = set(re.findall(r'r\._measurement == "([^"]+)"', q))
        assert measurements and measurements <= set(known), f"{where}: {measurements}"
        tags = set().union(*(known[m][0] for m in measurements))
        fields = set().union(*(known[m][1] for m in measurements))
        for f in re.findall(r'r\._field == "([^"]+)"', q):
            assert f in fields, f"{where}: no field {f!r} in {measurements}"
        derived = {k for ident in re.findall(r"identity:\s*\{([^}]*)\}", q)  # reduce() accumulators
                   for k in re.findall(r"(\w+):", ident)}
        allowed = tags | fields | FLUX_COLUMNS | derived
        for col in re.findall(r"\br\.(\w+)", q):
            assert col in allowed, f"{where}: r.{col} is not in the schema of {measurements}"
        for lists in re.findall(r"(?:columns|rowKey|columnKey):\s*\[([^\]]*)\]", q):
            for col in re.findall(r'"([^"]+)"', lists):
                assert col in allowed, f"{where}: column {col!r} is not in the schema of {measurements}"
        for col in re.findall(r'(?:column|valueColumn):\s*"([^"]+)"', q):
            assert col in allowed, f"{where}: column {col!r}"
        for tag in re.findall(r'tag:\s*"([^"]+)"', q):
            assert tag in tags, f"{where}: no tag {tag!r}"
        for col, value in re.findall(r'r\.(\w+) (?:==|!=) "([^"$]+)"', q):
            if col in ENUMS:
                assert value in ENUMS[col], f"{where}: {col} is never {value!r}"


UNIT_IDS = {"kPa": "pressurekpa", "m3/h": "suffix: m³/h", "%LEL": "suffix: %LEL", "degC": "celsius", "m": "lengthm"}


def test_readings_panels_show_the_canonical_unit_of_their_quantity() -> None:
    seen = set()
    for p in all_panels():
        for t in p.get("targets", []):
            m = re.search(r'r\.quantity == "(\w+)"', t["query"])
            if m:
                seen.add(m.group(1))
                assert p["fieldConfig"]["defaults"]["unit"] == UNIT_IDS[schema.UNITS[m.group(1)]], p["title"]
                assert "${zone}" in t["query"] and "${network}" in t["query"], p["title"]
    assert {"pressure", "flow", "gas_concentration"} <= seen


def _grade_mappings(field_config: dict) -> list[dict]:
    found = [prop["value"] for o in field_config.get("overrides", []) for prop in o["properties"]
             if prop["id"] == "mappings"]
    return found + ([field_config["defaults"]["mappings"]] if field_config["defaults"].get("mappings") else [])


def test_grades_are_shown_with_their_colours_and_chinese_labels() -> None:
    """Every mapping of grade numbers says 三级/二级/一级 in yellow/orange/red (sentinel.severity)."""
    expected = {str(int(s)): (s.grade_zh, s.label) for s in Severity}
    checked = 0
    for p in all_panels():
        for mappings in _grade_mappings(p.get("fieldConfig", {"defaults": {}})):
            for m in mappings:
                opts = m["options"]
                if m["type"] == "value" and set(expected) <= set(opts):
                    got = {k: (opts[k]["text"], opts[k]["color"]) for k in expected}
                    assert got == expected, p["title"]
                    checked += 1
    assert checked >= 3  # open alerts per zone, the city's worst grade, detections


def test_gas_panel_marks_the_default_rules_alarm_levels() -> None:
    rules = yaml.safe_load((ROOT / "rules" / "defaults" / "gas.yaml").read_text())["rules"]
    [rule] = [r for r in rules if r["kind"] == "threshold" and r["select"].get("quantity") == "gas_concentration"]
    [panel] = [p for p in all_panels() for t in p.get("targets", []) if '"gas_concentration"' in t["query"]]
    steps = {s["color"]: s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]}
    assert {grade: steps[grade] for grade in rule["high"]} == rule["high"]


# ---- the Kafka scale-out profile ---------------------------------------------------------------------------


def test_bridge_and_workers_are_the_scaleout_profile_on_the_kafka_service() -> None:
    props = dict(line.split("=", 1) for line in (ROOT / "deploy/kafka/server.properties").read_text().splitlines()
                 if "=" in line and not line.startswith("#"))
    plaintext = next(u for u in props["advertised.listeners"].split(",") if u.startswith("PLAINTEXT://"))
    for name in ("bridge", "worker"):
        svc = SERVICES[name]
        assert svc.get("profiles") == ["scaleout"], "the default stack stays one process"
        env = service_env(name)
        assert "PLAINTEXT://" + env["SENTINEL_KAFKA_BOOTSTRAP"] == plaintext, "clients use the advertised listener"
        assert svc["depends_on"]["kafka"]["condition"] == "service_healthy"
        assert env["SENTINEL_CATALOG"] == service_env("sentinel")["SENTINEL_CATALOG"], "one catalog everywhere"
    assert SERVICES["worker"]["deploy"]["replicas"] >= 2
    assert service_env("bridge")["SENTINEL_MQTT_SHARED_GROUP"], "bridges split the subscription when scaled"


def test_worker_settings_compose_gives_it_load(monkeypatch) -> None:
    for key in list(os.environ):
        if key.startswith("SENTINEL_"):
            monkeypatch.delenv(key)
    for key, value in service_env("worker").items():
        monkeypatch.setenv(key, value)
    s = Settings()
    assert s.store == ["influx"] and urlparse(s.influx_url).hostname == "influxdb"
    assert not str(s.influx_spool_dir).startswith("/data/"), "replicas must not share one spool directory"
    assert s.publish_alerts is False
    parsed = build_parser().parse_args(SERVICES["worker"]["command"])
    assert parsed.func.__name__ == "cmd_worker"


@pytest.mark.parametrize("name", ["bridge", "worker"])
def test_scaleout_health_checks_read_the_heartbeat_the_service_touches(name: str, tmp_path) -> None:
    svc = SERVICES[name]
    test = svc["healthcheck"]["test"]
    beat = svc["environment"]["SENTINEL_HEARTBEAT_FILE"]
    assert test[:3] == ["CMD", "python", "-c"] and f"'{beat}'" in test[3]
    limit = float(re.search(r"< (\d+)", test[3]).group(1))
    assert limit >= 3 * 5, "the services touch it every 5 s: a healthy one must not flap"
    code = test[3].replace(beat, str(tmp_path / "alive"))

    def check() -> int:
        return subprocess.run([sys.executable, "-c", code], timeout=30).returncode

    assert check() == 1
    from sentinel.heartbeat import Heartbeat

    Heartbeat(tmp_path / "alive").beat()
    assert check() == 0
    old = time.time() - limit - 5
    os.utime(tmp_path / "alive", (old, old))
    assert check() == 1
