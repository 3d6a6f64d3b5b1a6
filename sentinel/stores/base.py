"""The one interface every store implements, so config alone chooses SQLite or InfluxDB."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from alerts.model import AlertChange
    from sentinel.deadletter import DeadLetter
    from sentinel.detections import Detection
    from sentinel.readings import Batch


class StoreFull(RuntimeError):
    """A store refuses more data for now (e.g. its disk spool is at its bound while InfluxDB is down).

    Raised before anything of the refused write is kept: the caller must not acknowledge its input and
    should retry later, so the backlog waits upstream (the MQTT broker) instead of being dropped.
    """


@runtime_checkable
class Store(Protocol):
    """Writes are durable once the call returns (or spooled, for remote stores); re-sent data overwrites."""

    def write_readings(self, batch: Batch) -> None: ...

    def write_detections(self, detections: Sequence[Detection]) -> None: ...

    def write_alert_changes(self, changes: Sequence[AlertChange]) -> None: ...

    def write_dead_letters(self, letters: Sequence[DeadLetter]) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...
