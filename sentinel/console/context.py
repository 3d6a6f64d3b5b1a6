"""What every route needs, in one object on `app.state.console` (no module-level globals: two consoles,
e.g. in tests, never share state)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request

from rules.loader import RuleSet, load_rules
from rules.schema import Settings
from sentinel.catalog import Catalog
from sentinel.console.actions import AlertActions
from sentinel.console.config import ConsoleConfig
from sentinel.console.ops_db import OpsDB
from sentinel.console.rules_manager import RulesManager
from sentinel.console.silences import SilenceService
from sentinel.console.store_reader import StoreReader
from sentinel.errors import InputErrors

log = logging.getLogger(__name__)


@dataclass
class Console:
    cfg: ConsoleConfig
    ops: OpsDB
    reader: StoreReader
    catalog: Catalog
    actions: AlertActions
    rules: RulesManager | None
    silences: SilenceService
    _rules_cache: tuple[tuple, RuleSet] | None = field(default=None, repr=False)
    _rules_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _rule_paths(self) -> list[Path]:
        if self.rules is not None:
            return [p for p in [self.rules.active_path, *self.rules.other_paths] if p.exists()]
        return list(self.cfg.rule_paths)

    def active_rules(self) -> RuleSet:
        """The rules the processor runs, re-read when a file changes (cached by mtime)."""
        paths = self._rule_paths()
        stamp = tuple((str(p), p.stat().st_mtime_ns if p.exists() else -1) for p in paths)
        with self._rules_lock:
            if self._rules_cache is None or self._rules_cache[0] != stamp:
                try:
                    ruleset = load_rules(paths or None)
                except InputErrors as exc:  # the processor keeps its running rules then; so do we
                    log.error("console: rule files have errors, showing the last good rules:\n%s", exc)
                    ruleset = self._rules_cache[1] if self._rules_cache else RuleSet(Settings(), (), ())
                self._rules_cache = (stamp, ruleset)
            return self._rules_cache[1]


def console(request: Request) -> Console:
    return request.app.state.console
