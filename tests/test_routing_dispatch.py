"""Delivery never blocks the engine, retries what may succeed later, gives up on what cannot, and writes
every attempt down. The retry tests talk to a real HTTP receiver on loopback that fails on purpose."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from alerts.lifecycle import AlertBook
from alerts.model import AlertChange
from alerts.notification import DeliveryError, Notification
from alerts.notifiers import Notifier
from alerts.routing.config import parse_routing
from alerts.routing.dispatch import Dispatcher, RoutingNotifier
from alerts.routing.journal import MemoryJournal, SqliteJournal
from alerts.routing.router import Router
from sentinel.detections import Detection
from sentinel.readings import NS
from sentinel.severity import Severity

T0 = 1_735_689_600 * NS
FAST = (0.01, 0.02, 0.05)  # real waits, kept tiny


class Receiver:
    """A webhook endpoint on 127.0.0.1: 503 for the first `fail_first` POSTs, then 200; `/bad` is 400."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.requests: list[tuple[int, dict[str, Any]]] = []  # (status answered, body)
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer._lock:
                    failing = sum(1 for s, _ in outer.requests if s == 503) < outer.fail_first
                    status = 400 if self.path == "/bad" else 503 if failing else 200
                    outer.requests.append((status, body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True)
        self._thread.start()

    def accepted(self) -> list[dict[str, Any]]:
        with self._lock:
            return [body for status, body in self.requests if status == 200]

    def statuses(self) -> list[int]:
        with self._lock:
            return [status for status, _ in self.requests]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class HttpJsonSender:
    """Minimal test-local webhook sender: POSTs `Notification.to_dict()`; 5xx/408/429 and network errors
    are worth retrying, other 4xx are not."""

    kind = "webhook"

    def __init__(self, url: str) -> None:
        self.url = url

    def describe(self) -> str:
        return self.url

    def send(self, notification: Notification) -> None:
        body = json.dumps(notification.to_dict()).encode()
        req = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"},
                                     method="POST")
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            exc.close()
            raise DeliveryError(f"HTTP {exc.code}", retryable=exc.code >= 500 or exc.code in (408, 429)) from None
        except OSError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def notification(reason: str = "firing", receiver: str = "ops", group: str = "water/DMA1") -> Notification:
    book = AlertBook()
    d = Detection(rule_id="water-burst-pressure-drop", kind="rate_of_change", network="water", zone="DMA1",
                  subject="W-DMA1-P01", sensor_id="W-DMA1-P01", time_ns=T0, transition="raised",
                  severity=Severity.RED, value=120.0, score=3.0, message="pressure fell 62 kPa in 10 min")
    (c,) = book.apply([d], T0)
    return Notification(receiver, group, reason, (c.alert,), (c,), T0 + 30 * NS,  # type: ignore[arg-type]
                        {"network": "water", "zone": "DMA1"})


# -- retries against a real receiver ---------------------------------------------------------------

def test_a_receiver_down_at_first_gets_the_message_after_retries(receiver: Receiver, tmp_path: Path) -> None:
    receiver.fail_first = 2
    journal = SqliteJournal(tmp_path / "deliveries.db")
    dispatcher = Dispatcher({"ops": HttpJsonSender(receiver.url + "/hook")}, journal=journal, backoff_s=FAST)
    n = notification()
    dispatcher.submit([n])
    assert dispatcher.wait_idle(5)
    assert receiver.statuses() == [503, 503, 200]
    rows = journal.rows(receiver="ops")
    assert [(r.attempt, r.status, r.error) for r in rows] == [(1, "retry", "HTTP 503"), (2, "retry", "HTTP 503"),
                                                             (3, "ok", None)]
    assert {(r.receiver, r.group_key, r.reason) for r in rows} == {("ops", "water/DMA1", "firing")}
    assert rows[-1].payload == json.loads(json.dumps(n.to_dict())) == receiver.accepted()[0]
    assert rows[0].created_ns <= rows[1].created_ns <= rows[2].created_ns
    assert dispatcher.failed() == []
    dispatcher.close(5)


def test_a_receivers_messages_arrive_in_order_even_when_the_first_is_retried(receiver: Receiver) -> None:
    receiver.fail_first = 2
    dispatcher = Dispatcher({"ops": HttpJsonSender(receiver.url)}, backoff_s=FAST)
    dispatcher.submit([notification("firing"), notification("resolved")])
    assert dispatcher.close(5)
    assert [b["reason"] for b in receiver.accepted()] == ["firing", "resolved"]


def test_a_rejected_message_is_not_retried_and_is_recorded_as_failed(receiver: Receiver, tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "deliveries.db")
    dispatcher = Dispatcher({"ops": HttpJsonSender(receiver.url + "/bad")}, journal=journal, backoff_s=FAST)
    dispatcher.submit([notification()])
    assert dispatcher.wait_idle(5)
    assert receiver.statuses() == [400]
    (row,) = journal.rows()
    assert (row.attempt, row.status, row.error) == (1, "failed", "HTTP 400")
    (failed,) = dispatcher.failed()
    assert (failed.receiver, failed.group_key, failed.status) == ("ops", "water/DMA1", "failed")
    assert journal.rows(status="failed") == [row]
    dispatcher.close(5)


def test_a_receiver_down_for_good_is_given_up_after_max_attempts(receiver: Receiver) -> None:
    receiver.fail_first = 100
    journal = MemoryJournal()
    dispatcher = Dispatcher({"ops": HttpJsonSender(receiver.url)}, journal=journal, max_attempts=3, backoff_s=FAST)
    dispatcher.submit([notification()])
    assert dispatcher.wait_idle(5)
    assert [(r.attempt, r.status) for r in journal.rows()] == [(1, "retry"), (2, "retry"), (3, "failed")]
    assert [r.error for r in dispatcher.failed()] == ["HTTP 503"]
    dispatcher.close(5)


def test_an_unreachable_receiver_is_retried_then_recorded() -> None:
    journal = MemoryJournal()
    dispatcher = Dispatcher({"ops": HttpJsonSender("http://127.0.0.1:9/nothing-listens")}, journal=journal,
                            max_attempts=2, backoff_s=FAST)
    dispatcher.submit([notification()])
    assert dispatcher.close(5)
    assert [(r.attempt, r.status) for r in journal.rows()] == [(1, "retry"), (2, "failed")]
    assert "Connection refused" in (journal.rows()[-1].error or "")


# -- never blocking, never losing -------------------------------------------------------------------

class Stuck:
    """A sender that hangs until released (a receiver whose TCP connection stalls)."""

    kind = "webhook"

    def __init__(self, hold_s: float = 5.0, fail: bool = False) -> None:
        self.release, self.hold_s, self.fail = threading.Event(), hold_s, fail
        self.sent: list[Notification] = []

    def describe(self) -> str:
        return "stuck"

    def send(self, notification: Notification) -> None:
        self.release.wait(self.hold_s)
        if self.fail:
            raise DeliveryError("timed out")
        self.sent.append(notification)

    def close(self) -> None:
        pass


def test_submit_returns_at_once_and_a_stuck_receiver_holds_up_no_other(receiver: Receiver) -> None:
    stuck = Stuck()
    dispatcher = Dispatcher({"dingtalk": stuck, "ops": HttpJsonSender(receiver.url)}, backoff_s=FAST)
    started = time.monotonic()
    dispatcher.submit([notification(receiver="dingtalk"), notification(receiver="ops")])
    assert time.monotonic() - started < 0.1
    deadline = time.monotonic() + 5
    while not receiver.accepted() and time.monotonic() < deadline:
        time.sleep(0.005)
    assert len(receiver.accepted()) == 1 and stuck.sent == []
    stuck.release.set()
    assert dispatcher.close(5) and len(stuck.sent) == 1


def test_close_gives_up_after_its_timeout_and_records_what_was_not_delivered() -> None:
    journal = MemoryJournal()
    dispatcher = Dispatcher({"ops": Stuck(hold_s=0.3, fail=True)}, journal=journal, backoff_s=(10,))
    dispatcher.submit([notification("firing"), notification("resolved")])
    assert dispatcher.close(timeout=0.05) is False
    assert [(r.reason, r.attempt, r.status) for r in journal.rows()] == [
        ("firing", 1, "retry"), ("firing", 1, "failed"), ("resolved", 0, "failed")]
    assert [r.error for r in dispatcher.failed()] == [
        "dispatcher closed while retrying; last error: timed out", "dispatcher closed before delivery"]


def test_a_receiver_without_a_sender_is_recorded_as_failed() -> None:
    dispatcher = Dispatcher({})
    dispatcher.submit([notification(receiver="pager")])
    (failed,) = dispatcher.failed()
    assert failed.error == "no sender for receiver 'pager'"
    dispatcher.close(1)


# -- the pipeline's notifier -------------------------------------------------------------------------

ROUTING = """
receivers:
  ops: {type: webhook, url: "http://127.0.0.1:9/"}
route:
  receivers: [ops]
  group_by: [network, zone]
  group_wait: 30s
  group_interval: 5m
"""


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def burst(book: AlertBook, t: int, subject: str) -> list[AlertChange]:
    d = Detection(rule_id="water-burst-pressure-drop", kind="rate_of_change", network="water", zone="DMA1",
                  subject=subject, sensor_id=subject, time_ns=t, transition="raised", severity=Severity.ORANGE,
                  value=120.0, score=3.0, message="pressure falling fast")
    return book.apply([d], t)


def test_routing_notifier_groups_delivers_and_survives_a_restart(receiver: Receiver, tmp_path: Path) -> None:
    clock, book, state = Clock(T0), AlertBook(), tmp_path / "routing-state.json"

    def start() -> RoutingNotifier:
        config = parse_routing(ROUTING.replace("http://127.0.0.1:9/", receiver.url))
        return RoutingNotifier.from_config(config, lambda _name, spec: HttpJsonSender(spec["url"]), state_path=state,
                                           clock=clock, backoff_s=FAST)

    notifier = start()
    assert isinstance(notifier, Notifier)
    notifier.notify(burst(book, T0, "P01"))
    clock.now = T0 + 10 * NS
    notifier.notify(burst(book, clock.now, "P02"))
    assert notifier.tick() == []
    clock.now = T0 + 30 * NS
    assert len(notifier.tick()) == 1
    notifier.close(5)
    assert [[a["subject"] for a in b["alerts"]] for b in receiver.accepted()] == [["P01", "P02"]]

    notifier = start()  # a restart: what was sent is not sent again
    clock.now = T0 + 60 * NS
    assert notifier.tick() == []
    (p01,) = [a for a in book.open_alerts() if a.subject == "P01"]
    notifier.notify([book.resolve(p01.alert_id, "li.wei", "valve shut", clock.now)])
    clock.now = T0 + 330 * NS
    assert len(notifier.tick()) == 1
    notifier.close(5)
    assert [[(a["subject"], a["state"]) for a in b["alerts"]] for b in receiver.accepted()] == [
        [("P01", "firing"), ("P02", "firing")], [("P01", "resolved"), ("P02", "firing")]]


def test_run_ticks_sends_when_due_without_anyone_calling_tick(receiver: Receiver) -> None:
    clock = Clock(T0)
    dispatcher = Dispatcher({"ops": HttpJsonSender(receiver.url)}, backoff_s=FAST)
    notifier = RoutingNotifier(Router(parse_routing(ROUTING)), dispatcher, clock=clock)
    notifier.run_ticks(interval_s=0.01)
    notifier.notify(burst(AlertBook(), T0, "P01"))
    clock.now = T0 + 30 * NS
    deadline = time.monotonic() + 5
    while not receiver.accepted() and time.monotonic() < deadline:
        time.sleep(0.005)
    notifier.close(5)
    assert [b["reason"] for b in receiver.accepted()] == ["firing"]


def test_an_unreadable_state_file_is_set_aside_not_fatal(tmp_path: Path) -> None:
    state = tmp_path / "routing-state.json"
    state.write_text("{not json", encoding="utf-8")
    notifier = RoutingNotifier(Router(parse_routing(ROUTING)), Dispatcher({}), state_path=state, clock=Clock(T0))
    assert (tmp_path / "routing-state.json.unreadable").read_text(encoding="utf-8") == "{not json"
    notifier.close(1)
    assert json.loads(state.read_text(encoding="utf-8"))["version"] == 1
