"""The broker fixture's contract: skip without mosquitto, but fail under CI=true."""

from __future__ import annotations

import pytest

from tests import conftest_mqtt


def test_missing_mosquitto_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest_mqtt, "mosquitto_binary", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        conftest_mqtt._require_mosquitto()


def test_missing_mosquitto_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest_mqtt, "mosquitto_binary", lambda: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        conftest_mqtt._require_mosquitto()
