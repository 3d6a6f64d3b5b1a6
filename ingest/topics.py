"""The MQTT topic scheme: one place that builds and parses every topic we publish or subscribe to.

    <prefix>/data/<network>/<zone>/<sensor_id>   one reading (JSON); the topic names the sensor unless
                                                 the payload's "sensor_id" says otherwise
    <prefix>/data/<network>/<zone>/batch         many readings: JSON batch, JSON list or logger form
    <prefix>/data/<network>/<zone>/lp            InfluxDB line protocol, one reading per line
    <prefix>/alerts/<network>/<zone>             alert changes published by the processor

`prefix` defaults to "sentinel" and may have several levels ("city-a/sentinel"). Decoders detect the
payload format from the bytes, so `batch` and `lp` are only conventions that say "no default sensor";
`batch` and `lp` are therefore reserved and cannot be sensor ids on a reading topic.

Why a `data` level rather than `sentinel/<network>/<zone>/<sensor>`: readings and alerts must never
share a wildcard. With `sentinel/+/+/+` an alert topic `sentinel/alerts/water/dma1` (also 4 levels)
would be consumed as a reading of sensor `dma1` in zone `water` of network `alerts`. Separate roots
make the readings filter `<prefix>/data/+/+/+` (or its shared form `$share/<group>/<prefix>/data/+/+/+`)
structurally unable to match alerts, and let the broker ACL grant devices `<prefix>/data/#` only.

Segments follow the catalog's id rules (letters, digits, `_ . : -`), so ids never contain the MQTT
wildcards `+ #` or the level separator `/`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from sentinel.catalog import NETWORKS

DEFAULT_PREFIX = "sentinel"
DATA = "data"
ALERTS = "alerts"
BATCH = "batch"
LINE_PROTOCOL = "lp"
RESERVED_LEAVES = frozenset({BATCH, LINE_PROTOCOL})

_SEGMENT = re.compile(r"^[A-Za-z0-9_.:\-]+$")
_PREFIX_LEVEL = re.compile(r"^[A-Za-z0-9_.\-]+$")

TopicKind = Literal["reading", "batch", "lp"]


class TopicError(ValueError):
    """A topic that does not follow the scheme (wrong root, level count, network or characters)."""


@dataclass(frozen=True, slots=True)
class ReadingTopic:
    """A parsed readings topic."""

    network: str
    zone: str
    leaf: str  # a sensor id, "batch" or "lp"

    @property
    def kind(self) -> TopicKind:
        if self.leaf == BATCH:
            return "batch"
        if self.leaf == LINE_PROTOCOL:
            return "lp"
        return "reading"

    @property
    def sensor_id(self) -> str | None:
        """The sensor the topic names, or None on batch/lp topics (each reading names its own)."""
        return None if self.leaf in RESERVED_LEAVES else self.leaf


def _check_segment(what: str, value: str) -> str:
    if not isinstance(value, str) or not _SEGMENT.match(value):
        raise TopicError(f"{what} {value!r} is not a valid topic level (letters, digits, _ . : - only)")
    return value


def _check_network(network: str) -> str:
    if network not in NETWORKS:
        raise TopicError(f"unknown network {network!r}; expected one of {', '.join(NETWORKS)}")
    return network


@dataclass(frozen=True)
class TopicScheme:
    """Topic builder/parser for one prefix. `TopicScheme()` is the documented default."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        levels = self.prefix.split("/")
        if not self.prefix or not all(_PREFIX_LEVEL.match(level) for level in levels):
            raise TopicError(f"bad topic prefix {self.prefix!r}: use levels of letters, digits, _ . - "
                             "joined by /")

    @property
    def data_root(self) -> str:
        return f"{self.prefix}/{DATA}"

    @property
    def alerts_root(self) -> str:
        return f"{self.prefix}/{ALERTS}"

    # ---- building ---------------------------------------------------------------------------------
    def reading_topic(self, network: str, zone: str, sensor_id: str) -> str:
        _check_segment("sensor_id", sensor_id)
        if sensor_id in RESERVED_LEAVES:
            raise TopicError(f"sensor id {sensor_id!r} is reserved; publish it on the batch topic")
        return f"{self.data_root}/{_check_network(network)}/{_check_segment('zone', zone)}/{sensor_id}"

    def batch_topic(self, network: str, zone: str) -> str:
        return f"{self.data_root}/{_check_network(network)}/{_check_segment('zone', zone)}/{BATCH}"

    def lp_topic(self, network: str, zone: str) -> str:
        return f"{self.data_root}/{_check_network(network)}/{_check_segment('zone', zone)}/{LINE_PROTOCOL}"

    def alerts_topic(self, network: str, zone: str) -> str:
        return f"{self.alerts_root}/{_check_network(network)}/{_check_segment('zone', zone)}"

    # ---- subscribing ------------------------------------------------------------------------------
    def readings_filter(self) -> str:
        """Every readings topic and nothing else (alerts live under another root)."""
        return f"{self.data_root}/+/+/+"

    def shared_readings_filter(self, group: str) -> str:
        """The readings filter as an MQTT shared subscription: the broker splits messages in `group`."""
        return shared(self.readings_filter(), group)

    def alerts_filter(self) -> str:
        return f"{self.alerts_root}/#"

    # ---- parsing ----------------------------------------------------------------------------------
    def parse(self, topic: str) -> ReadingTopic:
        """Parse a readings topic; raise TopicError saying what is wrong."""
        root = self.data_root + "/"
        if not topic.startswith(root):
            raise TopicError(f"topic {topic!r} is not under {root}")
        parts = topic[len(root):].split("/")
        if len(parts) != 3:
            raise TopicError(f"topic {topic!r} needs exactly 3 levels after {root}: "
                             "<network>/<zone>/<sensor_id|batch|lp>")
        network, zone, leaf = parts
        _check_network(network)
        _check_segment("zone", zone)
        _check_segment("sensor_id", leaf)
        return ReadingTopic(network, zone, leaf)

    def is_readings(self, topic: str) -> bool:
        try:
            self.parse(topic)
        except TopicError:
            return False
        return True


def shared(topic_filter: str, group: str) -> str:
    """`$share/<group>/<filter>`: MQTT 5 shared subscription (Mosquitto also grants it to 3.1.1 clients)."""
    if not group or not _PREFIX_LEVEL.match(group):
        raise TopicError(f"bad shared-subscription group {group!r}")
    return f"$share/{group}/{topic_filter}"


DEFAULT_SCHEME = TopicScheme()
