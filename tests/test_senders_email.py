"""The e-mail sender against a real SMTP server on loopback (aiosmtpd): plain, login, STARTTLS, implicit
TLS, and the replies that decide retrying (4xx yes, 5xx no)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from alerts.notification import DeliveryError
from alerts.senders import build_sender
from tests.servers import free_port, unavailable
from tests.test_senders import notification, resolved

PASSWORD = "pw-Q7v!x9s3Lk"
TO = ["ops@city.cn", "duty@city.cn"]
SHOWN_TO = ["值班室 <ops@city.cn>", "duty@city.cn"]


@dataclass
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    msg: EmailMessage
    raw: bytes
    tls: bool


@dataclass
class Inbox:
    """aiosmtpd handler: keeps accepted messages; `rcpt`/`data` map to scripted refusals."""

    rcpt: dict[str, str] = field(default_factory=dict)  # address -> reply, e.g. "550 5.1.1 no such user"
    data: str | None = None
    received: list[Mail] = field(default_factory=list)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.rcpt:
            return self.rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data:
            return self.data
        raw = envelope.original_content
        self.received.append(Mail(envelope.mail_from, list(envelope.rcpt_tos),
                                  message_from_bytes(raw, policy=policy.default), raw,
                                  server.transport.get_extra_info("ssl_object") is not None))
        return "250 Message accepted for delivery"


def login_ok(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    good = isinstance(data, LoginPassword) and data.login == b"alerts" and data.password == PASSWORD.encode()
    return AuthResult(success=good, handled=False)


@pytest.fixture
def smtp() -> Iterator[Callable[..., tuple[Inbox, int]]]:
    controllers: list[Controller] = []

    def start(**kw: Any) -> tuple[Inbox, int]:
        inbox, port = Inbox(), free_port()
        controller = Controller(inbox, hostname="127.0.0.1", port=port, **kw)
        controller.start()
        controllers.append(controller)
        return inbox, port

    yield start
    for c in controllers:
        c.stop()


def email(port: int, **kw: Any) -> Any:
    spec = {"type": "email", "host": "127.0.0.1", "port": port, "security": "none",
            "from": "Lifeline Sentinel 管网哨兵 <alerts@city.cn>", "to": SHOWN_TO, "timeout": 5, **kw}
    return build_sender("ops-mail", spec)


def failure(sender: Any) -> DeliveryError:
    with pytest.raises(DeliveryError) as err:
        sender.send(notification())
    assert PASSWORD not in str(err.value)
    return err.value


def test_email_subject_recipients_and_both_parts_in_chinese_first(smtp) -> None:
    inbox, port = smtp()
    email(port).send(notification())
    (mail,) = inbox.received
    msg = mail.msg
    assert mail.mail_from == "alerts@city.cn" and mail.rcpt_tos == TO
    assert msg["Subject"] == "[一级 RED] water/DMA1: 3 alerts firing — burst pressure drop +2 more"
    assert msg["From"].addresses[0].display_name == "Lifeline Sentinel 管网哨兵"
    assert [a.addr_spec for a in msg["To"].addresses] == TO and msg["To"].addresses[0].display_name == "值班室"
    assert b"=?utf-8?" in mail.raw and "管网哨兵".encode() not in mail.raw.split(b"\r\n\r\n")[0]  # RFC 2047
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    for part in (text, html):
        for needed in ("一级告警 water/DMA1", "供水 water/DMA1", "2024-06-10 14:13:21 UTC+8", "3 条告警触发",
                       "3 alerts firing", "zhang.wei", "抢修队已出发", "W-DMA1-P03"):
            assert needed in part, needed
    assert text.index("3 条告警触发") < text.index("3 alerts firing")
    assert "#d93026" in html and "night flow 12 l/s &gt; profile" in html
    assert msg["Auto-Submitted"] == "auto-generated" and msg["Importance"] == "high"


def test_email_threads_by_group(smtp) -> None:
    inbox, port = smtp()
    sender = email(port)
    sender.send(notification())
    sender.send(resolved())
    sender.send(notification(group="heat/HS-3"))
    first, second, other = (got.msg for got in inbox.received)
    assert len({m["Message-ID"] for m in (first, second, other)}) == 3
    assert first["References"] == second["References"] == first["In-Reply-To"]
    assert first["References"].endswith("@city.cn>") and other["References"] != first["References"]
    assert second["Subject"].startswith("[已恢复 RESOLVED] water/DMA1: 2 alerts resolved")


def test_email_login(smtp) -> None:
    inbox, port = smtp(authenticator=login_ok, auth_require_tls=False)
    email(port, username="alerts", password=PASSWORD).send(notification())
    assert len(inbox.received) == 1
    wrong = failure(email(port, username="alerts", password="not-it-" + PASSWORD[::-1]))
    assert not wrong.retryable and "535" in str(wrong)


@pytest.mark.parametrize(("rcpt", "data", "retryable"), [
    ({"ops@city.cn": "450 4.2.1 mailbox busy", "duty@city.cn": "451 4.3.0 try later"}, None, True),
    ({"ops@city.cn": "550 5.1.1 no such user", "duty@city.cn": "550 5.1.1 no such user"}, None, False),
    ({}, "451 4.3.0 queue full, try later", True),
    ({}, "554 5.7.1 rejected as spam", False),
])
def test_smtp_replies_decide_retrying(smtp, rcpt: dict[str, str], data: str | None, retryable: bool) -> None:
    inbox, port = smtp()
    inbox.rcpt, inbox.data = rcpt, data
    assert failure(email(port)).retryable is retryable


def test_one_refused_recipient_is_reported_not_retried(smtp) -> None:
    inbox, port = smtp()
    inbox.rcpt = {"duty@city.cn": "550 5.1.1 no such user"}
    err = failure(email(port))
    assert not err.retryable and "duty@city.cn" in str(err)
    assert inbox.received[0].rcpt_tos == ["ops@city.cn"]  # the others got it: a retry would send it twice


def test_server_down_is_retryable() -> None:
    assert failure(email(free_port())).retryable


# ---- TLS ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (what a city's internal mail relay often has)."""
    if not shutil.which("openssl"):
        unavailable("openssl not installed: the TLS tests need it to make a certificate")
    d = tmp_path_factory.mktemp("tls")
    key, crt = d / "key.pem", d / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(crt)],
                   check=True, capture_output=True, timeout=30)
    return key, crt


def server_context(cert: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert[1], cert[0])
    return ctx


def test_starttls_login_with_a_private_ca(smtp, cert) -> None:
    inbox, port = smtp(tls_context=server_context(cert), require_starttls=True, authenticator=login_ok)
    email(port, security="starttls", ca_file=str(cert[1]), username="alerts", password=PASSWORD).send(notification())
    assert inbox.received[0].tls
    untrusted = failure(email(port, security="starttls"))
    assert not untrusted.retryable and "certificate" in str(untrusted)
    plain = failure(email(port))  # the server insists on STARTTLS
    assert not plain.retryable and "530" in str(plain)


def test_implicit_tls(smtp, cert) -> None:
    inbox, port = smtp(ssl_context=server_context(cert))
    email(port, security="ssl", ca_file=str(cert[1])).send(notification())
    assert inbox.received[0].tls
