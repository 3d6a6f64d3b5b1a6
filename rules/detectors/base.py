"""What every detector is: compiled from one rule and the subjects it selected, state kept in arrays."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from rules.schema import RuleBase, Settings
from sentinel.catalog import Catalog


@dataclass
class Layer:
    """Readings of one layer: at most one per sensor, already accepted and in canonical units."""

    sensor: np.ndarray  # catalog index
    t: np.ndarray
    v: np.ndarray
    prev_t: np.ndarray  # the sensor's previous accepted time (NO_TIME if none)
    wm_before: np.ndarray  # the stream's watermark just before each reading arrived
    first_wm: int  # the first event time the engine ever saw


@dataclass
class Evaluation:
    """Raw grades for some subjects at some times, with the number the grade was judged on."""

    slots: np.ndarray
    t: np.ndarray
    raw: np.ndarray
    value: np.ndarray
    score: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)


class Detector(ABC):
    kind: ClassVar[str]
    zone_level: ClassVar[bool] = False
    reads_zone_pressure: ClassVar[bool] = False  # zone detectors that need pressure means per bucket
    sensor_subjects: ClassVar[bool] = False  # zone-grid detectors that judge (and alert on) single sensors

    @property
    def subject_is_zone(self) -> bool:
        """Subjects index the catalog's zones (else its sensors)."""
        return self.zone_level and not self.sensor_subjects

    def __init__(self, rule: RuleBase, subjects: np.ndarray, catalog: Catalog, settings: Settings) -> None:
        self.rule = rule
        self.subjects = subjects  # catalog sensor indices, or zone codes for zone-level detectors
        self.catalog = catalog
        self.settings = settings
        self.hold_ns = int(rule.hold * 1e9)

    @abstractmethod
    def new_state(self) -> dict[str, Any]:
        """Fresh state: a dict of numpy arrays (or array dataclasses) sized by the subjects."""

    @abstractmethod
    def describe(self, grade: int, value: float, score: float, unit: str) -> str:
        """One line an operator can act on; `unit` is the subject's canonical unit."""


def dense(slots: np.ndarray, n: int) -> np.ndarray | slice:
    """`slice(None)` when slots is every subject in order, so state arrays are used as views, not copies."""
    if len(slots) == n and n and slots[0] == 0 and slots[-1] == n - 1 and bool((np.diff(slots) == 1).all()):
        return slice(None)
    return slots


class SensorDetector(Detector):
    """Evaluated per reading, vectorised over the sensors of one layer."""

    @abstractmethod
    def evaluate(self, st: dict[str, Any], slots: np.ndarray, layer: Layer, sel: np.ndarray | slice,
                 level: np.ndarray) -> Evaluation:
        """Grades for layer readings `sel` (positions in the layer) of subjects `slots`."""
