"""Zone-level detectors read the zone net-inflow series, one final bucket at a time."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from rules.detectors.base import Detector, Evaluation
from rules.zone_flows import FinalBucket


class ZoneDetector(Detector):
    zone_level = True

    @abstractmethod
    def evaluate_bucket(self, st: dict[str, Any], bucket: FinalBucket, level: Any) -> Evaluation | None:
        """Grades for this rule's zones (slots index `subjects`), or None when nothing is due."""
