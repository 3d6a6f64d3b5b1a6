"""The operator console in a real browser: Debian's headless Chromium, driven over the DevTools protocol.

A burst is simulated through a live processor (LiveRunner on its own thread, as `sentinel run`), the red
alert appears on the board through the event stream without a reload, an operator acknowledges it with
a reason, the board shows the new state and the audit trail the entry. Screenshots land in tmp_path.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.sync.client import connect

from rules.loader import load_rules
from sentinel.console.app import create_app
from sentinel.console.config import ConsoleConfig
from sentinel.console.ops_db import OpsDB
from sentinel.console.rules_manager import RulesManager
from sentinel.console.server import ConsoleServer
from sentinel.console.store_reader import StoreReader
from sentinel.console.testing import ProcessorThread
from tests.helpers import MIN, catalog, series_batch
from tests.servers import free_port

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--mute-audio", "--hide-scrollbars"]

# A small city district: two water DMAs and a heating loop with coordinates (the map), and a gas
# district without (the zone list).
CAT = catalog(
    *({"sensor_id": sid, "network": "water", "zone": zone, "quantity": "pressure", "unit": "kPa", "interval_s": 60,
       "lat": lat, "lon": lon} for sid, zone, lat, lon in [
        ("WP-101", "DMA-01", 30.2741, 120.1551), ("WP-102", "DMA-01", 30.2795, 120.1622),
        ("WP-103", "DMA-01", 30.2702, 120.1650), ("WP-201", "DMA-02", 30.2600, 120.1800),
        ("WP-202", "DMA-02", 30.2655, 120.1902), ("WP-203", "DMA-02", 30.2560, 120.1880)]),
    {"sensor_id": "HT-01", "network": "heat", "zone": "LOOP-N", "quantity": "temperature", "unit": "degC",
     "role": "supply", "interval_s": 60, "lat": 30.2850, "lon": 120.1750},
    {"sensor_id": "GD-01", "network": "gas", "zone": "GAS-E", "quantity": "gas_concentration", "unit": "%LEL",
     "role": "space", "interval_s": 60},
)
RULES = """\
version: 1
rules:
  - id: water-pressure-low
    kind: threshold
    description: 供水压力低于最低服务压力 Below minimum service pressure
    select: {network: water, quantity: pressure}
    low: {yellow: 240, orange: 200, red: 160}
  - id: gas-lel
    kind: threshold
    description: 地下空间可燃气体 Combustible gas in a manhole
    select: {network: gas, quantity: gas_concentration}
    high: {yellow: 10, red: 50}
"""
OPERATOR = ("wang.li", "ops-pass-123")
ENGINEER = ("zhao.min", "eng-pass-456")
VIEWER = ("wallboard", "view-pass-789")


class Chromium:
    """Just enough of the DevTools protocol to drive a page as a person would: navigate, read, click, type."""

    def __init__(self, binary: str, profile: Path, width: int = 1600, height: int = 1000) -> None:
        self.proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
                                      f"--window-size={width},{height}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.05)
        port = int(port_file.read_text().splitlines()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            page = next(t for t in json.load(r) if t["type"] == "page")
        self.ws = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10)
        self._id = 0
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=30))
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def eval(self, expr: str) -> Any:
        r = self.send("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expr}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait(self, expr: str, timeout: float = 15.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = self.eval(expr)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {expr}")
            time.sleep(0.1)

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)
        self.wait("document.readyState === 'complete' && !!document.body")

    def click(self, selector: str) -> None:
        """A real mouse click at the element's centre (so an overlay or a disabled button would stop it)."""
        x, y = self.wait(f"""(() => {{ const el = document.querySelector({json.dumps(selector)});
            if (!el || el.offsetParent === null) return null; el.scrollIntoView({{block: 'center'}});
            const r = el.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()""")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def type(self, selector: str, text: str) -> None:
        self.click(selector)
        self.send("Input.insertText", text=text)

    def text(self, selector: str) -> str:
        return self.eval(f"(document.querySelector({json.dumps(selector)}) || {{}}).textContent || ''")

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"]))
        return path

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def log_in(browser: Chromium, url: str, user: str, password: str) -> None:
    browser.goto(url)
    browser.wait("!document.querySelector('#login').hidden")
    browser.type("#login-user", user)
    browser.type("#login-pass", password)
    browser.click("#login-submit")
    browser.wait("document.querySelector('#live').classList.contains('on')")


def burst(now_ns: int) -> tuple[Any, Any]:
    """Readings for the last hour: all normal, then WP-102's pressure collapsing (a main burst) while its
    neighbours sag, and a gas detector creeping up in the unmapped gas district."""
    n = 60
    t0 = now_ns - n * MIN
    rng = np.random.default_rng(7)
    cols = {sid: 300 + rng.normal(0, 2, n) for sid in ("WP-101", "WP-102", "WP-103", "WP-201", "WP-202", "WP-203")}
    cols["HT-01"] = 95 + rng.normal(0, 0.3, n)
    cols["GD-01"] = np.clip(rng.normal(1, 0.3, n), 0, None)
    calm = series_batch(CAT, {k: v[:45] for k, v in cols.items()}, t0=t0)
    cols["WP-102"][45:] = np.linspace(290, 120, 15)
    cols["WP-101"][45:] = np.linspace(298, 250, 15)
    cols["GD-01"][50:] = np.linspace(4, 14, 10)
    hit = series_batch(CAT, {k: v[45:] for k, v in cols.items()}, t0=t0 + 45 * MIN)
    return calm, hit


@pytest.fixture
def console_site(tmp_path: Path) -> Iterator[tuple[str, ProcessorThread]]:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(RULES, encoding="utf-8")
    ops = OpsDB(tmp_path / "ops.sqlite")
    for (user, pw), role in ((OPERATOR, "operator"), (ENGINEER, "engineer"), (VIEWER, "viewer")):
        ops.add_user(user, role, pw)
    store = tmp_path / "results.sqlite"
    with ProcessorThread(CAT, load_rules([rules_file]), store) as proc:
        app = create_app(ConsoleConfig(ops_db=ops.path, heartbeat_s=2.0), store_path=store, catalog=CAT,
                         actions=proc.actions(), rules=RulesManager(rules_file, ops, CAT, store))
        server = ConsoleServer(app, "127.0.0.1", free_port()).start()
        try:
            yield server.url, proc
        finally:
            server.stop()


def test_burst_appears_live_and_operator_acknowledges_it(tmp_path: Path, chromium: str, console_site) -> None:
    url, proc = console_site
    calm, hit = burst(time.time_ns())
    proc.feed(calm)
    browser = Chromium(chromium, tmp_path / "profile")
    try:
        log_in(browser, url, *OPERATOR)
        assert browser.eval("document.querySelectorAll('.alert-row').length") == 0
        assert "调度员" in browser.text("#who-role")

        proc.feed(hit)  # the burst arrives while the page is open: the event stream must bring it
        red = ".alert-row.grade-red[data-id]"
        browser.wait(f"!!document.querySelector('{red}')")
        row = browser.eval(f"(() => {{ const r = document.querySelector('{red}'); "
                           f"return {{id: r.dataset.id, text: r.textContent, state: r.className}}; }})()")
        assert "WP-102" in row["text"] and "DMA-01" in row["text"] and "state-firing" in row["state"]
        assert "一级" in row["text"] and "告警中" in row["text"]
        assert browser.text("#total-red .n") == "1"
        browser.wait("document.querySelector('#zone-map [data-zone=\"water/DMA-01\"]').dataset.worst === 'red'")
        assert "GAS-E" in browser.text("#zone-list")  # no coordinates: listed, not mapped
        browser.screenshot(tmp_path / "console-board.png")

        browser.click(f"{red}[data-id='{row['id']}']")
        browser.wait("!!document.querySelector('#chart svg path.series')")
        detail = browser.text("#detail")
        assert "water-pressure-low" in detail and "160" in detail  # the rule and its thresholds
        browser.type("#reason", "已派抢修班组关阀 crew dispatched to close valve V-12")
        browser.screenshot(tmp_path / "console-detail.png")
        browser.click("#btn-ack")

        browser.wait(f"document.querySelector(\"#board .alert-row[data-id='{row['id']}']\")"
                     ".classList.contains('state-acknowledged')")
        acked = browser.text(f"#board .alert-row[data-id='{row['id']}']")
        assert "已确认" in acked and OPERATOR[0] in acked
        browser.wait("document.querySelector('#detail .timeline').textContent.includes('crew dispatched')")

        browser.click("#detail-close")
        browser.screenshot(tmp_path / "console-board-acknowledged.png")
        browser.click("[data-tab=audit]")
        entry = "#audit-table tr[data-action='alert.acknowledge']"
        browser.wait(f"!!document.querySelector(\"{entry}\")")
        audit_row = browser.text(entry)
        assert OPERATOR[0] in audit_row and row["id"] in audit_row and "crew dispatched" in audit_row
        shot = browser.screenshot(tmp_path / "console-audit.png")
        assert shot.stat().st_size > 10_000
    finally:
        browser.close()
    stored = StoreReader(proc.store_path, CAT).alert(row["id"])  # what the processor wrote, read as the console does
    assert stored is not None and stored.state == "acknowledged" and stored.acked_by == OPERATOR[0]
    assert stored.ack_note is not None and "crew dispatched" in stored.ack_note


def test_engineer_sees_located_rule_errors_and_a_viewer_cannot_act(tmp_path: Path, chromium: str,
                                                                   console_site) -> None:
    url, proc = console_site
    for batch in burst(time.time_ns()):
        proc.feed(batch)
    browser = Chromium(chromium, tmp_path / "profile")
    try:
        log_in(browser, url, *ENGINEER)
        browser.click("[data-tab=rules]")
        browser.wait("document.querySelector('#rules-table').textContent.includes('water-pressure-low')")
        browser.type("#rules-text", "version: 1\nrules:\n  - id: water-pressure-low\n    kind: threshold\n"
                                    "    low: {yellow: 100, red: 240}\n")
        browser.click("#rules-validate")
        browser.wait("!!document.querySelector('#rules-result .errors li')")
        error = browser.text("#rules-result")
        assert "rules.yaml:3" in error and "water-pressure-low" in error and "yellow to orange to red" in error
        browser.screenshot(tmp_path / "console-rules-error.png")
        browser.click("#logout")
        browser.wait("!document.querySelector('#login').hidden")

        log_in(browser, url, *VIEWER)
        browser.wait("!!document.querySelector('.alert-row.grade-red')")
        browser.click(".alert-row.grade-red")
        browser.wait("!!document.querySelector('#btn-ack')")
        assert browser.eval("['#btn-ack', '#btn-resolve', '#btn-note', '#btn-silence'].every("
                            "s => document.querySelector(s).disabled)")
        browser.click("[data-tab=rules]")
        assert browser.eval("document.querySelector('#rules-upload').offsetParent === null")  # engineers only
    finally:
        browser.close()
