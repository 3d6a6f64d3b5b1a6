"""Shared fixtures: real servers and tools the tests need, started here on loopback (see conftest_mqtt).

A missing tool is a skip on a developer's machine and a failure under CI=true: a suite that silently
skips what it cannot run tests nothing.
"""

from __future__ import annotations

import shutil

import pytest

from tests.servers import unavailable

pytest_plugins = ["tests.conftest_mqtt", "tests.conftest_influx", "tests.conftest_kafka"]


def require(what: str, found: str | None) -> str:
    if found:
        return found
    unavailable(f"{what} is not installed (scripts/test.sh installs it)")


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's headless Chromium, the browser operators' pages are tested in."""
    return require("chromium", shutil.which("chromium") or shutil.which("chromium-browser"))
