"""Progress lines for long work, on stderr, at most a few per second."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, label: str, *, stream: TextIO | None = None, every_s: float = 0.5,
                 enabled: bool = True) -> None:
        self.label, self.stream, self.every_s, self.enabled = label, stream or sys.stderr, every_s, enabled
        self._last = 0.0
        self._t0 = time.monotonic()

    def update(self, done: int, total: int, extra: str = "", *, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._last < self.every_s):
            return
        self._last = now
        pct = 100.0 * done / total if total else 100.0
        rate = done / max(now - self._t0, 1e-9)
        self.stream.write(f"\r{self.label}: {pct:5.1f}% {done:,}/{total:,} ({rate:,.0f}/s) {extra}   ")
        self.stream.flush()

    def done(self, summary: str = "") -> None:
        if self.enabled:
            self.stream.write(f"\r{self.label}: done in {time.monotonic() - self._t0:.1f} s. {summary}\n")
            self.stream.flush()
