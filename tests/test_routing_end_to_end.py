"""Routing with the production senders against real receivers on loopback: a JSON webhook (HTTP) and an
SMTP server (aiosmtpd). One night in two zones: a burst inhibits the low-pressure alarms it causes, a red
alarm nobody acknowledges escalates by e-mail, and a silenced zone stays quiet."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from alerts.routing import MemoryJournal, RoutingNotifier, Silence, SilenceBook, parse_routing
from alerts.senders import build_sender
from sentinel.severity import Severity
from tests.servers import free_port
from tests.test_routing_router import Incidents, at


class Hook:
    def __init__(self) -> None:
        self.received: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                hook.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.messages.append(envelope.original_content)  # type: ignore[attr-defined]
        return "250 OK"


@pytest.fixture
def receivers() -> Iterator[tuple[Hook, Inbox, int]]:
    hook, inbox, port = Hook(), Inbox(), free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    yield hook, inbox, port
    smtp.stop()
    hook.server.shutdown()


def config(hook_port: int, smtp_port: int) -> str:
    return f"""
receivers:
  control-room: {{type: webhook, url: "http://127.0.0.1:{hook_port}/alerts"}}
  duty-mail: {{type: email, host: 127.0.0.1, port: {smtp_port}, security: none,
              from: "sentinel@city.cn", to: ["duty@city.cn"]}}
route:
  receivers: [control-room]
  group_by: [network, zone]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
inhibit:
  - source: {{rule: water-burst-pressure-drop}}
    target: {{rule: water-pressure-low}}
    equal: [network, zone]
escalate:
  - match: {{grade: red}}
    after: 10m
    receivers: [duty-mail]
"""


def wait(cond, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_night_of_bursts_escalations_and_silences_reaches_the_right_people(receivers) -> None:
    hook, inbox, smtp_port = receivers
    silences = SilenceBook()
    silences.add(Silence.new({"network": "water", "zone": "DMA2"}, at(0), at(h=2), "zhao.min", "valve works"))
    journal = MemoryJournal()
    clock = {"now": at(0)}
    routing = RoutingNotifier.from_config(parse_routing(config(hook.server.server_port, smtp_port)), build_sender,
                                          silences=silences, journal=journal, clock=lambda: clock["now"],
                                          backoff_s=(0.05,))
    night = Incidents()

    def step(t: int, changes=()) -> None:
        clock["now"] = t
        routing.notify(list(changes))
        routing.tick(t)

    # DMA1: a burst, and the low pressure it causes a minute later; DMA2 (silenced): low pressure too
    step(at(0), night.fire(at(0), "W-P1", rule="water-burst-pressure-drop", grade=Severity.RED))
    step(at(60), night.fire(at(60), "W-P2", rule="water-pressure-low", grade=Severity.ORANGE))
    step(at(70), night.fire(at(70), "W-P9", zone="DMA2", rule="water-pressure-low", grade=Severity.RED))
    for s in range(71, 15 * 60, 5):
        step(at(s))
    wait(lambda: len(hook.received) >= 1 and len(inbox.messages) >= 1)
    routing.close(10)

    assert len(hook.received) == 1, "one message for the zone, after group_wait"
    first = hook.received[0]
    assert (first["group_key"], first["reason"]) == ("water/DMA1", "firing")
    assert [a["subject"] for a in first["alerts"]] == ["W-P1"], "the burst's low-pressure alarm is inhibited"
    assert len(inbox.messages) == 1, "the unacknowledged red burst escalates once; the silenced zone does not"
    mail = message_from_bytes(inbox.messages[0], policy=policy.default)
    text = mail.get_body(("plain",)).get_content()
    assert "duty@city.cn" in mail["To"] and "W-P1" in text and "W-P9" not in text
    assert "一级" in mail["Subject"] and "escalat" in mail["Subject"]
    assert {r.status for r in journal.rows()} == {"ok"} and len(journal.rows()) == 2
