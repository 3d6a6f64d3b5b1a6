"""E-mail over SMTP: one message per notification, text and HTML, threaded per incident group.

Subject like `[一级 RED] water/DMA1: 3 alerts firing — burst pressure drop`. Every message has its own
Message-ID; In-Reply-To/References name a stable id derived from the group key, so Thunderbird, Outlook
and Apple Mail file an incident's firing, repeats, escalation and resolution in one thread.
SMTP replies decide retrying: 4xx and dropped connections are retryable, 5xx (bad login, unknown
recipient, rejected sender) are not. The password is never put in describe() or an error.
"""

from __future__ import annotations

import hashlib
import html
import logging
import smtplib
import ssl
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Literal

from alerts.notification import DeliveryError, Notification

from .format import DEFAULT_STYLE, PLAIN, Digest, Style, digest, render, tz_name

log = logging.getLogger(__name__)

Security = Literal["starttls", "ssl", "none"]
DEFAULT_PORTS: dict[str, int] = {"starttls": 587, "ssl": 465, "none": 25}


def thread_id(group_key: str, domain: str) -> str:
    """The Message-ID an incident group's thread hangs from (never sent itself; clients thread by it)."""
    return f"<sentinel.{hashlib.sha256(group_key.encode('utf-8')).hexdigest()[:24]}@{domain}>"


def _html(d: Digest) -> str:
    e = html.escape
    rows = "".join(
        f'<tr><td style="color:{x.grade.hex};white-space:nowrap">{x.grade.emoji} {e(x.grade.label)}</td>'
        f"<td><b>{e(x.rule)}</b></td><td>{e(x.subject)}</td><td>{e(x.message)}</td>"
        f'<td style="white-space:nowrap">{e(x.since)}</td><td>{e(x.state)}</td></tr>' for x in d.lines)
    return (
        f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"></head><body style="font-family:sans-serif">'
        f'<h2 style="color:{d.grade.hex}">{e(d.title)}</h2>'
        f"<p><b>{e(d.headline_zh)}</b> | {e(d.headline_en)} — {e(d.what)}</p>"
        f'<p>等级 grade: <b style="color:{d.grade.hex}">{e(d.grade.label)}</b><br>位置 where: {e(d.where_zh)}<br>'
        f"起始 since: {e(d.since)}<br>状态 state: {e(d.states)}</p>"
        '<table border="1" cellpadding="4" cellspacing="0" style="border-collapse:collapse">'
        "<tr><th>等级 grade</th><th>规则 rule</th><th>对象 subject</th><th>内容 message</th>"
        f"<th>起始 since</th><th>状态 state</th></tr>{rows}</table></body></html>")


class EmailSender:
    """Sends through one SMTP server; a fresh connection per message (notifications are rare and a kept
    connection would time out between them)."""

    kind = "email"

    def __init__(self, name: str, host: str, *, sender: str, to: Sequence[str], port: int | None = None,
                 security: Security = "starttls", username: str | None = None, password: str | None = None,
                 timeout: float = 10.0, ca_file: str | None = None, style: Style = DEFAULT_STYLE) -> None:
        if security not in DEFAULT_PORTS:
            raise ValueError(f"email receiver {name!r}: security must be starttls, ssl or none")
        if not to:
            raise ValueError(f"email receiver {name!r}: no recipients")
        self.name, self.host, self.security, self.timeout, self.style = name, host, security, timeout, style
        self.port = port or DEFAULT_PORTS[security]
        self.sender, self.to = sender, tuple(to)
        self.username, self._password, self._ca_file = username, password, ca_file
        # bare addresses for the envelope: a display name (often Chinese) would make smtplib demand SMTPUTF8
        self._envelope_from, self._envelope_to = parseaddr(sender)[1], [parseaddr(t)[1] for t in self.to]
        self.domain = self._envelope_from.rpartition("@")[2] or "localhost"
        if username and security == "none":
            log.warning("%s: logs in without TLS, the password crosses the network in clear", self.describe())

    def __repr__(self) -> str:
        return f"EmailSender({self.describe()!r})"

    def describe(self) -> str:
        user = f"{self.username}@" if self.username else ""
        return (f"email receiver {self.name!r} → smtp://{user}{self.host}:{self.port} ({self.security}) "
                f"to {', '.join(self.to)}")

    def message(self, notification: Notification) -> EmailMessage:
        """The message as it will be sent (exposed for tests and previews)."""
        d = digest(notification, self.style)
        msg = EmailMessage()
        msg["Subject"] = d.title_en
        msg["From"], msg["To"] = self.sender, ", ".join(self.to)
        msg["Date"] = format_datetime(datetime.now(timezone(timedelta(hours=self.style.utc_offset_h))))
        msg["Message-ID"] = make_msgid("sentinel", domain=self.domain)
        root = thread_id(notification.group_key, self.domain)
        msg["In-Reply-To"], msg["References"] = root, root
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies to an alarm
        msg["X-Sentinel-Group"], msg["X-Sentinel-Reason"] = notification.group_key, notification.reason
        msg["X-Sentinel-Grade"] = d.grade.en.lower()
        if d.grade.en == "RED":
            msg["Importance"], msg["X-Priority"] = "high", "1"
        footer = f"\n\n-- \nLifeline Sentinel · {notification.receiver} · {tz_name(self.style.utc_offset_h)}\n"
        msg.set_content(render(d, PLAIN) + footer, charset="utf-8")
        msg.add_alternative(_html(d), subtype="html", charset="utf-8")
        return msg

    def _connect(self) -> smtplib.SMTP:
        """Connected, encrypted as configured, logged in."""
        context = ssl.create_default_context(cafile=self._ca_file)
        if self.security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.security == "starttls":
                smtp.starttls(context=context)
                smtp.ehlo()
            if self.username:
                smtp.login(self.username, self._password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, notification: Notification) -> None:
        msg = self.message(notification)
        where = f"smtp {self.host}:{self.port}"
        try:
            with self._connect() as smtp:
                refused = smtp.send_message(msg, self._envelope_from, self._envelope_to)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = {addr: code for addr, (code, _) in exc.recipients.items()}
            raise DeliveryError(f"{where}: all recipients refused {codes}",
                                retryable=all(400 <= c < 500 for c in codes.values())) from None
        except smtplib.SMTPResponseException as exc:  # login, sender, data, connect: the reply code decides
            text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
            raise DeliveryError(f"{where}: {type(exc).__name__} {exc.smtp_code} {self._clean(str(text))}",
                                retryable=400 <= exc.smtp_code < 500) from None
        except smtplib.SMTPNotSupportedError as exc:  # e.g. no STARTTLS or AUTH offered: configuration
            raise DeliveryError(f"{where}: {self._clean(str(exc))}", retryable=False) from None
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryError(f"{where}: TLS certificate not trusted: {exc.verify_message}",
                                retryable=False) from None
        except (OSError, smtplib.SMTPException) as exc:  # disconnected, refused, timeout, TLS handshake
            raise DeliveryError(f"{where}: {type(exc).__name__}: {self._clean(str(exc))}", retryable=True) from None
        if refused:
            codes = {addr: code for addr, (code, _) in refused.items()}
            raise DeliveryError(f"{where}: delivered, but these recipients were refused {codes}", retryable=False)

    def _clean(self, text: str) -> str:
        return text.replace(self._password, "…") if self._password else text

    def close(self) -> None:
        """Nothing to release: each send uses its own connection."""
