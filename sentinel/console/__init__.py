"""Operator console: a web page and REST/SSE API served by the sentinel process (FastAPI + uvicorn).

Entry points: `create_app` (the ASGI app), `ConsoleServer` (uvicorn on a thread), `start_in_process`
(what `sentinel run --console` calls), `add_console_commands` (the `sentinel console` CLI).
"""

from sentinel.console.actions import ActionsUnavailable, AlertActions, NoActions, PipelineActions
from sentinel.console.config import ConsoleConfig

__all__ = ["ActionsUnavailable", "AlertActions", "ConsoleConfig", "NoActions", "PipelineActions"]
