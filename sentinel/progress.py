"""Progress lines for long work, on stderr, at most a few per second."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, label: str, *, stream: TextIO | None = None, every_s: float | None = None,
                 enabled: bool = True) -> None:
        self.label, self.stream, self.enabled = label, stream or sys.stderr, enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        # a terminal gets one line rewritten in place; a log file gets a full line now and then
        self.every_s = every_s if every_s is not None else (0.5 if self.tty else 5.0)
        self._last = 0.0
        self._t0 = time.monotonic()

    def update(self, done: int, total: int, extra: str = "", *, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._last < self.every_s):
            return
        self._last = now
        pct = 100.0 * done / total if total else 100.0
        rate = done / max(now - self._t0, 1e-9)
        line = f"{self.label}: {pct:5.1f}% {done:,}/{total:,} ({rate:,.0f}/s) {extra}"
        self.stream.write(f"\r{line}   " if self.tty else f"{line}\n")
        self.stream.flush()

    def done(self, summary: str = "") -> None:
        if self.enabled:
            lead = "\r" if self.tty else ""
            self.stream.write(f"{lead}{self.label}: done in {time.monotonic() - self._t0:.1f} s. {summary}\n")
            self.stream.flush()
