"""Minimum night flow against the same weekday's recent nights: each weekday's night has its own shape."""

from __future__ import annotations

import numpy as np

from rules.engine import Engine
from tests.helpers import MIN, MONDAY_CST, catalog, ruleset, series_batch

ZONE = [{"sensor_id": "FI", "network": "water", "zone": "DMA1", "quantity": "flow", "unit": "m3/h",
         "role": "inlet", "interval_s": 300}]
SETTINGS = {"zone_bucket": "15m", "zone_lateness": "5m", "utc_offset_h": 8}
STEP = 15 * MIN
PER_DAY = 96
MONDAY = MONDAY_CST


def _inflow(days: int, *, wednesday_nights: float = 1.0, seed: int = 1) -> np.ndarray:
    """15-minute inflow with a 20 m3/h night; the nights into Wednesday run `wednesday_nights` times that,
    every week: a weekday's own shape (a night shift, say), not a leak."""
    rng = np.random.default_rng(seed)
    n = days * PER_DAY
    h = (np.arange(n) * 15 / 60) % 24
    day = np.arange(n) // PER_DAY  # day 0 is a Monday
    night = 20.0 * np.where(day % 7 == 2, wednesday_nights, 1.0)
    shape = np.where((h >= 1) & (h < 5), night, 20 + 50 * np.exp(-((h - 8) ** 2) / 4))
    return shape * (1 + rng.normal(0, 0.01, n))


def _raised(flow: np.ndarray, **rule: object) -> list[int]:
    """Days (since the first Monday) on which the rule raised an alarm."""
    eng = Engine(catalog(*ZONE), ruleset({"id": "mnf", "kind": "night_flow", "increase": 0.1, "warmup_nights": 2,
                                          **rule}, settings=SETTINGS))
    state = eng.new_state()
    out = eng.step(state, series_batch(eng.catalog, {"FI": flow}, step_ns=STEP, t0=MONDAY)).detections
    return [int((d.time_ns - MONDAY) // (86_400 * 10**9)) for d in out if d.transition == "raised"]


def test_a_weekday_with_a_busier_night_every_week_is_not_a_leak_against_its_own_weekday() -> None:
    flow = _inflow(22, wednesday_nights=1.2)
    assert _raised(flow, reference="day_type") == [2, 9, 16]  # every Wednesday 04:00: weekdays are alike
    assert _raised(flow, reference="weekday") == [2]  # once: its first Wednesday, taken as its shape


def test_a_leak_still_shows_against_the_same_weekday() -> None:
    flow = _inflow(22)
    flow[16 * PER_DAY:] += 4.0  # 20 % of the night flow from Wednesday of the third week
    assert _raised(flow, reference="weekday") == [16]  # that night, 04:00


def test_with_unseen_weekday_skip_a_weekday_is_judged_only_once_it_has_been_seen() -> None:
    flow = _inflow(22, wednesday_nights=1.2)
    assert _raised(flow, reference="weekday", unseen_weekday="skip") == []  # not even its first Wednesday
    flow[16 * PER_DAY:] += 4.0  # a leak in the third week still shows
    assert _raised(flow, reference="weekday", unseen_weekday="skip") == [16]


def test_with_unseen_weekday_skip_a_first_week_leak_waits_for_its_weekday_to_come_round() -> None:
    flow = _inflow(22)
    flow[3 * PER_DAY:] += 4.0  # from the first Thursday: that night is learned as Thursday's shape
    assert _raised(flow, reference="weekday")[:1] == [3]  # judged against weekdays at once
    # the cost of skipping: nothing in the zone's first week; the first Monday that was seen clean raises it
    assert _raised(flow, reference="weekday", unseen_weekday="skip")[:1] == [7]
