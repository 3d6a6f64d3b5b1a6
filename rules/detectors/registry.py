"""Rule kind -> detector class. A new kind is a new module plus one line here."""

from __future__ import annotations

from rules.detectors.base import Detector
from rules.detectors.burst_fingerprint import BurstFingerprintDetector, InflowDropDetector
from rules.detectors.cusum import CusumDetector
from rules.detectors.deadman import DeadmanDetector
from rules.detectors.ewma import EwmaDetector
from rules.detectors.flatline import FlatlineDetector
from rules.detectors.inflow_excess import InflowExcessDetector
from rules.detectors.night_flow import NightFlowDetector
from rules.detectors.peer_deviation import PeerDeviationDetector
from rules.detectors.rate_of_change import RateOfChangeDetector
from rules.detectors.threshold import ThresholdDetector
from rules.detectors.zone_balance import ZoneBalanceDetector

DETECTORS: dict[str, type[Detector]] = {
    cls.kind: cls
    for cls in (ThresholdDetector, RateOfChangeDetector, EwmaDetector, CusumDetector, DeadmanDetector,
                FlatlineDetector, NightFlowDetector, ZoneBalanceDetector, BurstFingerprintDetector,
                InflowDropDetector, PeerDeviationDetector, InflowExcessDetector)
}
