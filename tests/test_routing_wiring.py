"""`sentinel run` with SENTINEL_ROUTING: alert changes reach a real HTTP receiver grouped by zone, and every
delivery is in the journal next to the store."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from sentinel.settings import Settings
from sentinel.wiring import build_live
from tests.helpers import catalog, series_batch

CAT = catalog(*({"sensor_id": f"P{i}", "network": "water", "zone": "DMA9", "quantity": "pressure", "unit": "kPa",
                 "interval_s": 60} for i in (1, 2)))
RULES = """
rules:
  - {id: low, kind: threshold, low: {orange: 250, red: 200}, select: {network: water}}
"""


def receiver() -> tuple[ThreadingHTTPServer, list[dict]]:
    got: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, got


def test_run_routes_a_zones_alerts_as_one_notification_and_journals_it(tmp_path) -> None:
    server, got = receiver()
    (tmp_path / "rules.yaml").write_text(RULES)
    (tmp_path / "routing.yaml").write_text(f"""
receivers:
  ops: {{type: webhook, url: "http://127.0.0.1:{server.server_port}/hook"}}
route:
  receivers: [ops]
  group_by: [network, zone]
  group_wait: 0s
  group_interval: 1m
  repeat_interval: 4h
""")
    s = Settings(catalog=tmp_path / "c.csv", rules=[tmp_path / "rules.yaml"], db=tmp_path / "s.sqlite",
                 publish_alerts=False, routing=tmp_path / "routing.yaml", routing_state=tmp_path / "routing.json")
    app = build_live(s, CAT)
    try:
        app.runner.pipeline.process(series_batch(CAT, {"P1": np.array([300.0, 150, 150]),
                                                       "P2": np.array([300.0, 180, 180])}))
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        app.close()
        server.shutdown()
    assert len(got) == 1, "both sensors' alerts of the zone travel together"
    note = got[0]
    assert (note["receiver"], note["group_key"], note["reason"]) == ("ops", "water/DMA9", "firing")
    assert sorted(a["subject"] for a in note["alerts"]) == ["P1", "P2"]
    rows = sqlite3.connect(tmp_path / "s-deliveries.sqlite").execute(
        "SELECT receiver, status FROM deliveries").fetchall()
    assert rows == [("ops", "ok")]
    assert (tmp_path / "routing.json").exists(), "routing keeps its groups for a restart"
