"""The ideal-observer bound (bench/detection/ideal.py): its statistics on series whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.detection.ideal import (
    STEP_S,
    WEEK_S,
    ZoneNoise,
    burst_evidence,
    chance_at_least,
    hours_to_detect,
    measure_noise,
    phi,
    slow_leak_evidence,
    z_for,
    z_of,
)
from sentinel.events import LabelledEvent

NS = 1_000_000_000
START_NS = 1_746_374_400 * NS  # a Monday 00:00 UTC


def flat_zone(*, white: float = 0.5, daily_sd: float = 0.0, mean: float = 100.0) -> ZoneNoise:
    return ZoneNoise(np.full(336, mean), np.full(24, white), daily_sd, 86400.0, 0)


def diurnal_zone(*, daily_sd: float = 0.03) -> ZoneNoise:
    """Night use at 40 % of the mean, the peak at 160 %: the contrast that tells a leak from a busier day."""
    hours = (np.arange(336) % 48 + 0.5) / 2
    return ZoneNoise(100 - 60 * np.cos(2 * np.pi * hours / 24), np.full(24, 2.0), daily_sd, 86400.0, 0)


def leak(magnitude: float, days: float) -> LabelledEvent:
    return LabelledEvent("EV1", "water", "DMA1", "slow_leak", START_NS, START_NS + int(days * 86400 * NS), None,
                         magnitude, "test")


def test_z_of_is_the_one_sided_normal_quantile():
    assert z_of(0.05) == pytest.approx(1.6449, abs=1e-3)
    assert z_of(0.001) == pytest.approx(3.0902, abs=1e-3)
    assert phi(z_of(0.2)) == pytest.approx(0.8, abs=1e-6)
    with pytest.raises(ValueError, match="alpha"):
        z_of(0.0)


def test_burst_evidence_under_white_noise_alone_is_the_step_over_its_standard_error():
    noise = flat_zone(white=2.0)
    # a step of 8 m3/h read three times, each reading with 2 m3/h of noise: 8 * sqrt(3) / 2
    assert burst_evidence(noise, START_NS, 0.08) == pytest.approx(8 * math.sqrt(3) / 2, rel=1e-6)


def test_a_drifting_demand_level_costs_a_burst_little_but_hides_a_slow_leak():
    quiet, drifting = flat_zone(white=2.0), flat_zone(white=2.0, daily_sd=0.03)
    # the level before a burst is known from the last hours to a fraction of the white noise
    assert 0.75 * burst_evidence(quiet, START_NS, 0.08) < burst_evidence(drifting, START_NS, 0.08) \
        < burst_evidence(quiet, START_NS, 0.08)
    assert slow_leak_evidence(drifting, START_NS, 0.06, 5 * 86400, 48 * 3600) < \
        0.25 * slow_leak_evidence(quiet, START_NS, 0.06, 5 * 86400, 48 * 3600)


def test_slow_leak_evidence_grows_with_time_and_scales_with_the_leak():
    noise = flat_zone(daily_sd=0.03)
    d = [slow_leak_evidence(noise, START_NS, 0.06, 5 * 86400, h * 3600) for h in (12, 24, 48)]
    assert d[0] < d[1] < d[2]
    twice = slow_leak_evidence(noise, START_NS, 0.12, 5 * 86400, 48 * 3600)
    assert twice == pytest.approx(2 * d[2], rel=1e-6)  # the matched filter is linear in the signal


def test_a_bigger_leak_is_found_sooner_and_a_tiny_one_never():
    noise = diurnal_zone()
    large, medium = hours_to_detect(noise, leak(0.12, 4), 0.25), hours_to_detect(noise, leak(0.06, 5), 0.25)
    assert large is not None and medium is not None and large < medium
    assert hours_to_detect(noise, leak(0.001, 2), 0.25) is None
    assert hours_to_detect(noise, leak(0.06, 5), 1.0) <= medium  # a looser false-alert budget is never slower


def test_the_evidence_needed_follows_the_false_alerts_a_deadline_can_hold():
    # one false alert per zone-week over a 48-hour deadline: on 48/168 of leak-free windows at most
    assert z_for(1.0, 48 * 3600) == pytest.approx(z_of(48 / 168))
    assert z_for(0.25, 15 * 60) > z_for(0.25, 48 * 3600)  # a short deadline must be sure sooner


def test_slow_leak_evidence_without_drift_is_the_leak_over_the_half_hour_noise():
    noise = flat_zone(white=3.0)  # 3 m3/h per 5-minute reading: sqrt(6) less on a 30-minute mean
    d = slow_leak_evidence(noise, START_NS, 0.05, 86400, 3 * 3600)
    means = 5.0 * (np.arange(6) + 0.5) * 1800 / 86400  # the leak's flow at each half hour's middle
    assert d == pytest.approx(math.sqrt(np.sum((means / (3.0 / math.sqrt(6))) ** 2)), rel=1e-9)


def test_measure_noise_recovers_the_profile_and_the_white_noise_of_a_known_series():
    rng = np.random.default_rng(1)
    t = START_NS + np.arange(3 * WEEK_S // STEP_S, dtype=np.int64) * STEP_S * NS
    hour = (t // NS % 86400) / 3600
    profile = 100 + 40 * np.sin(2 * np.pi * hour / 24)
    flow = profile + rng.normal(0, 1.5, len(t))
    noise = measure_noise(t, flow, np.ones(len(t), dtype=bool), daily_sd=0.03, tau_s=86400.0, utc_offset_s=0)
    slot_hours = (np.arange(336) % 48 + 0.5) / 2
    error = np.abs(noise.profile - (100 + 40 * np.sin(2 * np.pi * slot_hours / 24)))
    assert error.mean() < 0.7 and error.max() < 3  # medians of three 30-minute means of 1.5 m3/h noise
    assert np.median(noise.white_sd) == pytest.approx(1.5, rel=0.1)
    assert noise.mean == pytest.approx(100, rel=0.01)


def test_measure_noise_refuses_too_little_quiet_data():
    t = START_NS + np.arange(1000, dtype=np.int64) * STEP_S * NS
    with pytest.raises(ValueError, match="too little quiet data"):
        measure_noise(t, np.ones(1000), np.ones(1000, dtype=bool), daily_sd=0.03, tau_s=86400.0, utc_offset_s=0)


def test_the_chance_of_meeting_a_target_counts_every_way_of_reaching_it() -> None:
    """Two sure events and two coin flips: at least 3 of 4 (75 %) is 3/4 likely, at least 80 % of 4
    (all four) 1/4, and at least 95 % of 20 sure ones is certain."""
    assert chance_at_least([1.0, 1.0, 0.5, 0.5], 0.75) == pytest.approx(0.75)
    assert chance_at_least([1.0, 1.0, 0.5, 0.5], 0.80) == pytest.approx(0.25)
    assert chance_at_least([1.0] * 20, 0.95) == pytest.approx(1.0)
    assert chance_at_least([0.9] * 8, 0.80) == pytest.approx(sum(math.comb(8, k) * 0.9**k * 0.1 ** (8 - k)
                                                                  for k in (7, 8)))
