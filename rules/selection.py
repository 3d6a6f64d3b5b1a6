"""Selectors pick a rule's subjects from the catalog: sensors, or zones for zone-level rules."""

from __future__ import annotations

import numpy as np

from rules.schema import Selector
from sentinel.catalog import Catalog


def select_sensors(sel: Selector, catalog: Catalog) -> np.ndarray:
    def ok(s) -> bool:
        return ((not sel.network or s.network in sel.network)
                and (not sel.zone or s.zone in sel.zone)
                and (not sel.quantity or s.quantity in sel.quantity)
                and (not sel.role or s.role in sel.role)
                and (not sel.sensor_id or s.sensor_id in sel.sensor_id)
                and (not sel.tags or any(t in s.tags for t in sel.tags)))

    return np.array([i for i, s in enumerate(catalog.sensors) if ok(s)], dtype=np.int64)


def select_zones(sel: Selector, catalog: Catalog, eligible: np.ndarray) -> np.ndarray:
    """Zone codes matching network/zone (other selector fields do not apply to zones)."""
    out = []
    for code, name in enumerate(catalog.zones):
        network, zone = name.split("/", 1)
        if eligible[code] and (not sel.network or network in sel.network) and (not sel.zone or zone in sel.zone):
            out.append(code)
    return np.array(out, dtype=np.int64)
