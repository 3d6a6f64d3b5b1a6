"""Fan every write out to several stores, e.g. SQLite for the operator console and InfluxDB for dashboards."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from sentinel.stores.base import Store

if TYPE_CHECKING:
    from alerts.model import AlertChange
    from sentinel.deadletter import DeadLetter
    from sentinel.detections import Detection
    from sentinel.readings import Batch


class MultiStore:
    """Writes go to `primary` first, then to each of `others`, in order.

    A write that raises (e.g. `SpoolFull` from InfluxDB's spool: backpressure) propagates at once, so
    the caller does not acknowledge its input; the redelivered input then rewrites the stores that did
    take it, which is harmless because every store overwrites re-sent data. `flush` and `close` reach
    every store even if one fails, and re-raise the first failure.
    """

    def __init__(self, primary: Store, *others: Store) -> None:
        self.primary = primary
        self.stores: tuple[Store, ...] = (primary, *others)

    def __repr__(self) -> str:
        return f"MultiStore({', '.join(repr(s) for s in self.stores)})"

    def write_readings(self, batch: Batch) -> None:
        for s in self.stores:
            s.write_readings(batch)

    def write_detections(self, detections: Sequence[Detection]) -> None:
        for s in self.stores:
            s.write_detections(detections)

    def write_alert_changes(self, changes: Sequence[AlertChange]) -> None:
        for s in self.stores:
            s.write_alert_changes(changes)

    def write_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        for s in self.stores:
            s.write_dead_letters(letters)

    def _all(self, call: Callable[[Store], None]) -> None:
        first: BaseException | None = None
        for s in self.stores:
            try:
                call(s)
            except Exception as exc:
                first = first or exc
        if first is not None:
            raise first

    def flush(self) -> None:
        self._all(lambda s: s.flush())

    def close(self) -> None:
        self._all(lambda s: s.close())
