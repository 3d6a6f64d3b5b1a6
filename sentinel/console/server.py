"""uvicorn on a background thread: how the console runs inside the processor (whose loop owns the main
thread) and in tests. Stops within `grace_s` even with event streams open."""

from __future__ import annotations

import threading
import time

import uvicorn
from fastapi import FastAPI


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `[v6]:PORT` or `:PORT` (all interfaces); port 0 picks a free one."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"--listen wants HOST:PORT, got {text!r}")
    return (host.strip("[]") or "0.0.0.0"), int(port)


class ConsoleServer:
    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 8080, *, access_log: bool = False,
                 log_level: str = "warning", grace_s: float = 2.0) -> None:
        # log_config=None: uvicorn's records go through the host process's logging, not a config of its own
        config = uvicorn.Config(app, host=host, port=port, access_log=access_log, log_level=log_level,
                                log_config=None, timeout_graceful_shutdown=grace_s, lifespan="off")
        self.server = uvicorn.Server(config)
        self.host, self.port = host, port
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{self.port}"

    def start(self, timeout_s: float = 15.0) -> ConsoleServer:
        """Start serving; returns once the socket listens (raises if it could not, e.g. port in use)."""
        self._thread = threading.Thread(target=self.server.run, name="console-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"console could not listen on {self.host}:{self.port} (see the log)")
            time.sleep(0.02)
        if self.port == 0:
            self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout_s)
