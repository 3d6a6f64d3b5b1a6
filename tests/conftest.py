"""Shared fixtures: real servers and tools the tests need, started here on loopback (see conftest_mqtt).

A missing tool is a skip on a developer's machine and a failure under CI=true: a suite that silently
skips what it cannot run tests nothing.
"""

from __future__ import annotations

import os
import shutil

import pytest

pytest_plugins = ["tests.conftest_mqtt", "tests.conftest_influx"]


def require(what: str, found: str | None) -> str:
    if found:
        return found
    msg = f"{what} is not installed (scripts/test.sh installs it)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg + " (CI=true: this must not be skipped)", pytrace=False)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's headless Chromium, the browser operators' pages are tested in."""
    return require("chromium", shutil.which("chromium") or shutil.which("chromium-browser"))
