"""A file whose age says a long-running loop still turns: container health checks read it."""

from __future__ import annotations

import time
from pathlib import Path


class Heartbeat:
    def __init__(self, path: Path | None, every_s: float = 5.0) -> None:
        self.path, self.every_s = path, every_s
        self._last = float("-inf")

    def beat(self) -> None:
        """Touch the file, at most every `every_s` (cheap to call from a hot loop)."""
        if self.path is None:
            return
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.touch()
