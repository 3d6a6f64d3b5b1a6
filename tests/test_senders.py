"""Senders against real HTTP servers on loopback that answer like DingTalk, WeCom and Feishu do.

Each fake robot checks what the real one checks (token, signature recomputed from the shared secret,
size limits) and answers the way the real one does: HTTP 200 with an error code in the JSON body,
or for Feishu sometimes HTTP 400. Message texts are checked for what operators need to read.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from alerts.model import Alert
from alerts.notification import DeliveryError, Notification
from alerts.senders import SPEC_TYPES, SenderConfigError, build_sender
from alerts.senders.format import RESOLVED, Style, digest, fit, local_time
from sentinel.readings import NS
from sentinel.severity import Severity
from tests.servers import free_port

T0 = 1_718_000_000 * NS  # 2024-06-10T06:13:20Z = 14:13:20 in China
TOKEN, SECRET = "tok-3f9a8b7c6d5e4f3a2b1c", "SEC5a3ecf88f2b3eb50db30ecfc00f530"


def alert(i: int, severity: Severity = Severity.RED, state: str = "firing", *, zone: str = "DMA1",
          rule: str = "burst-pressure-drop", message: str = "pressure fell 35 kPa in 2 min", **kw: Any) -> Alert:
    return Alert(f"a{i:04d}", rule, "pressure_drop", "water", zone, f"W-{zone}-P{i:02d}", f"W-{zone}-P{i:02d}",
                 severity, state, T0 + i * NS, T0 + i * NS, 1.0, message, current_severity=severity, **kw)


def notification(reason: str = "firing", alerts: tuple[Alert, ...] | None = None, group: str = "water/DMA1",
                 labels: dict[str, str] | None = None) -> Notification:
    if alerts is None:
        alerts = (alert(1, acked_by="zhang.wei", ack_note="抢修队已出发", state="acknowledged"),
                  alert(2, Severity.ORANGE, rule="night-flow-high", message="night flow 12 l/s > profile"),
                  alert(3, Severity.YELLOW, rule="pressure-low"))
    return Notification("ops", group, reason, alerts, created_ns=T0 + 600 * NS,  # type: ignore[arg-type]
                        labels={"network": "water", "zone": "DMA1"} if labels is None else labels)


def resolved() -> Notification:
    done = tuple(alert(i, state="resolved", resolved_ns=T0 + 3600 * NS, resolved_by="li.na") for i in (1, 2))
    return notification("resolved", done)


# ---- the shared wording -----------------------------------------------------------------------------


def test_digest_says_what_where_how_bad_since_when_how_many_and_who() -> None:
    d = digest(notification())
    assert d.title == "🔴 一级告警 water/DMA1：3 条告警触发"
    assert d.title_en == "[一级 RED] water/DMA1: 3 alerts firing — burst pressure drop +2 more"
    assert d.where_zh == "供水 water/DMA1" and d.count == 3
    assert d.since == "2024-06-10 14:13:21 UTC+8"  # first open alert, China time
    assert d.states == "2 告警中 firing · 1 已确认 acknowledged"
    assert [x.grade.en for x in d.lines] == ["RED", "ORANGE", "YELLOW"]
    assert "已确认 acknowledged by zhang.wei (抢修队已出发)" in d.lines[0].state


def test_local_time_follows_the_configured_offset() -> None:
    assert local_time(T0) == "2024-06-10 14:13:20"
    assert digest(notification(), Style(utc_offset_h=0)).since == "2024-06-10 06:13:21 UTC+0"
    assert digest(notification(), Style(utc_offset_h=5.5)).since == "2024-06-10 11:43:21 UTC+5:30"


def test_resolved_group_is_green_and_says_by_whom() -> None:
    d = digest(resolved())
    assert d.grade is RESOLVED and d.title.startswith("✅ 已恢复告警")
    assert d.headline_en == "2 alerts resolved" and "by li.na" in d.lines[0].state


def test_fit_drops_whole_lines_and_says_how_many() -> None:
    items = [f"- 第 {i} 条告警 line {i}" for i in range(100)]
    for limit in (60, 200, 1000):
        out = fit(["# 标题"], items, "\n", limit)
        assert len(out.encode()) <= limit
        shown = out.count("\n- ")
        assert out.endswith(f"…还有 {100 - shown} 条 / {100 - shown} more")
    assert fit(["# 标题"], items, "\n", 4096).endswith("line 99")  # all fit: nothing to count
    assert len(fit(["# 很长的标题" * 50], items, "\n", 40).encode()) <= 40
    assert fit(["# 标题"], items, "\n", None, max_items=5).endswith("…还有 95 条 / 95 more")
    assert "还有" not in fit(["h"], items[:3], "\n", 4096)


# ---- specs --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "field"), [
    ({"type": "dingtalk"}, "'url'"),
    ({"type": "dingtalk", "url": f"ftp://x/?access_token={TOKEN}"}, "'url'"),
    ({"type": "dingtalk", "url": f"https://x/?access_token={TOKEN}", "at_mobiles": ["boss"]}, "'at_mobiles.0'"),
    ({"type": "wecom", "url": f"https://x/?key={TOKEN}", "secret": SECRET}, "'secret'"),
    ({"type": "feishu", "url": f"https://x/hook/{TOKEN}", "utc_offset_h": 30}, "'utc_offset_h'"),
    ({"type": "webhook", "url": f"https://x/ h?token={TOKEN}"}, "'url'"),
    ({"type": "email", "host": "smtp", "from": "nobody", "to": ["ops@city.cn"]}, "'from'"),
    ({"type": "email", "host": "smtp", "from": "a@city.cn", "to": []}, "'to'"),
    ({"type": "email", "host": "smtp", "from": "a@city.cn", "to": ["o@city.cn"], "password": SECRET}, "username"),
    ({"type": "email", "host": "smtp", "from": "a@city.cn", "to": ["o@city.cn"], "security": "tls"}, "'security'"),
    ({"type": "mqtt", "prefix": "city/#"}, "'prefix'"),
    ({"type": "mqtt", "qos": 3}, "'qos'"),
    ({"type": "sms"}, "'type'"),
    ({}, "'type'"),
])
def test_bad_specs_name_the_receiver_and_field_never_the_value(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(SenderConfigError) as err:
        build_sender("ops-centre", spec)
    text = str(err.value)
    assert "'ops-centre'" in text and field in text
    assert TOKEN not in text and SECRET not in text


def test_mqtt_spec_needs_the_processors_client() -> None:
    with pytest.raises(SenderConfigError, match="MQTT client"):
        build_sender("bus", {"type": "mqtt"})


def test_describe_never_shows_tokens_secrets_or_passwords() -> None:
    specs = {
        "webhook": {"url": f"https://hooks.city.cn/h/{TOKEN}?token={TOKEN}", "headers": {"Authorization": SECRET}},
        "dingtalk": {"url": f"https://oapi.dingtalk.com/robot/send?access_token={TOKEN}", "secret": SECRET},
        "wecom": {"url": f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={TOKEN}"},
        "feishu": {"url": f"https://open.feishu.cn/open-apis/bot/v2/hook/{TOKEN}", "secret": SECRET},
        "email": {"host": "smtp.city.cn", "from": "alerts@city.cn", "to": ["ops@city.cn"], "username": "alerts",
                  "password": SECRET},
        "mqtt": {},
    }
    assert set(specs) == set(SPEC_TYPES)
    for kind, spec in specs.items():
        sender = build_sender("ops", {"type": kind, **spec}, mqtt_client=object())  # type: ignore[arg-type]
        for shown in (sender.describe(), repr(sender)):
            assert TOKEN not in shown and SECRET not in shown, shown
            assert kind in shown and "'ops'" in shown
        sender.close()


# ---- a real HTTP server that answers like a robot -----------------------------------------------------


@dataclass
class Got:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any]


Answer = tuple[int, Any]  # (HTTP status, JSON document or raw bytes)


@dataclass
class FakeRobot:
    """What one fake robot does: `check` plays the vendor (token, signature, limits); `script` answers the
    next requests first (rate limits, outages); `delay` stalls every answer. `got` keeps the requests."""

    check: Callable[[Got], Answer]
    script: list[Answer] = field(default_factory=list)
    delay: float = 0.0
    got: list[Got] = field(default_factory=list)
    base: str = ""

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        raw = handler.rfile.read(int(handler.headers["Content-Length"]))
        split = urllib.parse.urlsplit(handler.path)
        got = Got(split.path, dict(urllib.parse.parse_qsl(split.query)), dict(handler.headers),
                  json.loads(raw.decode("utf-8")))
        self.got.append(got)
        time.sleep(self.delay)
        status, doc = self.script.pop(0) if self.script else self.check(got)
        out = doc if isinstance(doc, bytes) else json.dumps(doc, ensure_ascii=False).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(out)))
        if 300 <= status < 400:
            handler.send_header("Location", "http://127.0.0.1:9/elsewhere")
        handler.end_headers()
        handler.wfile.write(out)


@contextlib.contextmanager
def serving(robot: FakeRobot) -> Iterator[FakeRobot]:
    """`robot` behind a real ThreadingHTTPServer on 127.0.0.1 (its URL in `robot.base`)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            robot.answer(self)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    robot.base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield robot
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def robots() -> Iterator[Callable[..., FakeRobot]]:
    with contextlib.ExitStack() as stack:
        yield lambda check, **kw: stack.enter_context(serving(FakeRobot(check, **kw)))


def failure(sender: Any, n: Notification | None = None) -> DeliveryError:
    with pytest.raises(DeliveryError) as err:
        sender.send(n or notification())
    text = str(err.value)
    assert TOKEN not in text and SECRET not in text, text
    return err.value


def hmac_b64(key: str, msg: str) -> str:
    return base64.b64encode(hmac.new(key.encode(), msg.encode(), hashlib.sha256).digest()).decode()


# ---- plain webhook --------------------------------------------------------------------------------------


def ok(_: Got) -> Answer:
    return 200, b""


def test_webhook_posts_the_notification_json(robots) -> None:
    r = robots(ok)
    sender = build_sender("ops", {"type": "webhook", "url": f"{r.base}/hook?token={TOKEN}",
                                  "headers": {"Authorization": f"Bearer {SECRET}"}})
    n = notification()
    sender.send(n)
    (got,) = r.got
    assert got.body == json.loads(json.dumps(n.to_dict())) and got.body["alerts"][0]["grade_zh"] == "一级"
    assert got.headers["Content-Type"] == "application/json; charset=utf-8"
    assert got.headers["Authorization"] == f"Bearer {SECRET}" and got.query == {"token": TOKEN}


@pytest.mark.parametrize(("status", "retryable"), [
    (500, True), (502, True), (503, True), (408, True), (425, True), (429, True),
    (400, False), (401, False), (403, False), (404, False), (302, False),
])
def test_webhook_status_decides_retrying(robots, status: int, retryable: bool) -> None:
    r = robots(lambda _: (status, {"error": "nope"}))
    err = failure(build_sender("ops", {"type": "webhook", "url": f"{r.base}/hook?token={TOKEN}"}))
    assert err.retryable is retryable and f"HTTP {status}" in str(err)
    assert len(r.got) == 1  # a redirect is not followed


def test_network_errors_are_retryable_and_secret_free(robots) -> None:
    refused = build_sender("ops", {"type": "webhook", "url": f"http://127.0.0.1:{free_port()}/h/{TOKEN}?k={TOKEN}"})
    assert failure(refused).retryable
    slow = robots(ok, delay=1.0)
    stalled = build_sender("ops", {"type": "webhook", "url": f"{slow.base}/hook?token={TOKEN}", "timeout": 0.2})
    err = failure(stalled)
    assert err.retryable and "timed out" in str(err).lower()


# ---- DingTalk ---------------------------------------------------------------------------------------------


def dingtalk_check(got: Got) -> Answer:
    """What oapi.dingtalk.com/robot/send checks, in its order: token, then the 加签 signature."""
    if got.query.get("access_token") != TOKEN:
        return 200, {"errcode": 300005, "errmsg": "token is not exist"}
    ts = int(got.query.get("timestamp", "0"))
    if abs(time.time() * 1000 - ts) > 3600_000 or got.query.get("sign") != hmac_b64(SECRET, f"{ts}\n{SECRET}"):
        return 200, {"errcode": 310000, "errmsg": "sign not match, more: [https://ding-doc.dingtalk.com/…]"}
    if got.body.get("msgtype") != "markdown" or not got.body["markdown"].get("title"):
        return 200, {"errcode": 40035, "errmsg": "缺少参数 markdown"}
    return 200, {"errcode": 0, "errmsg": "ok"}


def dingtalk(r: FakeRobot, token: str = TOKEN, secret: str = SECRET, **kw: Any) -> Any:
    return build_sender("ops-dd", {"type": "dingtalk", "url": f"{r.base}/robot/send?access_token={token}",
                                   "secret": secret, **kw})


def test_dingtalk_signed_markdown_with_mentions_for_unacknowledged_red(robots) -> None:
    r = robots(dingtalk_check)
    sender = dingtalk(r, at_mobiles=["13800138000"])
    sender.send(notification())  # its red alert is acknowledged: nobody is woken
    assert "at" not in r.got[0].body and "@13800138000" not in r.got[0].body["markdown"]["text"]
    sender.send(notification(alerts=(alert(1), alert(2, Severity.YELLOW))))
    assert r.got[1].body["at"] == {"atMobiles": ["13800138000"], "isAtAll": False}
    assert r.got[1].body["markdown"]["text"].endswith("@13800138000")
    got = r.got[0]
    md = got.body["markdown"]
    assert md["title"] == "🔴 一级告警 water/DMA1：3 条告警触发"
    text = md["text"]
    for needed in ("一级 RED", "供水 water/DMA1", "2024-06-10 14:13:21 UTC+8", "3 条告警触发", "3 alerts firing",
                   "已确认 acknowledged by zhang.wei", "W-DMA1-P02", "＞ profile"):
        assert needed in text, needed
    assert text.index("一级告警") < text.index("alerts firing")  # Chinese first


def test_dingtalk_mentions_nobody_once_resolved(robots) -> None:
    r = robots(dingtalk_check)
    dingtalk(r, at_mobiles=["13800138000"], at_all=True).send(resolved())
    body = r.got[0].body
    assert "at" not in body and "@13800138000" not in body["markdown"]["text"]
    assert body["markdown"]["title"].startswith("✅ 已恢复告警")


def test_dingtalk_error_codes_in_a_200(robots) -> None:
    r = robots(dingtalk_check, script=[
        (200, {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}),
        (200, {"errcode": -1, "errmsg": "系统繁忙"}),
    ])
    sender = dingtalk(r)
    assert failure(sender).retryable and failure(sender).retryable
    bad_token = failure(dingtalk(r, token="tok-revoked-0000000000"))
    assert not bad_token.retryable and "300005" in str(bad_token) and bad_token.code == 300005  # type: ignore[attr-defined]
    bad_secret = failure(dingtalk(r, secret="SEC-not-the-right-one-000000"))
    assert not bad_secret.retryable and "310000" in str(bad_secret)
    r.script.append((200, b"<html>gateway</html>"))
    assert not failure(sender).retryable


# ---- WeCom --------------------------------------------------------------------------------------------------


def wecom_check(got: Got) -> Answer:
    if got.query.get("key") != TOKEN:
        return 200, {"errcode": 93000, "errmsg": "invalid webhook url, hint: [1718000000_1], from ip: 127.0.0.1"}
    content = got.body.get("markdown", {}).get("content", "")
    if got.body.get("msgtype") != "markdown" or not content:
        return 200, {"errcode": 40008, "errmsg": "invalid message type"}
    if len(content.encode("utf-8")) > 4096:
        return 200, {"errcode": 40058, "errmsg": "markdown.content exceed max length 4096"}
    return 200, {"errcode": 0, "errmsg": "ok"}


def wecom(r: FakeRobot, token: str = TOKEN) -> Any:
    return build_sender("ops-wx", {"type": "wecom", "url": f"{r.base}/cgi-bin/webhook/send?key={token}",
                                   "max_alerts": 500})


def test_wecom_markdown_with_grade_colours(robots) -> None:
    r = robots(wecom_check)
    wecom(r).send(notification())
    content = r.got[0].body["markdown"]["content"]
    assert content.startswith("### 🔴 一级告警 water/DMA1：3 条告警触发")
    assert '<font color="warning">🔴 一级 RED</font>' in content
    assert '<font color="warning">🟠 二级 ORANGE</font>' in content
    assert '<font color="comment">🟡 三级 YELLOW</font>' in content
    wecom(r).send(resolved())
    assert '<font color="info">✅ 已恢复 RESOLVED</font>' in r.got[1].body["markdown"]["content"]


def test_wecom_big_group_fits_4096_bytes_and_counts_the_rest(robots) -> None:
    r = robots(wecom_check)
    many = tuple(alert(i, rule=f"pressure-low-{i}", message="压力低于下限 180 kPa ＜ 200 kPa") for i in range(200))
    wecom(r).send(notification(alerts=many))
    content = r.got[0].body["markdown"]["content"]
    shown = content.count("\n- ")
    assert len(content.encode("utf-8")) <= 4096 and 5 < shown < 200
    assert content.endswith(f"…还有 {200 - shown} 条 / {200 - shown} more") and "200 条告警触发" in content


def test_wecom_error_codes_in_a_200(robots) -> None:
    r = robots(wecom_check, script=[(200, {"errcode": 45009, "errmsg": f"api freq out of limit, key={TOKEN}"})])
    limited = failure(wecom(r))
    assert limited.retryable and "45009" in str(limited)
    bad_key = failure(wecom(r, token="tok-revoked-0000000000"))
    assert not bad_key.retryable and "93000" in str(bad_key)


# ---- Feishu ---------------------------------------------------------------------------------------------------

FEISHU_OK = {"StatusCode": 0, "StatusMessage": "success", "code": 0, "data": {}, "msg": "success"}


def feishu_check(got: Got) -> Answer:
    if got.path != f"/open-apis/bot/v2/hook/{TOKEN}":
        return 200, {"code": 19001, "msg": "param invalid: incoming webhook access token invalid", "data": {}}
    ts = int(got.body.get("timestamp", "0"))
    expected = base64.b64encode(hmac.new(f"{ts}\n{SECRET}".encode(), b"", hashlib.sha256).digest()).decode()
    if abs(time.time() - ts) > 3600 or got.body.get("sign") != expected:
        return 200, {"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"}
    if got.body.get("msg_type") != "interactive" or int(got.headers["Content-Length"]) > 20_000:
        return 400, {"code": 9499, "msg": "Bad Request", "data": {}}
    return 200, FEISHU_OK


def feishu(r: FakeRobot, token: str = TOKEN, secret: str = SECRET) -> Any:
    return build_sender("ops-fs", {"type": "feishu", "url": f"{r.base}/open-apis/bot/v2/hook/{token}",
                                   "secret": secret})


def test_feishu_signed_card_coloured_by_grade(robots) -> None:
    r = robots(feishu_check)
    feishu(r).send(notification())
    card = r.got[0].body["card"]
    assert card["header"]["template"] == "red"
    assert card["header"]["title"]["content"] == "🔴 一级告警 water/DMA1：3 条告警触发"
    text = card["elements"][0]["text"]
    assert text["tag"] == "lark_md" and "**3 条告警触发** | 3 alerts firing" in text["content"]
    assert "自 since 06-10 14:13:21" in text["content"]
    feishu(r).send(resolved())
    assert r.got[1].body["card"]["header"]["template"] == "green"


def test_feishu_big_group_stays_under_20kb(robots) -> None:
    r = robots(feishu_check)
    many = tuple(alert(i, message="供水压力骤降，疑似爆管 " * 5) for i in range(300))
    build_sender("ops-fs", {"type": "feishu", "url": f"{r.base}/open-apis/bot/v2/hook/{TOKEN}", "secret": SECRET,
                            "max_alerts": 500}).send(notification(alerts=many))
    assert "条 /" in r.got[0].body["card"]["elements"][0]["text"]["content"]


def test_feishu_error_codes_and_rate_limits(robots) -> None:
    r = robots(feishu_check, script=[
        (200, {"code": 11232, "msg": "frequency limited psm[lark.oapi.app_platform_runtime]"}),
        (400, {"code": 9499, "msg": "too many request", "data": {}}),
        (400, {"code": 9499, "msg": "Bad Request", "data": {}}),
        (200, {"StatusCode": 0, "StatusMessage": "success"}),  # the older gateway's answer
    ])
    sender = feishu(r)
    assert failure(sender).retryable
    too_many = failure(sender)
    assert too_many.retryable and "HTTP 400" in str(too_many) and "9499" in str(too_many)
    assert not failure(sender).retryable
    sender.send(notification())
    bad_token = failure(feishu(r, token="tok-revoked-0000000000"))
    assert not bad_token.retryable and "19001" in str(bad_token)
    bad_secret = failure(feishu(r, secret="SEC-not-the-right-one-000000"))
    assert not bad_secret.retryable and "19021" in str(bad_secret)


def test_describe_shows_a_plain_url_as_it_is() -> None:
    from alerts.senders import build_sender

    s = build_sender("ops-webhook", {"type": "webhook", "url": "http://127.0.0.1:9000/sentinel/alerts"})
    assert s.describe().endswith("→ http://127.0.0.1:9000/sentinel/alerts")
