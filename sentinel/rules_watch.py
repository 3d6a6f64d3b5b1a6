"""Hot reload of rule files: poll their mtimes; a file with an error keeps the previous rules running."""

from __future__ import annotations

import logging
from pathlib import Path

from rules.loader import RuleSet, load_rules
from sentinel.errors import InputErrors

log = logging.getLogger(__name__)


class RulesWatcher:
    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self._stamp = self._stamps()

    def _stamps(self) -> tuple[float, ...]:
        return tuple(p.stat().st_mtime_ns if p.exists() else -1 for p in self.paths)

    def poll(self) -> RuleSet | None:
        """A new RuleSet when a file changed and all files are valid; None otherwise."""
        stamp = self._stamps()
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        try:
            return load_rules(self.paths)
        except InputErrors as exc:
            log.error("rule files changed but have errors; keeping the running rules:\n%s", exc)
            return None
