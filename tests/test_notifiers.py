"""Notifiers deliver or keep: a real local HTTP server receives webhooks; failures end in a list."""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from alerts.lifecycle import AlertBook
from alerts.model import AlertChange
from alerts.notifiers import ConsoleNotifier, FailedDelivery, ThreadedNotifier, WebhookNotifier, redact_url
from sentinel.detections import Detection
from sentinel.readings import NS
from sentinel.severity import Severity

T0 = 1_718_000_000 * NS  # 2024-06-10T06:13:20Z


def _changes() -> list[AlertChange]:
    book = AlertBook()
    d = Detection("burst-pressure-drop", "pressure_drop", "water", "DMA1", "W-DMA1-P01", "W-DMA1-P01", T0,
                  "raised", Severity.RED, 182.5, 4.2, "pressure fell 35 kPa in 2 min")
    (opened,) = book.apply([d], T0)
    ack = book.acknowledge(opened.alert.alert_id, "zhang.wei", "crew dispatched", T0 + 60 * NS)
    return [opened, ack]


class Recorder:
    """A real HTTP server on 127.0.0.1 that answers with scripted statuses (then 200) and keeps bodies."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses, self.bodies, self.headers, self.paths = list(statuses), [], [], []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                recorder.bodies.append(body)
                recorder.headers.append(dict(self.headers))
                recorder.paths.append(self.path)
                status = recorder.statuses.pop(0) if recorder.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = f"{self.base}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[Recorder]:
    rec = Recorder(getattr(request, "param", []))
    yield rec
    rec.close()


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_webhook_posts_the_changes_as_json(server: Recorder) -> None:
    hook = WebhookNotifier(server.url, timeout=2, retries=0)
    hook.notify(_changes())
    (body,) = server.bodies
    assert server.headers[0]["Content-Type"].startswith("application/json")
    changes = json.loads(body.decode("utf-8"))["changes"]
    assert [c["change"] for c in changes] == ["opened", "acknowledged"]
    assert changes[0]["alert"]["grade_zh"] == "一级"
    assert changes[0]["alert"]["started"] == "2024-06-10T06:13:20Z"
    assert changes[1]["actor"] == "zhang.wei" and changes[1]["note"] == "crew dispatched"
    assert hook.failed == []


def test_webhook_sends_nothing_for_no_changes(server: Recorder) -> None:
    WebhookNotifier(server.url).notify([])
    assert server.bodies == []


@pytest.mark.parametrize("server", [[500, 500]], indirect=True)
def test_webhook_retries_server_errors_and_delivers_on_the_third_try(server: Recorder) -> None:
    hook = WebhookNotifier(server.url, timeout=2, retries=3, backoff=0.001)
    hook.notify(_changes())
    assert len(server.bodies) == 3 and len(set(server.bodies)) == 1
    assert hook.failed == []


def test_webhook_backoff_doubles_with_jitter() -> None:
    slept: list[float] = []
    hook = WebhookNotifier(f"http://127.0.0.1:{_unused_port()}/", timeout=1, retries=4, backoff=0.2,
                           sleep=slept.append)
    hook.notify(_changes())
    assert len(slept) == 4
    for n, s in enumerate(slept):
        assert 0.1 * 2**n <= s <= 0.2 * 2**n


def test_unreachable_webhook_keeps_the_payload_and_logs_an_error(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[FailedDelivery] = []
    hook = WebhookNotifier(f"http://127.0.0.1:{_unused_port()}/", timeout=1, retries=2, backoff=0.001,
                           on_failure=seen.append)
    with caplog.at_level(logging.ERROR, logger="alerts.notifiers"):
        hook.notify(_changes())  # must not raise into the alert pipeline
    (failed,) = hook.failed
    assert seen == [failed] and failed.attempts == 3
    assert json.loads(failed.payload)["changes"][0]["change"] == "opened"
    assert any("giving up" in r.message for r in caplog.records if r.levelno == logging.ERROR)


@pytest.mark.parametrize("server", [[400]], indirect=True)
def test_a_rejected_payload_is_not_retried_but_kept(server: Recorder) -> None:
    hook = WebhookNotifier(server.url, timeout=2, retries=3, backoff=0.001)
    hook.notify(_changes())
    assert len(server.bodies) == 1
    assert hook.failed[0].error.startswith("HTTP 400")


@pytest.mark.parametrize("server", [[503, 503]], indirect=True)
def test_kept_payloads_are_redelivered_when_the_receiver_is_back(server: Recorder) -> None:
    hook = WebhookNotifier(server.url, timeout=2, retries=1, backoff=0.001)
    hook.notify(_changes())
    assert len(hook.failed) == 1
    assert hook.retry_failed() == 0
    assert len(server.bodies) == 3 and server.bodies[2] == server.bodies[0]


def test_threaded_notifier_delivers_off_the_callers_thread(server: Recorder) -> None:
    notifier = ThreadedNotifier(WebhookNotifier(server.url, timeout=2, retries=0))
    notifier.notify(_changes())
    assert notifier.join(timeout=5)
    notifier.close()
    assert len(server.bodies) == 1


def test_console_line_shows_grade_in_both_languages_place_rule_and_since() -> None:
    out = io.StringIO()
    ConsoleNotifier(stream=out).notify(_changes())
    opened, ack = out.getvalue().splitlines()
    assert opened == ("[RED 一级] OPENED water/DMA1 W-DMA1-P01 rule burst-pressure-drop: "
                      "pressure fell 35 kPa in 2 min since 2024-06-10T06:13:20Z")
    assert ack.startswith("[RED 一级] ACKNOWLEDGED water/DMA1 W-DMA1-P01")
    assert "by zhang.wei (crew dispatched)" in ack


# ---- webhook URLs are secrets (DingTalk ?access_token=, WeCom ?key=, Feishu /hook/<token>) ------------------
SECRET = "5f0c9e2ab7d44e1f9a3c"


@pytest.mark.parametrize(("path", "shown"), [
    (f"/robot/send?access_token={SECRET}", "/robot/send?\u2026"),  # DingTalk
    (f"/cgi-bin/webhook/send?key={SECRET}", "/cgi-bin/webhook/send?\u2026"),  # WeCom
    (f"/open-apis/bot/v2/hook/{SECRET}", "/open-apis/bot/v2/hook/\u2026"),  # Feishu / Lark
])
@pytest.mark.parametrize("server", [[500, 500, 500, 500]], indirect=True)
def test_a_failing_webhook_never_logs_or_keeps_its_secret(server: Recorder, path: str, shown: str,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    seen: list[FailedDelivery] = []
    hook = WebhookNotifier(server.base + path, timeout=2, retries=2, backoff=0.001, on_failure=seen.append)
    with caplog.at_level(logging.DEBUG):
        hook.notify(_changes())
        hook.retry_failed()  # 1 more attempt fails (500), then the receiver answers 200
        hook.notify(_changes())
        server.statuses[:] = [400]
        hook.notify(_changes())  # refused: not retried, kept
        hook.close()
    assert server.paths == [path] * 7  # the real URL, secret and all, is what was called
    assert [f.attempts for f in seen] == [3, 1] and [f.error for f in seen] == ["HTTP 500 Internal Server Error",
                                                                                "HTTP 400 Bad Request"]
    assert {f.target for f in seen} == {f.target for f in hook.failed} == {server.base + shown}
    assert hook.url == server.base + shown and SECRET not in repr(hook)
    messages = [r.getMessage() for r in caplog.records]
    assert any("giving up" in m for m in messages) and any("attempt 1/3 failed" in m for m in messages)
    assert any("closing with 1 undelivered" in m for m in messages)
    for text in [*messages, *(repr(f) for f in seen), *(repr(f) for f in hook.failed)]:
        assert SECRET not in text, text


def test_connection_errors_that_quote_the_url_do_not_leak_it(caplog: pytest.LogCaptureFixture) -> None:
    # http.client refuses a space in the URL with an error quoting the path and query
    hook = WebhookNotifier(f"http://127.0.0.1:{_unused_port()}/robot/send?access_token={SECRET} x", timeout=1,
                           retries=1, backoff=0.001)
    with caplog.at_level(logging.DEBUG):
        hook.notify(_changes())
    (failed,) = hook.failed
    assert failed.error.startswith("InvalidURL: ") and SECRET not in failed.error
    assert not any(SECRET in r.getMessage() for r in caplog.records)
    hook = WebhookNotifier(f"http://user:{SECRET}@127.0.0.1:{_unused_port()}/x", timeout=1, retries=0)
    hook.notify(_changes())
    assert SECRET not in repr(hook.failed) and hook.url.startswith("http://127.0.0.1:")


def test_a_url_that_is_not_http_is_refused_without_showing_its_secret() -> None:
    with pytest.raises(ValueError, match="must be http") as err:
        WebhookNotifier(f"ftp://example.com/robot/send?access_token={SECRET}")
    assert SECRET not in str(err.value)


@pytest.mark.parametrize(("url", "shown"), [
    ("https://oapi.dingtalk.com/robot/send?access_token=abc123", "https://oapi.dingtalk.com/robot/send?\u2026"),
    ("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa",
     "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?\u2026"),
    ("https://open.feishu.cn/open-apis/bot/v2/hook/2d4b1c3e-aaaa-bbbb-cccc-0123456789ab",
     "https://open.feishu.cn/open-apis/bot/v2/hook/\u2026"),
    ("https://open.larksuite.com/open-apis/bot/v2/hook/tok/", "https://open.larksuite.com/open-apis/bot/v2/hook/\u2026/"),
    ("https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXX", "https://hooks.slack.com/services/T000/B000/\u2026"),
    ("https://ops:pw@alerts.example.com:8443/in#frag", "https://alerts.example.com:8443/in"),
    ("http://127.0.0.1:8080/hook", "http://127.0.0.1:8080/hook"),
    ("http://[::1/x", "<unparseable url>"),
])
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_settings_keep_the_webhook_url_secret_and_wiring_unwraps_it(tmp_path, server: Recorder) -> None:
    from sentinel.settings import Settings
    from sentinel.wiring import build_live
    from tests.helpers import catalog

    url = f"{server.base}/robot/send?access_token={SECRET}"
    s = Settings(webhook_url=url, db=tmp_path / "s.db", publish_alerts=False)
    assert SECRET not in repr(s) and SECRET not in str(s.model_dump())
    assert s.webhook_url is not None and s.webhook_url.get_secret_value() == url
    app = build_live(s, catalog({"sensor_id": "P1", "network": "water", "zone": "DMA1", "quantity": "pressure",
                                 "unit": "bar"}), console=io.StringIO())
    try:
        (threaded,) = [n for n in app.runner.pipeline.notifiers if isinstance(n, ThreadedNotifier)]
        threaded.notify(_changes())
        assert threaded.join(timeout=5)
        assert server.paths == ["/robot/send?access_token=" + SECRET] and threaded.inner.failed == []
    finally:
        app.close()
