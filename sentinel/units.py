"""Units: every reading is converted once, at the edge, to one canonical unit per quantity.

Rules and stores only ever see canonical units, so a threshold written in kPa means the same for a
sensor that reports bar, MPa or metres of water head.
"""

from __future__ import annotations

from typing import Final

QUANTITIES: Final = ("pressure", "flow", "temperature", "gas_concentration", "level")

CANONICAL_UNIT: Final[dict[str, str]] = {
    "pressure": "kPa",
    "flow": "m3/h",
    "temperature": "degC",
    "gas_concentration": "%LEL",
    "level": "m",
}

# quantity -> unit alias -> (scale, offset): canonical = raw * scale + offset
_G = 9.80665  # 1 m of water head in kPa
_CONVERSIONS: Final[dict[str, dict[str, tuple[float, float]]]] = {
    "pressure": {
        "kpa": (1.0, 0.0),
        "pa": (0.001, 0.0),
        "mpa": (1000.0, 0.0),
        "bar": (100.0, 0.0),
        "mbar": (0.1, 0.0),
        "psi": (6.894757, 0.0),
        "m": (_G, 0.0),
        "mh2o": (_G, 0.0),
        "m_head": (_G, 0.0),
    },
    "flow": {
        "m3/h": (1.0, 0.0),
        "l/s": (3.6, 0.0),
        "m3/s": (3600.0, 0.0),
        "l/min": (0.06, 0.0),
        "m3/d": (1.0 / 24.0, 0.0),
    },
    "temperature": {
        "degc": (1.0, 0.0),
        "c": (1.0, 0.0),
        "°c": (1.0, 0.0),
        "k": (1.0, -273.15),
        "degf": (5.0 / 9.0, -32.0 * 5.0 / 9.0),
    },
    # methane: LEL is 5 %vol, so 1 %vol = 20 %LEL and 1 %LEL = 500 ppm
    "gas_concentration": {
        "%lel": (1.0, 0.0),
        "lel%": (1.0, 0.0),
        "%vol": (20.0, 0.0),
        "ppm": (1.0 / 500.0, 0.0),
    },
    "level": {
        "m": (1.0, 0.0),
        "cm": (0.01, 0.0),
        "mm": (0.001, 0.0),
    },
}

# Physically plausible canonical ranges: readings outside are dead-lettered as out of range.
PLAUSIBLE_RANGE: Final[dict[str, tuple[float, float]]] = {
    "pressure": (-101.325, 50_000.0),
    "flow": (-1.0e6, 1.0e6),
    "temperature": (-60.0, 250.0),
    "gas_concentration": (0.0, 1000.0),
    "level": (-100.0, 1000.0),
}


class UnitError(ValueError):
    """A unit that is unknown for its quantity."""


def conversion(quantity: str, unit: str) -> tuple[float, float]:
    """Return (scale, offset) converting `unit` to the canonical unit of `quantity`."""
    try:
        table = _CONVERSIONS[quantity]
    except KeyError:
        raise UnitError(f"unknown quantity {quantity!r}; expected one of {', '.join(QUANTITIES)}") from None
    try:
        return table[unit.strip().lower()]
    except KeyError:
        known = ", ".join(sorted(table))
        raise UnitError(f"unknown unit {unit!r} for {quantity}; accepted: {known}") from None
