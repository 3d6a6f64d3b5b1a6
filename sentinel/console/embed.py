"""The console inside the live processor: the one call `sentinel run --console HOST:PORT` makes."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from alerts.routing.silences import SilenceBook
from sentinel.catalog import Catalog
from sentinel.console.actions import PipelineActions
from sentinel.console.app import create_app
from sentinel.console.config import ConsoleConfig
from sentinel.console.ops_db import OpsDB
from sentinel.console.rules_manager import RulesManager
from sentinel.console.server import ConsoleServer, parse_listen

if TYPE_CHECKING:
    from sentinel.live import LiveRunner

log = logging.getLogger(__name__)


def start_in_process(runner: LiveRunner, catalog: Catalog, *, store_path: str | Path, ops_db: str | Path, listen: str,
                     rule_files: Sequence[str | Path] = (), silences: SilenceBook | None = None,
                     resolve_after_s: float = 900.0, cookie_secure: bool = False) -> ConsoleServer:
    """Serve the console on `listen` from a background thread; actions go through `runner.call` (the
    processing thread). `resolve_after_s`: the processor's, so dry runs resolve alerts as it does.
    `rule_files`: the processor's `--rules`; the first is managed by the console
    (engineers can change it; the runner's RulesWatcher reloads it), the others are read. No rule files
    (shipped defaults, no watcher): rules are shown but cannot be changed here. Stop with `.stop()`."""
    files = [Path(p) for p in rule_files]
    cfg = ConsoleConfig(ops_db=Path(ops_db), rule_paths=tuple(files), cookie_secure=cookie_secure)
    ops = OpsDB(cfg.ops_db)
    rules = RulesManager(files[0], ops, catalog, store_path, other_paths=files[1:],
                         resolve_after_s=resolve_after_s) if files else None
    actions = PipelineActions(runner.pipeline, runner.call)
    app = create_app(cfg, store_path=store_path, catalog=catalog, actions=actions, rules=rules, silences=silences)
    host, port = parse_listen(listen)
    server = ConsoleServer(app, host, port).start()
    if not ops.users():
        log.warning("console: no users yet; add one with `sentinel console user add NAME --role operator "
                    "--ops-db %s`", cfg.ops_db)
    log.info("console: %s (ops db %s, rules %s)", server.url, cfg.ops_db,
             f"managed in {files[0]}" if files else "not managed: run with --rules FILE to change them here")
    return server
