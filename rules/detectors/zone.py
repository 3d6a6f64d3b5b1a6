"""Zone-level detectors read the zone net-inflow series, one final bucket at a time."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import numpy as np

from rules.detectors.base import Detector, Evaluation
from rules.zone_flows import FinalBucket


class ZoneDetector(Detector):
    zone_level = True

    def readiness(self, st: dict[str, Any]) -> np.ndarray | None:
        """Per zone, the share (0-1) of what the rule must learn before it judges at every hour that it has
        learned (1: judging); None where the rule does not keep such a count. For commissioning reports."""
        return None

    @abstractmethod
    def evaluate_bucket(self, st: dict[str, Any], bucket: FinalBucket, level: Any) -> Evaluation | None:
        """Grades for this rule's zones (slots index `subjects`), or None when nothing is due."""
