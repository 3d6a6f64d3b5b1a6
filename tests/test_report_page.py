"""The replay report is a page people look at: it must render in a real browser with every alert drawn."""

from __future__ import annotations

import subprocess
from pathlib import Path

from rules.loader import load_rules
from sentinel.catalog import load_catalog
from sentinel.events import load_events
from sentinel.replay_run import replay
from sentinel.report import write_replay_report
from simulators.files import write_replay
from simulators.scenario import default_scenario
from simulators.synthetic import generate

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _browser(chromium: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([chromium, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
                          capture_output=True, text=True, timeout=120, check=True)


def test_replay_report_renders_alerts_and_events_in_chromium(tmp_path: Path, chromium: str) -> None:
    write_replay(generate(default_scenario(seed=102, days=3)), tmp_path)
    catalog = load_catalog(tmp_path / "catalog.csv")
    out = replay(catalog, tmp_path / "readings.csv", load_rules(), show_progress=False)
    page = tmp_path / "report.html"
    write_replay_report(page, catalog, out, load_events(tmp_path / "events.csv"), title="seed 102")
    dom = _browser(chromium, tmp_path, "--dump-dom", page.as_uri()).stdout
    assert dom.count('class="alert ') == len(out.alerts) > 0
    assert 'class="event"' in dom
    assert "<svg" in dom and "告警" in dom
    shot = tmp_path / "report.png"
    _browser(chromium, tmp_path, "--window-size=1200,900", f"--screenshot={shot}", page.as_uri())
    assert shot.stat().st_size > 10_000  # a real picture, not an empty canvas
