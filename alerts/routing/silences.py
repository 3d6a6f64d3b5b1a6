"""Silences: an operator's "I know, stop telling me" for a time window (maintenance, a known outage).

A silence matches alerts by exact labels (network, zone, sensor_id, subject, rule; all given must
match) and mutes them from `starts_ns` to `ends_ns`. It never deletes anything: expiring a silence ends
it now and keeps it, so the console can show who muted what, when and why. The book is shared between
the console (writes) and the router (reads), hence its lock.
"""

from __future__ import annotations

import builtins
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from alerts.model import Alert

SILENCE_MATCHERS: tuple[str, ...] = ("network", "zone", "sensor_id", "subject", "rule")
SNAPSHOT_VERSION = 1


def _alert_value(a: Alert, name: str) -> str:
    return {"network": a.network, "zone": a.zone, "sensor_id": a.sensor_id or "", "subject": a.subject,
            "rule": a.rule_id}[name]


@dataclass(frozen=True)
class Silence:
    """Mutes matching alerts in [starts_ns, ends_ns). Needs at least one matcher: muting everything by
    accident is the one mistake a silence must not allow."""

    id: str
    matchers: Mapping[str, str] = field(hash=False)
    starts_ns: int
    ends_ns: int
    created_by: str
    comment: str = ""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.matchers) - set(SILENCE_MATCHERS))
        if unknown:
            raise ValueError(f"unknown silence matcher {unknown[0]!r}; use {', '.join(SILENCE_MATCHERS)}")
        if not self.matchers or not all(isinstance(v, str) and v for v in self.matchers.values()):
            raise ValueError("a silence needs at least one non-empty matcher (network, zone, sensor_id, "
                             "subject or rule)")
        if self.ends_ns <= self.starts_ns:
            raise ValueError("a silence must end after it starts")
        if not self.created_by:
            raise ValueError("a silence needs created_by (who muted it)")
        object.__setattr__(self, "matchers", dict(self.matchers))

    @classmethod
    def new(cls, matchers: Mapping[str, str], starts_ns: int, ends_ns: int, created_by: str,
            comment: str = "") -> Silence:
        """A silence with a fresh random id (silences are made by people, not replayed)."""
        return cls(uuid.uuid4().hex[:12], matchers, starts_ns, ends_ns, created_by, comment)

    def is_active(self, now_ns: int) -> bool:
        return self.starts_ns <= now_ns < self.ends_ns

    def matches(self, a: Alert) -> bool:
        return all(_alert_value(a, name) == value for name, value in self.matchers.items())

    def to_state(self) -> dict[str, Any]:
        return {"id": self.id, "matchers": dict(self.matchers), "starts_ns": self.starts_ns,
                "ends_ns": self.ends_ns, "created_by": self.created_by, "comment": self.comment}

    @classmethod
    def from_state(cls, d: Mapping[str, Any]) -> Silence:
        return cls(str(d["id"]), dict(d["matchers"]), int(d["starts_ns"]), int(d["ends_ns"]),
                   str(d["created_by"]), str(d.get("comment", "")))


class SilenceBook:
    """All silences, past, current and future. Thread-safe."""

    def __init__(self, silences: Iterable[Silence] = ()) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, Silence] = {s.id: s for s in silences}

    def add(self, silence: Silence) -> Silence:
        """Add a silence, or replace the one with its id (an edit)."""
        with self._lock:
            self._by_id[silence.id] = silence
        return silence

    def expire(self, silence_id: str, now_ns: int) -> Silence:
        """End a silence now (or drop a future one's window to nothing); raises KeyError if unknown."""
        with self._lock:
            s = self._by_id[silence_id]
            if s.ends_ns > now_ns:
                start = min(s.starts_ns, now_ns - 1)
                s = replace(s, starts_ns=start, ends_ns=now_ns)
                self._by_id[silence_id] = s
            return s

    def get(self, silence_id: str) -> Silence | None:
        with self._lock:
            return self._by_id.get(silence_id)

    def active(self, now_ns: int) -> builtins.list[Silence]:
        return [s for s in self.list() if s.is_active(now_ns)]

    def matches(self, a: Alert, now_ns: int) -> Silence | None:
        """The active silence that mutes `a` (the earliest to start), or None."""
        return next((s for s in self.active(now_ns) if s.matches(a)), None)

    def prune(self, ended_before_ns: int) -> int:
        """Forget silences that ended before `ended_before_ns`; returns how many."""
        with self._lock:
            old = [k for k, s in self._by_id.items() if s.ends_ns < ended_before_ns]
            for k in old:
                del self._by_id[k]
            return len(old)

    def snapshot(self) -> dict[str, Any]:
        return {"version": SNAPSHOT_VERSION, "silences": [s.to_state() for s in self.list()]}

    @classmethod
    def restore(cls, data: Mapping[str, Any]) -> SilenceBook:
        if data.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unsupported silence snapshot version {data.get('version')!r}")
        return cls(Silence.from_state(d) for d in data.get("silences", []))

    def __len__(self) -> int:
        return len(self._by_id)

    def list(self) -> builtins.list[Silence]:
        """Every silence, by start time then id."""
        with self._lock:
            return sorted(self._by_id.values(), key=lambda s: (s.starts_ns, s.id))
