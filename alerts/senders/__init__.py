"""Senders: how each kind of receiver gets one `Notification`, in its own message format.

`build_sender(name, spec)` turns one receiver's configuration into a `Sender`; `spec["type"]` picks it:

| type | required | optional (default) |
| --- | --- | --- |
| webhook | url | headers ({}), timeout (5) |
| dingtalk | url | secret, at_mobiles ([]), at_all (false), timeout, utc_offset_h (8), max_alerts (20) |
| wecom | url | timeout, utc_offset_h, max_alerts |
| feishu | url | secret, timeout, utc_offset_h, max_alerts |
| email | host, from, to | port (587/465/25 by security), security (starttls/ssl/none), username + password, |
| | | ca_file, timeout (10), utc_offset_h, max_alerts |
| mqtt | - | prefix ("sentinel"), qos (1), retain (false), timeout (10); needs `mqtt_client=` |

Specs are validated by the pydantic models below (unknown keys are errors: a typo must not silently
drop a setting). Errors name the receiver and the field and never echo a value, since values are
where tokens and passwords live.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parseaddr
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from alerts.notification import Sender
from ingest.topics import TopicError, TopicScheme

from .dingtalk import DingTalkSender
from .email import EmailSender
from .feishu import FeishuSender
from .format import Style
from .http import HttpDeliveryError
from .mqtt import MqttSender
from .webhook import WebhookSender
from .wecom import WeComSender

if TYPE_CHECKING:
    import paho.mqtt.client as mqtt

__all__ = [
    "DingTalkSender", "EmailSender", "FeishuSender", "HttpDeliveryError", "MqttSender", "SenderConfigError",
    "WeComSender", "WebhookSender", "build_sender", "parse_spec",
]


class SenderConfigError(ValueError):
    """A receiver's spec is wrong; the message names the receiver and the fields, never their values."""


def _http_url(value: str) -> str:
    try:
        parts = urllib.parse.urlsplit(value)
        host = parts.hostname
    except ValueError:
        host = None
    if not host or parts.scheme not in ("http", "https"):
        raise ValueError("must be an http(s) URL with a host")
    if any(c.isspace() or ord(c) < 32 for c in value):
        raise ValueError("must not contain spaces or control characters")
    return value


def _address(value: str) -> str:
    if "@" not in parseaddr(value)[1]:
        raise ValueError("must be an e-mail address")
    return value


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    timeout: float = Field(5.0, gt=0, le=300)


class _TextSpec(_Spec):
    """Receivers people read: local time and list length."""

    utc_offset_h: float = Field(8.0, ge=-12, le=14)
    max_alerts: int = Field(20, ge=1, le=500)

    def style(self) -> Style:
        return Style(self.utc_offset_h, self.max_alerts)


class _RobotSpec(_TextSpec):
    url: str
    _check_url = field_validator("url")(_http_url)


def _reveal(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None


class WebhookSpec(_Spec):
    type: Literal["webhook"]
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    _check_url = field_validator("url")(_http_url)


class DingTalkSpec(_RobotSpec):
    type: Literal["dingtalk"]
    secret: SecretStr | None = None
    at_mobiles: list[Annotated[str, Field(pattern=r"^\+?[0-9][0-9-]{4,19}$")]] = Field(default_factory=list)
    at_all: bool = False


class WeComSpec(_RobotSpec):
    type: Literal["wecom"]


class FeishuSpec(_RobotSpec):
    type: Literal["feishu"]
    secret: SecretStr | None = None


class EmailSpec(_TextSpec):
    type: Literal["email"]
    host: str = Field(min_length=1)
    port: int | None = Field(None, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    sender: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    ca_file: str | None = None
    timeout: float = Field(10.0, gt=0, le=300)
    _check_from = field_validator("sender")(_address)

    @field_validator("to")
    @classmethod
    def _check_to(cls, value: list[str]) -> list[str]:
        return [_address(v) for v in value]

    @model_validator(mode="after")
    def _login_pair(self) -> EmailSpec:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password: give both or neither")
        return self


class MqttSpec(_Spec):
    type: Literal["mqtt"]
    prefix: str = "sentinel"
    qos: Literal[0, 1, 2] = 1
    retain: bool = False
    timeout: float = Field(10.0, gt=0, le=300)

    @field_validator("prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        try:
            TopicScheme(value)
        except TopicError:
            raise ValueError("must be topic levels of letters, digits, _ . - separated by /") from None
        return value


def _mqtt(name: str, s: MqttSpec, client: mqtt.Client | None) -> Sender:
    if client is None:
        raise SenderConfigError(f"receiver {name!r} (mqtt): needs the processor's MQTT client "
                                "(build_sender(..., mqtt_client=client))")
    return MqttSender(name, client, prefix=s.prefix, qos=s.qos, retain=s.retain, timeout=s.timeout)


@dataclass(frozen=True)
class _Kind:
    spec: type[_Spec]
    build: Callable[[str, Any, Any], Sender]  # (name, validated spec, mqtt client)


REGISTRY: dict[str, _Kind] = {
    "webhook": _Kind(WebhookSpec, lambda name, s, _: WebhookSender(name, s.url, timeout=s.timeout,
                                                                   headers=s.headers)),
    "dingtalk": _Kind(DingTalkSpec, lambda name, s, _: DingTalkSender(
        name, s.url, secret=_reveal(s.secret), at_mobiles=s.at_mobiles, at_all=s.at_all, timeout=s.timeout,
        style=s.style())),
    "wecom": _Kind(WeComSpec, lambda name, s, _: WeComSender(name, s.url, timeout=s.timeout, style=s.style())),
    "feishu": _Kind(FeishuSpec, lambda name, s, _: FeishuSender(name, s.url, secret=_reveal(s.secret),
                                                                timeout=s.timeout, style=s.style())),
    "email": _Kind(EmailSpec, lambda name, s, _: EmailSender(
        name, s.host, sender=s.sender, to=s.to, port=s.port, security=s.security, username=s.username,
        password=_reveal(s.password), timeout=s.timeout, ca_file=s.ca_file, style=s.style())),
    "mqtt": _Kind(MqttSpec, _mqtt),
}
SPEC_TYPES: tuple[str, ...] = tuple(REGISTRY)


def parse_spec(name: str, spec: Mapping[str, Any]) -> _Spec:
    """The validated spec model, or SenderConfigError naming the receiver and every bad field."""
    if not isinstance(spec, Mapping):
        raise SenderConfigError(f"receiver {name!r}: spec must be a mapping with a 'type'")
    kind = spec.get("type")
    if kind not in REGISTRY:
        what = "missing" if kind is None else "unknown"
        raise SenderConfigError(f"receiver {name!r}: field 'type': {what}; use one of {', '.join(SPEC_TYPES)}")
    try:
        return REGISTRY[kind].spec.model_validate(dict(spec))
    except ValidationError as exc:
        problems = [f"field '{'.'.join(str(p) for p in e['loc']) or 'spec'}': {e['msg']}"
                    for e in exc.errors(include_url=False, include_input=False, include_context=False)]
        raise SenderConfigError(f"receiver {name!r} ({kind}): " + "; ".join(problems)) from None


def build_sender(name: str, spec: Mapping[str, Any], *, mqtt_client: mqtt.Client | None = None) -> Sender:
    """The Sender for receiver `name`; `mqtt_client` is the processor's connected paho client (type mqtt)."""
    if not isinstance(name, str) or not name.strip():
        raise SenderConfigError("a receiver needs a non-empty name")
    parsed = parse_spec(name, spec)
    return REGISTRY[spec["type"]].build(name, parsed, mqtt_client)
