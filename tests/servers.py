"""What every real-server fixture shares: a free loopback port, and the CI rule for a missing server."""

from __future__ import annotations

import os
import socket
from typing import NoReturn

import pytest


def unavailable(msg: str) -> NoReturn:
    """Skip on a developer's machine; fail under CI=true, where a silently skipped suite tests nothing."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg + " (CI=true: this must not be skipped)", pytrace=False)
    pytest.skip(msg)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
