"""`sentinel worker` processes for tests, as operators run them, and what they leave in Kafka and the store."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from sentinel.scaleout.continuity import OFFSET_PREFIX
from sentinel.scaleout.learn import read_changelog
from sentinel.scaleout.worker import STALL_EXIT_CODE

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen
    log: Path
    start: Callable[[], subprocess.Popen] | None = None
    restarts: int = 0

    def supervise(self) -> None:
        """What systemd or compose's `restart:` does for a worker that exits saying it stalled."""
        if self.proc.poll() == STALL_EXIT_CODE and self.start is not None:
            self.restarts += 1
            self.proc = self.start()

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def processed_messages(self) -> int:
        """Readings-topic messages this worker reports having evaluated (stats lines every second)."""
        total = 0
        for line in self.text().splitlines():
            if "] worker: " in line and " messages, " in line:
                total += int(line.split("] worker: ", 1)[1].split(" messages", 1)[0])
        return total

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def launch_worker(name: str, args: Sequence[str], cwd: Path, **env: str) -> Worker:
    """`sentinel worker ARGS` in its own process, logging to CWD/NAME.log, quick to notice peers and stalls."""
    environ = dict(os.environ, SENTINEL_PUBLISH_ALERTS="false", SENTINEL_STATS_EVERY_S="1",
                   SENTINEL_WORKER_SESSION_TIMEOUT_S="6", SENTINEL_WORKER_BATCH_WITHIN_S="0.1",
                   SENTINEL_WORKER_STALL_S="20", PYTHONPATH=str(REPO), **env)
    log = cwd / f"{name}.log"
    cmd = [sys.executable, "-m", "sentinel.cli", "worker", *args]

    def start() -> subprocess.Popen:
        fh = log.open("a")
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=environ, cwd=cwd)

    return Worker(name, start(), log, start)


def wait_for(what: str, cond: Callable[[], bool], timeout: float, workers: list[Worker] = ()) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        for w in workers:
            w.supervise()
            if w.proc.poll() is not None and w.proc.returncode != -signal.SIGKILL:
                pytest.fail(f"worker {w.name} exited ({w.proc.returncode}) while waiting for {what}:\n"
                            f"{w.text()[-4000:]}")
        time.sleep(0.25)
    logs = "\n".join(f"--- {w.name} ---\n{w.text()[-3000:]}" for w in workers)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{logs}")


def ready(w: Worker) -> bool:
    return "Ready" in w.text()


def rows(db: Path, sql: str) -> list[tuple]:
    if not db.exists():
        return []
    con = sqlite3.connect(db, timeout=10)
    try:
        return con.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []  # not created yet
    finally:
        con.close()


DETECTIONS = "SELECT rule_id, subject, time_ns, transition, severity, message FROM detections ORDER BY 3, 1, 2, 4"
CHANGES = "SELECT alert_id, change, time_ns, state FROM alert_changes ORDER BY 3, 1, 2"


def count(db: Path, table: str) -> int:
    got = rows(db, f"SELECT count(*) FROM {table}")
    return int(got[0][0]) if got else 0


def changelog_states(bootstrap: str, topic: str) -> dict[str, bytes]:
    """The last state blob per zone key in a Faust table's changelog: what a new worker would restore."""
    saved = asyncio.run(read_changelog(bootstrap, topic))
    return {key.decode(): value for key, value in saved.items() if not key.startswith(OFFSET_PREFIX)}
