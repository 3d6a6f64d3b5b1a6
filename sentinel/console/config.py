"""Console settings: what an operator centre tunes (session length, refresh pace, limits), nothing secret."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ConsoleConfig:
    """Knobs of the operator console. `ops_db` is the console's own SQLite file (users, audit, ...)."""

    ops_db: Path
    title: str = "管网哨兵 Lifeline Sentinel"
    session_ttl_s: float = 12 * 3600.0  # one shift
    api_token_ttl_s: float = 90 * 86400.0  # machine tokens, unless asked otherwise
    api_token_max_ttl_s: float = 366 * 86400.0
    cookie_secure: bool = False  # set behind TLS, so the session cookie never travels in clear
    stream_poll_s: float = 0.5  # how often the event stream looks for new rows in the store
    heartbeat_s: float = 10.0  # keeps proxies from closing an idle stream; also re-checks the token
    readings_max_points: int = 2000  # a chart never needs more; keeps bursts visible (min/max per bucket)
    dry_run_max_hours: float = 7 * 24.0
    dry_run_max_readings: int = 3_000_000
    rule_paths: tuple[Path, ...] = field(default=())  # rules shown when no RulesManager (empty: defaults)
