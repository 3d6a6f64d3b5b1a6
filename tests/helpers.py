"""Small builders shared by tests: a catalog and readings without files."""

from __future__ import annotations

import numpy as np

from rules.loader import RuleSet
from rules.schema import RuleFile, Settings
from sentinel.catalog import Catalog, Sensor
from sentinel.readings import Batch

T0 = 1_735_689_600 * 10**9  # 2025-01-01T00:00:00Z
MIN = 60 * 10**9
_CST_DAY = (T0 + 8 * 3_600_000_000_000) // (86_400 * 10**9)
MONDAY_CST = (_CST_DAY - (_CST_DAY + 3) % 7) * 86_400 * 10**9 - 8 * 3_600_000_000_000  # 00:00 UTC+8, a Monday


def catalog(*rows: dict) -> Catalog:
    return Catalog.from_sensors(Sensor.model_validate(r) for r in rows)


def ruleset(*rules: dict, settings: dict | None = None) -> RuleSet:
    rf = RuleFile.model_validate({"rules": list(rules), "settings": settings})
    return RuleSet(rf.settings or Settings(), tuple(rf.rules), ("<test>",))


def series_batch(cat: Catalog, columns: dict[str, np.ndarray], step_ns: int = MIN, t0: int = T0) -> Batch:
    """Interleave equal-length per-sensor series in time order, as a live stream would arrive."""
    ids = list(columns)
    n = len(next(iter(columns.values())))
    t = t0 + np.arange(n, dtype=np.int64) * step_ns
    sensor = np.tile(np.array([cat.index[i] for i in ids]), n)
    time = np.repeat(t, len(ids))
    value = np.stack([columns[i] for i in ids], axis=1).ravel()
    return Batch.of(sensor, time, value)
