"""The console's REST and event-stream API over real HTTP (uvicorn on loopback), beside a live processor.

Covers the role matrix (viewer / operator / engineer / no token on every endpoint), operator actions and
their audit trail, silences shared with the router's SilenceBook, readings, rules (upload, dry run,
activate with hot reload, roll back), the event stream, and that no password or token ever reaches a log.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pytest

from alerts.model import Alert
from alerts.routing.silences import SilenceBook
from rules.loader import load_rules
from sentinel.console.api_alerts import involved_sensors
from sentinel.console.app import create_app
from sentinel.console.cli import add_console_commands
from sentinel.console.config import ConsoleConfig
from sentinel.console.embed import start_in_process
from sentinel.console.ops_db import OpsDB
from sentinel.console.rules_manager import ActiveRulesBroken, RulesManager
from sentinel.console.server import ConsoleServer
from sentinel.console.silences import SilenceService
from sentinel.console.testing import ProcessorThread
from sentinel.rules_watch import RulesWatcher
from sentinel.severity import Severity
from tests.helpers import MIN, catalog, series_batch
from tests.servers import free_port

CAT = catalog(
    {"sensor_id": "P1", "network": "water", "zone": "Z1", "quantity": "pressure", "unit": "kPa", "interval_s": 60,
     "lat": 30.27, "lon": 120.15},
    {"sensor_id": "P2", "network": "water", "zone": "Z1", "quantity": "pressure", "unit": "kPa", "interval_s": 60,
     "lat": 30.28, "lon": 120.16},
    {"sensor_id": "F1", "network": "water", "zone": "Z1", "quantity": "flow", "unit": "m3/h", "role": "inlet",
     "interval_s": 60},
    {"sensor_id": "G1", "network": "gas", "zone": "G", "quantity": "gas_concentration", "unit": "%LEL",
     "role": "space", "interval_s": 60},
)
RULES = """\
version: 1
rules:
  - id: low-pressure
    kind: threshold
    select: {network: water, quantity: pressure}
    low: {yellow: 250, red: 200}
  - id: gas-lel
    kind: threshold
    select: {network: gas}
    high: {yellow: 10, red: 50}
"""
STRICTER = RULES.replace("{yellow: 250, red: 200}", "{yellow: 280, red: 200}")
PASSWORDS = {"vera": "viewer-secret-1", "otto": "operator-secret-2", "erin": "engineer-secret-3"}
ROLE_OF = {"vera": "viewer", "otto": "operator", "erin": "engineer"}
ROLES = ("viewer", "operator", "engineer")


@dataclass
class Site:
    url: str
    tmp: Path
    ops: OpsDB
    proc: ProcessorThread
    book: SilenceBook
    rules_file: Path
    tokens: dict[str, str] = field(default_factory=dict)  # role -> machine token
    t0: int = 0

    def client(self, role: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def open_alert(self, sensor: str) -> Alert:
        return next(a for a in self.proc.pipeline.book.open_alerts() if a.subject == sensor)


def readings(t0: int, n: int = 30, **drops: float) -> object:
    """n minutes of steady readings; a sensor named in `drops` falls to that value for the last third."""
    cols = {"P1": np.full(n, 300.0), "P2": np.full(n, 300.0), "F1": np.full(n, 40.0), "G1": np.full(n, 1.0)}
    for sid, v in drops.items():
        cols[sid][2 * n // 3:] = v
    return series_batch(CAT, cols, t0=t0)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("console")
    rules_file = tmp / "rules.yaml"
    rules_file.write_text(RULES, encoding="utf-8")
    ops = OpsDB(tmp / "ops.sqlite")
    for user, pw in PASSWORDS.items():
        ops.add_user(user, ROLE_OF[user], pw)
    store = tmp / "results.sqlite"
    book = SilenceBook()
    with ProcessorThread(CAT, load_rules([rules_file]), store) as proc:
        t0 = time.time_ns() - 60 * MIN
        proc.feed(readings(t0, P1=150.0, G1=20.0))  # P1 red, G1 yellow
        app = create_app(ConsoleConfig(ops_db=ops.path, heartbeat_s=0.5, stream_poll_s=0.1), store_path=store,
                         catalog=CAT, actions=proc.actions(), rules=RulesManager(rules_file, ops, CAT, store),
                         silences=book)
        server = ConsoleServer(app, "127.0.0.1", free_port(), access_log=True, log_level="info").start()
        s = Site(server.url, tmp, ops, proc, book, rules_file, t0=t0)
        for user, role in ROLE_OF.items():
            s.tokens[role] = ops.issue_token(user, role, "api", "matrix", 3600)[0]
        try:
            yield s
        finally:
            server.stop()


# -- the role matrix: every endpoint, every role, and no token -----------------------------------------------------

MATRIX = [  # method, path, json body, the least role allowed
    ("GET", "/api/me", None, "viewer"),
    ("GET", "/api/alerts", None, "viewer"),
    ("GET", "/api/alerts/0000000000000000", None, "viewer"),
    ("POST", "/api/alerts/0000000000000000/acknowledge", {"note": "x"}, "operator"),
    ("POST", "/api/alerts/0000000000000000/resolve", {"note": "x"}, "operator"),
    ("POST", "/api/alerts/0000000000000000/notes", {"text": "x"}, "operator"),
    ("GET", "/api/silences", None, "viewer"),
    ("GET", "/api/silences/nope", None, "viewer"),
    ("POST", "/api/silences", {"rule": "matrix-only", "duration_minutes": 1, "comment": "matrix"}, "operator"),
    ("DELETE", "/api/silences/nope", None, "operator"),
    ("GET", "/api/sensors", None, "viewer"),
    ("GET", "/api/sensors/P1", None, "viewer"),
    ("GET", "/api/sensors/P1/readings", None, "viewer"),
    ("GET", "/api/zones", None, "viewer"),
    ("GET", "/api/audit", None, "viewer"),
    ("GET", "/api/rules", None, "viewer"),
    ("GET", "/api/rules/versions/1", None, "viewer"),
    ("POST", "/api/rules/validate", {"text": RULES}, "engineer"),
    ("POST", "/api/rules/versions", {"text": RULES, "comment": "matrix"}, "engineer"),
    ("POST", "/api/rules/versions/999999/dry-run", None, "engineer"),
    ("POST", "/api/rules/versions/999999/activate", {}, "engineer"),
    ("POST", "/api/rules/rollback", {"comment": "matrix"}, "engineer"),
    ("GET", "/api/tokens", None, "viewer"),
    ("POST", "/api/tokens", {"name": "matrix-bot", "role": "viewer"}, "viewer"),
    ("DELETE", "/api/tokens/nope", None, "viewer"),
    ("POST", "/api/auth/logout", None, "viewer"),  # machine tokens survive a logout: only sessions end
]


@pytest.mark.parametrize("role", [None, *ROLES])
def test_each_role_can_do_exactly_what_it_should(site: Site, role: str | None) -> None:
    wrong = []
    with site.client(role) as c:
        for method, path, body, least in MATRIX:
            r = c.request(method, path, json=body)
            allowed = role is not None and ROLES.index(role) >= ROLES.index(least)
            if role is None:
                ok = r.status_code == 401 and r.headers.get("www-authenticate") == "Bearer"
            elif allowed:
                ok = r.status_code not in (401, 403, 500)
            else:
                ok = r.status_code == 403 and least in r.json()["detail"]
            if not ok:
                wrong.append(f"{method} {path} as {role}: {r.status_code} {r.text[:120]}")
    assert not wrong, "\n".join(wrong)


def test_stream_needs_a_token(site: Site) -> None:
    with site.client() as c:
        assert c.get("/api/stream").status_code == 401


# -- login, sessions, tokens ---------------------------------------------------------------------------------------

def login(c: httpx.Client, user: str, password: str | None = None) -> httpx.Response:
    return c.post("/api/auth/login", json={"username": user, "password": password or PASSWORDS[user]})


def test_login_sets_an_httponly_cookie_and_logout_ends_the_session(site: Site) -> None:
    with site.client() as c:
        r = login(c, "otto")
        assert r.status_code == 200
        body = r.json()
        assert (body["role"], body["kind"]) == ("operator", "session") and body["token"].startswith("lss_")
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert c.get("/api/me").json()["actor"] == "otto"  # the cookie alone reads
        # a change made with the cookie needs the console's header (a cross-site form cannot add it)
        assert c.post("/api/alerts/x/notes", json={"text": "t"}).status_code == 403
        assert c.post("/api/alerts/x/notes", json={"text": "t"}, headers={"X-Sentinel-Console": "1"}).status_code == 404
        assert c.post("/api/auth/logout", headers={"X-Sentinel-Console": "1"}).status_code == 204
        assert c.get("/api/me", headers={"Authorization": f"Bearer {body['token']}"}).status_code == 401


def test_failed_logins_are_audited_without_naming_unknown_accounts(site: Site) -> None:
    with site.client() as c:
        assert login(c, "otto", "wrong-password").status_code == 401
        assert login(c, "otto-typo-hunter2", "whatever").status_code == 401
    failed = site.ops.audit_entries(action="auth.login_failed", limit=10)
    actors = {e.actor for e in failed}
    assert "otto" in actors and "(unknown user)" in actors and "otto-typo-hunter2" not in actors


def test_disabled_users_and_expired_or_revoked_tokens_are_refused(site: Site) -> None:
    site.ops.add_user("temp", "viewer", "temporary-pw")
    short, _ = site.ops.issue_token("temp", "viewer", "api", "short", ttl_s=0.2)
    longer, info = site.ops.issue_token("temp", "viewer", "api", "long", ttl_s=3600)
    with httpx.Client(base_url=site.url) as c:
        assert c.get("/api/me", headers={"Authorization": f"Bearer {longer}"}).status_code == 200
        time.sleep(0.3)
        assert c.get("/api/me", headers={"Authorization": f"Bearer {short}"}).status_code == 401
        site.ops.set_disabled("temp")
        assert c.get("/api/me", headers={"Authorization": f"Bearer {longer}"}).status_code == 401
        assert login(c, "temp", "temporary-pw").status_code == 401
    assert site.ops.token(info.id).revoked_ns is not None


def test_machine_tokens_are_capped_at_their_owners_role_and_attributed(site: Site) -> None:
    with site.client("operator") as c:
        assert c.post("/api/tokens", json={"name": "too-much", "role": "engineer"}).status_code == 403
        r = c.post("/api/tokens", json={"name": "wallboard-3", "role": "viewer", "ttl_days": 1})
        assert r.status_code == 201
        issued = r.json()
        assert issued["role"] == "viewer" and issued["token"] not in json.dumps(c.get("/api/tokens").json())
    with httpx.Client(base_url=site.url, headers={"Authorization": f"Bearer {issued['token']}"}) as bot:
        me = bot.get("/api/me").json()
        assert (me["role"], me["actor"]) == ("viewer", "otto/wallboard-3")
        assert bot.post("/api/alerts/x/acknowledge", json={}).status_code == 403
    with site.client("operator") as c:
        assert c.delete(f"/api/tokens/{issued['token_id']}").status_code == 204
    with httpx.Client(base_url=site.url, headers={"Authorization": f"Bearer {issued['token']}"}) as bot:
        assert bot.get("/api/me").status_code == 401
    assert {e.action for e in site.ops.audit_entries(target=f"token:{issued['token_id']}")} == {
        "token.create", "token.revoke"}


def test_passwords_and_tokens_never_reach_a_log_or_the_audit(site: Site, caplog: pytest.LogCaptureFixture,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = [PASSWORDS["erin"], "not-the-password"]
    with site.client() as c:
        r = login(c, "erin")
        secrets.append(r.json()["token"])
        login(c, "erin", "not-the-password")
        with httpx.Client(base_url=site.url, headers={"Authorization": f"Bearer {secrets[2]}"}) as e:
            e.get("/api/alerts")
            secrets.append(e.post("/api/tokens", json={"name": "ci"}).json()["token"])
            e.get("/api/me", headers={"Authorization": "Bearer lss_forged"})
    # the CLI too: a password on stdin, a token printed once on stdout
    parser = argparse.ArgumentParser()
    add_console_commands(parser.add_subparsers(dest="cmd"))
    monkeypatch.setattr("sys.stdin", io.StringIO("cli-password-9\n"))
    args = parser.parse_args(["console", "user", "add", "cli-user", "--role", "viewer", "--ops-db", str(site.ops.path)])
    assert args.func(args) == 0
    secrets.append("cli-password-9")
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    args = parser.parse_args(["console", "token", "add", "--user", "cli-user", "--name", "bot", "--ops-db",
                              str(site.ops.path)])
    assert args.func(args) == 0
    secrets.append(out.getvalue().strip())
    assert any("uvicorn.access" in r.name for r in caplog.records), "access log was on: requests were logged"
    # everything the server side logged (the test's own HTTP client, httpx/httpcore, traces headers at DEBUG)
    server_side = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.args}" for r in server_side)
    audit = json.dumps([e.__dict__ for e in site.ops.audit_entries(limit=1000)])
    raw = site.ops.path.read_bytes() + b"".join(p.read_bytes() for p in site.tmp.glob("ops.sqlite-wal"))
    for s in secrets:
        assert s not in logged and s not in audit and s.encode() not in raw
    assert site.ops.authenticate("cli-user", "cli-password-9") is not None


# -- alerts and operator actions -----------------------------------------------------------------------------------

def test_alert_list_and_detail_say_what_fired_where_and_with_which_thresholds(site: Site) -> None:
    p1 = site.open_alert("P1")
    with site.client("viewer") as c:
        listed = c.get("/api/alerts", params={"network": "water"}).json()
        assert p1.alert_id in [a["alert_id"] for a in listed["alerts"]]
        assert all(a["network"] == "water" for a in listed["alerts"])
        assert c.get("/api/alerts", params={"severity": "purple"}).status_code == 422
        d = c.get(f"/api/alerts/{p1.alert_id}").json()
    assert (d["alert"]["severity"], d["alert"]["grade_zh"], d["alert"]["zone"]) == ("red", "一级", "Z1")
    assert d["rule"]["id"] == "low-pressure" and d["rule"]["params"]["low"] == {"yellow": 250.0, "red": 200.0}
    assert d["sensors"] == ["P1"] and d["history"][0]["change"] == "opened"


def test_zone_alerts_chart_the_zone_boundary_meters() -> None:
    zone_alert = Alert("a", "zb", "zone_balance", "water", "Z1", "Z1", None, Severity.ORANGE, "firing", 0, 0, 1.0, "m")
    assert involved_sensors(zone_alert, CAT) == ["F1"]


def test_operator_acknowledges_then_resolves_through_the_processor_with_an_audit_trail(site: Site) -> None:
    g1 = site.open_alert("G1")
    with site.client("operator") as c:
        r = c.post(f"/api/alerts/{g1.alert_id}/acknowledge", json={"note": "crew on the way"})
        assert r.status_code == 200, r.text
        assert (r.json()["state"], r.json()["acked_by"]) == ("acknowledged", "otto/matrix")
        assert site.proc.pipeline.book.get(g1.alert_id).state == "acknowledged"  # the processor's own book
        assert c.post(f"/api/alerts/{g1.alert_id}/notes", json={"text": "valve V-3 closed"}).status_code == 201
        assert c.post(f"/api/alerts/{g1.alert_id}/resolve", json={"note": ""}).status_code == 422  # why is required
        r = c.post(f"/api/alerts/{g1.alert_id}/resolve", json={"note": "ventilated, 0 %LEL"})
        assert r.json()["state"] == "resolved" and r.json()["resolved_by"] == "otto/matrix"
        again = c.post(f"/api/alerts/{g1.alert_id}/acknowledge", json={})
        assert again.status_code == 409 and "resolved" in again.json()["detail"]
        d = c.get(f"/api/alerts/{g1.alert_id}").json()
    assert [h["change"] for h in d["history"]][-2:] == ["acknowledged", "resolved"]
    assert d["notes"][0]["text"] == "valve V-3 closed" and d["notes"][0]["author"] == "otto/matrix"
    trail = site.ops.audit_entries(target=f"alert:{g1.alert_id}")
    assert [(e.action, e.actor, e.role) for e in reversed(trail)] == [
        ("alert.acknowledge", "otto/matrix", "operator"), ("alert.note", "otto/matrix", "operator"),
        ("alert.resolve", "otto/matrix", "operator")]
    assert trail[0].detail["note"] == "ventilated, 0 %LEL" and trail[0].detail["severity"] == "yellow"


def test_a_console_serving_a_store_alone_explains_why_it_cannot_act(site: Site, tmp_path: Path) -> None:
    app = create_app(ConsoleConfig(ops_db=site.ops.path), store_path=site.proc.store_path, catalog=CAT)
    server = ConsoleServer(app, "127.0.0.1", free_port()).start()
    try:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {site.tokens['operator']}"}) as c:
            p1 = site.open_alert("P1")
            assert c.get(f"/api/alerts/{p1.alert_id}").status_code == 200  # reading works
            r = c.post(f"/api/alerts/{p1.alert_id}/acknowledge", json={})
            assert r.status_code == 503 and "sentinel run --console" in r.json()["detail"]
            assert c.get("/api/health").json()["actions"] is False
            assert c.post("/api/rules/validate", json={"text": RULES}, headers={
                "Authorization": f"Bearer {site.tokens['engineer']}"}).status_code == 503
    finally:
        server.stop()
    missing = create_app(ConsoleConfig(ops_db=tmp_path / "o.sqlite"), store_path=tmp_path / "none.sqlite", catalog=CAT)
    server = ConsoleServer(missing, "127.0.0.1", free_port()).start()
    try:
        with httpx.Client(base_url=server.url) as c:
            assert c.get("/api/health").json()["status"] == "degraded"
    finally:
        server.stop()


# -- silences ------------------------------------------------------------------------------------------------------

def test_a_zone_silence_mutes_its_alerts_for_the_router_and_survives_a_restart(site: Site) -> None:
    p1 = site.open_alert("P1")
    with site.client("operator") as c:
        assert c.post("/api/silences", json={"zone": "Z9", "duration_minutes": 30, "comment": "x"}).status_code == 422
        assert c.post("/api/silences", json={"duration_minutes": 30, "comment": "all"}).status_code == 422
        assert c.post("/api/silences", json={"zone": "Z1", "comment": "no end"}).status_code == 422
        r = c.post("/api/silences", json={"network": "water", "zone": "Z1", "duration_minutes": 120,
                                          "comment": "main replacement, work order 4411"})
        assert r.status_code == 201, r.text
        sid = r.json()["id"]
        assert site.book.matches(p1, time.time_ns()).id == sid  # the router's book has it at once
        assert next(a for a in c.get("/api/alerts").json()["alerts"] if a["alert_id"] == p1.alert_id)[
            "silenced_by"] == sid
        assert next(z for z in c.get("/api/zones").json() if z["key"] == "water/Z1")["silenced"] is True
        restored = SilenceService(OpsDB(site.ops.path)).book  # what a restarted console loads
        assert restored.matches(p1, time.time_ns()).id == sid
        r = c.delete(f"/api/silences/{sid}")
        assert r.json()["status"] == "expired" and r.json()["expired_by"] == "otto/matrix"
        assert site.book.matches(p1, time.time_ns()) is None
        assert c.delete(f"/api/silences/{sid}").status_code == 409
        assert sid in [s["id"] for s in c.get("/api/silences", params={"state": "all"}).json()["silences"]]
    assert [e.action for e in reversed(site.ops.audit_entries(target=f"silence:{sid}"))] == [
        "silence.add", "silence.expire"]


# -- catalog and readings ------------------------------------------------------------------------------------------

def test_sensors_zones_and_readings_over_a_time_range(site: Site) -> None:
    with site.client("viewer") as c:
        assert [s["sensor_id"] for s in c.get("/api/sensors", params={"zone": "Z1"}).json()] == ["P1", "P2", "F1"]
        assert c.get("/api/sensors/NOPE").status_code == 404
        zones = {z["key"]: z for z in c.get("/api/zones").json()}
        assert zones["water/Z1"]["worst"] == "red" and zones["water/Z1"]["lat"] == pytest.approx(30.275)
        assert zones["gas/G"]["lat"] is None
        r = c.get("/api/sensors/P1/readings", params={"start": site.t0, "end": site.t0 + 10 * MIN}).json()  # ns
        assert r["unit"] == "kPa" and len(r["time_ns"]) == 11 and r["value"][0] == 300.0
        start_ms, end_ms = site.t0 // 10**6, site.t0 // 10**6 + 10 * 60_000  # epoch ms, as the page sends
        thin = c.get("/api/sensors/P1/readings", params={"start": start_ms, "end": start_ms + 3_600_000,
                                                          "max_points": 10}).json()
        assert thin["downsampled"] and len(thin["time_ns"]) <= 10 and min(thin["value"]) == 150.0  # the dip survives
        iso = c.get("/api/sensors/P1/readings", params={"start": "2000-01-01T00:00:00Z", "end": "2000-01-02"}).json()
        assert iso["time_ns"] == []
        assert c.get("/api/sensors/P1/readings", params={"start": "yesterday"}).status_code == 422
        assert c.get("/api/sensors/P1/readings", params={"start": end_ms, "end": start_ms}).status_code == 422


# -- rules ---------------------------------------------------------------------------------------------------------

def test_rules_upload_reports_located_errors(site: Site) -> None:
    bad = ("version: 1\nrules:\n  - id: low-pressure\n    kind: threshold\n    select: {network: water}\n"
           "    low: {red: 300, yellow: 200}\n")
    with site.client("engineer") as c:
        r = c.post("/api/rules/versions", json={"text": bad, "name": "water.yaml"})
    assert r.status_code == 422
    (err,) = r.json()["errors"]
    assert err["file"] == "water.yaml" and err["line"] == 3 and "low-pressure" in err["field"]
    assert "yellow to orange to red" in err["message"]


def test_dry_run_activate_hot_reload_and_roll_back(site: Site) -> None:
    watcher = RulesWatcher([site.rules_file])  # what the running processor polls
    with site.client("engineer") as c:
        before = c.get("/api/rules").json()
        v = c.post("/api/rules/versions", json={"text": STRICTER, "comment": "raise the yellow floor"}).json()
        assert v["version"] > before["active_version"] and not v["active"]
        run = c.post(f"/api/rules/versions/{v['version']}/dry-run", params={"hours": 2}).json()
        assert run["readings"] > 0 and run["diff"]["changed"] == [] and run["diff"]["removed"] == []
        # the stricter floor (280) is no different on a 300 -> 150 step: same alerts, same grades
        assert len(run["active"]) == len(run["candidate"])
        r = c.post(f"/api/rules/versions/{v['version']}/activate", json={"comment": "approved by shift lead"})
        assert r.status_code == 200 and r.json()["action"] == "activate"
        assert site.rules_file.read_text(encoding="utf-8") == STRICTER
        reloaded = watcher.poll()
        assert reloaded is not None and reloaded.rules[0].low[Severity.YELLOW] == 280
        state = c.get("/api/rules").json()
        assert state["active_version"] == v["version"] and state["rollback_to"] == before["active_version"]
        r = c.post("/api/rules/rollback", json={"comment": "too noisy"})
        assert r.json()["version"] == before["active_version"]
        assert site.rules_file.read_text(encoding="utf-8") == RULES
        assert c.post("/api/rules/rollback", json={}).status_code in (200, 409)
    actions = [e.action for e in site.ops.audit_entries(actor="erin/matrix", limit=50)]
    assert {"rules.upload", "rules.activate", "rules.rollback"} <= set(actions)
    assert not list(site.rules_file.parent.glob(".rules.yaml.*.tmp"))  # atomic writes leave nothing behind


def test_a_hand_edited_rules_file_is_adopted_as_a_version(tmp_path: Path) -> None:
    f = tmp_path / "r.yaml"
    f.write_text(RULES, encoding="utf-8")
    ops = OpsDB(tmp_path / "ops.sqlite")
    m = RulesManager(f, ops, CAT, tmp_path / "s.sqlite")
    first = m.active_version()
    f.write_text(STRICTER, encoding="utf-8")
    m.adopt_disk()
    assert m.stack() == [first, first + 1] and ops.rule_version(first + 1).uploaded_by == "system"
    dup = STRICTER.replace("gas-lel", "low-pressure")
    with pytest.raises(Exception, match="duplicate rule id"):
        m.validate(dup)
    unexplained = "rules:\n  - {id: mnf, kind: night_flow, explained_by: [nope]}\n"
    with pytest.raises(Exception, match="explained_by 'nope' is not a rule in these files"):
        m.validate(unexplained)  # the console checks what the loader would refuse on reload


# -- the event stream ----------------------------------------------------------------------------------------------

class Events:
    """Reads server-sent events off one streaming response (heartbeats keep it moving)."""

    def __init__(self, resp: httpx.Response) -> None:
        self.lines = resp.iter_lines()

    def until(self, done: Callable[[list], bool], timeout: float = 10.0) -> list[tuple[str, str, dict]]:
        out: list[tuple[str, str, dict]] = []
        ev: dict[str, str] = {}
        deadline = time.monotonic() + timeout
        for line in self.lines:
            if line.startswith(("event:", "data:", "id:")):
                k, _, v = line.partition(":")
                ev[k] = v.strip()
            elif line == "" and "event" in ev:
                out.append((ev["event"], ev.get("id", ""), json.loads(ev.get("data", "null"))))
                ev = {}
                if done(out):
                    return out
            if time.monotonic() > deadline:
                break
        raise AssertionError(f"stream ended or timed out; got {[e[0] for e in out]}")


def test_stream_pushes_new_alerts_and_audit_entries_and_resumes(site: Site) -> None:
    with site.client("viewer") as c, c.stream("GET", "/api/stream") as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        events = Events(resp)
        events.until(lambda ev: ev[-1][0] == "hello")
        site.proc.feed(readings(site.t0 + 30 * MIN, P2=180.0))  # P2 drops while the stream is open
        got = events.until(lambda ev: any(e[0] == "change" and e[2]["alert"]["subject"] == "P2" for e in ev))
        change = next(e for e in got if e[0] == "change" and e[2]["alert"]["subject"] == "P2")
        assert change[2]["change"] == "opened" and change[2]["alert"]["severity"] == "red"
        with site.client("operator") as op:
            op.post(f"/api/alerts/{change[2]['alert']['alert_id']}/acknowledge", json={"note": "on it"})
        got = events.until(lambda ev: any(e[0] == "audit" and e[2]["action"] == "alert.acknowledge" for e in ev))
        assert any(e[0] == "change" and e[2]["change"] == "acknowledged" for e in got)
        events.until(lambda ev: ev[-1][0] == "heartbeat")
        last_id = change[1]
    # a reconnecting EventSource sends Last-Event-ID: everything after it comes again, nothing before
    with site.client("viewer") as c, c.stream("GET", "/api/stream", headers={"Last-Event-ID": last_id}) as resp:
        got = Events(resp).until(lambda ev: any(e[0] == "change" and e[2]["change"] == "acknowledged" for e in ev))
        assert not any(e[0] == "change" and e[2]["change"] == "opened" and e[2]["alert"]["subject"] == "P2"
                       for e in got)


def test_a_revoked_token_ends_its_stream(site: Site) -> None:
    token, info = site.ops.issue_token("vera", "viewer", "api", "stream-test", 3600)
    with httpx.Client(base_url=site.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c, \
            c.stream("GET", "/api/stream") as resp:
        events = Events(resp)
        events.until(lambda ev: ev[-1][0] == "hello")
        site.ops.revoke_token(info.id)
        assert events.until(lambda ev: ev[-1][0] == "bye")[-1][2]["reason"].startswith("token")


# -- the command line ------------------------------------------------------------------------------------------

CLI = ("import sys, argparse; from sentinel.console.cli import add_console_commands; "
       "p = argparse.ArgumentParser(prog='sentinel'); add_console_commands(p.add_subparsers(dest='c')); "
       "a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))")


def test_cli_user_commands_refuse_bad_input(site: Site, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    parser = argparse.ArgumentParser()
    add_console_commands(parser.add_subparsers(dest="cmd"))
    ops = ["--ops-db", str(tmp_path / "ops.sqlite")]
    pw = tmp_path / "pw"
    pw.write_text("short\n")
    args = parser.parse_args(["console", "user", "add", "li.na", "--role", "operator", "--password-file", str(pw),
                              *ops])
    assert args.func(args) == 2 and "at least 8" in capsys.readouterr().err
    pw.write_text("long-enough-pw\n")
    assert args.func(args) == 0
    assert args.func(args) == 2 and "exists" in capsys.readouterr().err
    args = parser.parse_args(["console", "user", "role", "li.na", "viewer", *ops])
    assert args.func(args) == 0
    args = parser.parse_args(["console", "token", "add", "--user", "li.na", "--name", "x", "--role", "engineer", *ops])
    assert args.func(args) == 2 and "at most role viewer" in capsys.readouterr().err
    args = parser.parse_args(["console", "user", "disable", "li.na", *ops])
    assert args.func(args) == 0
    assert OpsDB(tmp_path / "ops.sqlite").authenticate("li.na", "long-enough-pw") is None
    with pytest.raises(SystemExit):
        parser.parse_args(["console", "user", "add", "x", "--role", "admin", *ops])


def test_cli_serve_runs_the_console_over_a_store_alone(site: Site, tmp_path: Path) -> None:
    (tmp_path / "catalog.csv").write_text(CAT.to_csv(), encoding="utf-8")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", CLI, "console", "serve", "--db", str(site.proc.store_path),
                             "--catalog", str(tmp_path / "catalog.csv"), "--listen", f"127.0.0.1:{port}",
                             "--ops-db", str(site.ops.path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5,
                          headers={"Authorization": f"Bearer {site.tokens['operator']}"}) as c:
            deadline = time.monotonic() + 20
            while True:
                try:
                    if c.get("/api/health").json()["store"] == "ok":
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"serve did not come up: {proc.stdout.read() if proc.poll() is not None else ''}")
                time.sleep(0.1)
            listed = c.get("/api/alerts", params={"state": "all"}).json()["alerts"]
            assert {a["alert_id"] for a in listed} == {a.alert_id for a in site.proc.pipeline.alerts.values()}
            assert c.post(f"/api/alerts/{listed[0]['alert_id']}/acknowledge", json={}).status_code == 503
            assert "管网哨兵" in c.get("/").text
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
    assert proc.returncode in (0, -signal.SIGTERM), out  # uvicorn shuts down cleanly, then re-raises SIGTERM


def test_a_broken_rules_file_on_disk_keeps_the_last_good_rules_on_show(tmp_path: Path) -> None:
    f = tmp_path / "r.yaml"
    f.write_text(RULES, encoding="utf-8")
    ops = OpsDB(tmp_path / "ops.sqlite")
    m = RulesManager(f, ops, CAT, tmp_path / "s.sqlite")
    app = create_app(ConsoleConfig(ops_db=ops.path), store_path=tmp_path / "s.sqlite", catalog=CAT, rules=m)
    con = app.state.console
    assert [r.id for r in con.active_rules().rules] == ["low-pressure", "gas-lel"]
    f.write_text("rules: [oops", encoding="utf-8")  # a hand edit gone wrong: the processor keeps its rules
    assert [r.id for r in con.active_rules().rules] == ["low-pressure", "gas-lel"]
    with pytest.raises(ActiveRulesBroken, match="fix them or roll back"):
        m.active_ruleset()


def test_start_in_process_is_what_sentinel_run_console_calls(tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(RULES, encoding="utf-8")
    ops = OpsDB(tmp_path / "ops.sqlite")
    ops.add_user("otto", "operator", PASSWORDS["otto"])
    book = SilenceBook()
    with ProcessorThread(CAT, load_rules([rules_file]), tmp_path / "results.sqlite") as proc:
        proc.feed(readings(time.time_ns() - 60 * MIN, G1=60.0))
        server = start_in_process(proc.runner, CAT, store_path=tmp_path / "results.sqlite", ops_db=ops.path,
                                  listen="127.0.0.1:0", rule_files=[rules_file], silences=book)
        try:
            assert server.port != 0
            with httpx.Client(base_url=server.url) as c:
                token = login(c, "otto").json()["token"]
                h = {"Authorization": f"Bearer {token}"}
                (alert,) = c.get("/api/alerts", headers=h).json()["alerts"]
                r = c.post(f"/api/alerts/{alert['alert_id']}/acknowledge", json={"note": "on it"}, headers=h)
                assert r.status_code == 200 and r.json()["acked_by"] == "otto"
                assert c.post("/api/silences", headers=h, json={"network": "gas", "zone": "G", "duration_minutes": 60,
                                                                "comment": "detector swap"}).status_code == 201
                assert c.get("/api/rules", headers=h).json()["managed_file"] == str(rules_file)
            assert proc.pipeline.book.get(alert["alert_id"]).acked_by == "otto"
            assert len(book.active(time.time_ns())) == 1  # the router's book
        finally:
            server.stop()
