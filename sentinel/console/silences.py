"""Silences as the console keeps them: persisted in the ops DB, mirrored into the shared `SilenceBook`.

The book (alerts/routing/silences.py) is what the router in the same process consults before it notifies;
the ops DB is what survives a restart and what a processor in another process can load
(`SilenceService(OpsDB(path), its_book).refresh()`, e.g. every few seconds).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from alerts.model import Alert
from alerts.routing.silences import SILENCE_MATCHERS, Silence, SilenceBook
from sentinel.catalog import Catalog
from sentinel.console.ops_db import OpsDB


@dataclass(frozen=True)
class SilenceView:
    silence: Silence
    status: str  # active | pending | expired
    expired_by: str | None


def status_of(s: Silence, now_ns: int) -> str:
    if s.is_active(now_ns):
        return "active"
    return "pending" if s.starts_ns > now_ns else "expired"


class SilenceService:
    def __init__(self, ops: OpsDB, book: SilenceBook | None = None, catalog: Catalog | None = None) -> None:
        self.ops = ops
        self.book = book if book is not None else SilenceBook()
        self.catalog = catalog
        self._expired_by: dict[str, str] = {}
        self.refresh()

    def refresh(self) -> None:
        """Load what the ops DB holds into the book (another console may have added or expired some)."""
        for state, expired_by in self.ops.silence_rows():
            s = Silence.from_state(state)
            if self.book.get(s.id) != s:
                self.book.add(s)
            if expired_by:
                self._expired_by[s.id] = expired_by

    def check_matchers(self, matchers: Mapping[str, str]) -> None:
        """Refuse names the catalog does not know: a typo would silence nothing while the operator
        believes the zone is muted."""
        unknown = sorted(set(matchers) - set(SILENCE_MATCHERS))
        if unknown:
            raise ValueError(f"unknown matcher {unknown[0]!r}; use {', '.join(SILENCE_MATCHERS)}")
        cat = self.catalog
        if cat is None:
            return
        if "sensor_id" in matchers and matchers["sensor_id"] not in cat.index:
            raise ValueError(f"unknown sensor {matchers['sensor_id']!r}")
        zones = {z.split("/", 1)[1] for z in cat.zones}
        if "zone" in matchers and matchers["zone"] not in zones:
            raise ValueError(f"unknown zone {matchers['zone']!r}")
        both = "network" in matchers and "zone" in matchers
        if both and f"{matchers['network']}/{matchers['zone']}" not in cat.zones:
            raise ValueError(f"zone {matchers['zone']!r} is not in the {matchers['network']} network")

    def add(self, matchers: Mapping[str, str], starts_ns: int, ends_ns: int, created_by: str,
            comment: str) -> Silence:
        """Raises ValueError for a silence that would mute nothing known, everything, or no time."""
        self.check_matchers(matchers)
        s = Silence.new(dict(matchers), starts_ns, ends_ns, created_by, comment)
        self.ops.save_silence(s.to_state())
        self.book.add(s)
        return s

    def expire(self, silence_id: str, actor: str, now_ns: int) -> Silence:
        """End a silence now (kept, with who ended it). KeyError if unknown."""
        if self.book.get(silence_id) is None:
            self.refresh()
        s = self.book.expire(silence_id, now_ns)
        self.ops.save_silence(s.to_state(), expired_by=actor)
        self._expired_by[s.id] = actor
        return s

    def get(self, silence_id: str, now_ns: int) -> SilenceView | None:
        s = self.book.get(silence_id)
        return SilenceView(s, status_of(s, now_ns), self._expired_by.get(s.id)) if s else None

    def views(self, now_ns: int, state: str = "current") -> list[SilenceView]:
        """`current` (active and pending), `active`, `pending`, `expired` or `all`."""
        out = []
        for s in self.book.list():
            st = status_of(s, now_ns)
            if state == "all" or st == state or (state == "current" and st != "expired"):
                out.append(SilenceView(s, st, self._expired_by.get(s.id)))
        return out

    def muting(self, alert: Alert, now_ns: int) -> Silence | None:
        return self.book.matches(alert, now_ns)
