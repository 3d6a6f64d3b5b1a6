"""Shared fixtures: real servers the tests need are started here, on loopback (see conftest_mqtt)."""

pytest_plugins = ["tests.conftest_mqtt"]
