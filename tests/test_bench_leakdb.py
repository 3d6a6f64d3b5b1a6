"""LeakDB scoring and MNF baseline: hand-computed expectations pin the reimplementation to the MATLAB."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.detection.leakdb import (
    LeakdbScore,
    early_detection_scores,
    mnf_labels,
    resample_mean,
    score_leakdb,
    step_labels,
)


def leak(n: int, first: int, last: int) -> np.ndarray:
    """0/1 row of length n with ones at first..last inclusive."""
    row = np.zeros(n, dtype=np.int8)
    row[first:last + 1] = 1
    return row


def sed_score(dt: int, tw: int, alpha: float = 5.0) -> float:
    return 2.0 / (1.0 + math.exp(alpha * dt / tw))


# --- scoring -----------------------------------------------------------------------------------------

def test_perfect_detector_scores_one_everywhere() -> None:
    # Leaks of 40 steps: the 10-step after-window keeps a label copy at 40/50 = 0.8 > 0.75 persistence.
    truth = np.stack([leak(100, 5, 44), leak(100, 60, 99)])
    s = score_leakdb(truth, truth.copy())
    assert s == LeakdbScore(tp=80, tn=120, fp=0, fn=0, tpr=1.0, tnr=1.0, f1=1.0, sed=1.0, faults=2)


def test_label_copy_of_short_leak_fails_persistence() -> None:
    # LeakDB quirk kept on purpose: the window runs 10 steps past the fault, so an alarm that clears with
    # the leak covers L / (L + 10) of it and needs L > 30 steps (15 h at 30 min) to count as detected.
    assert score_leakdb(leak(100, 10, 39), leak(100, 10, 39)).sed == 0.0  # 30/40 = 0.75
    assert score_leakdb(leak(100, 10, 40), leak(100, 10, 40)).sed == 1.0  # 31/41 > 0.75
    assert score_leakdb(leak(100, 10, 19), leak(100, 10, 19), after_steps=0).sed == 1.0


def test_null_detector() -> None:
    truth = leak(40, 5, 14)
    s = score_leakdb(truth, np.zeros(40, dtype=np.int8))
    assert (s.tp, s.tn, s.fp, s.fn) == (0, 30, 0, 10)
    assert s.tpr == 0.0
    assert s.tnr == 1.0
    assert s.f1 == 0.0
    assert s.sed == 0.0
    assert s.faults == 1


def test_pooled_confusion_and_f1() -> None:
    truth = np.array([[0, 1, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0]])
    alarms = np.array([[0, 0, 1, 1, 1, 0], [1, 0, 0, 0, 0, 0]])
    s = score_leakdb(truth, alarms)
    assert (s.tp, s.tn, s.fp, s.fn) == (2, 7, 2, 1)
    assert s.tpr == pytest.approx(2 / 3)
    assert s.tnr == pytest.approx(7 / 9)
    assert s.f1 == pytest.approx(4 / 7)


@pytest.mark.parametrize("dt", [0, 1, 4, 10, 29])
def test_delay_scores_logistic(dt: int) -> None:
    # Leak 10..29 in 60 steps: tw_ex = 10, tw = 29 - 10 + 10 = 29; alarm latches on at 10 + dt.
    truth = leak(60, 10, 29)
    alarms = np.zeros(60, dtype=np.int8)
    alarms[10 + dt:] = 1
    assert score_leakdb(truth, alarms).sed == pytest.approx(sed_score(dt, 29))


def test_alpha_is_a_parameter() -> None:
    truth = leak(60, 10, 29)
    alarms = leak(60, 14, 59)
    assert score_leakdb(truth, alarms, alpha=6.0).sed == pytest.approx(sed_score(4, 29, alpha=6.0))


def test_alarm_after_window_scores_zero() -> None:
    # Window is 10..39 (tw = 29); an alarm from 40 on is outside it.
    truth = leak(60, 10, 29)
    assert score_leakdb(truth, leak(60, 40, 59)).sed == 0.0


def test_flickering_alarm_scores_zero() -> None:
    truth = leak(60, 10, 29)
    alarms = np.zeros(60, dtype=np.int8)
    alarms[10::2] = 1  # on half the time
    assert score_leakdb(truth, alarms).sed == 0.0


def test_persistence_is_strictly_greater_than_threshold() -> None:
    # Leak 0..5, after_steps 2 -> tw = 7, window = steps 0..7 (8 steps).
    truth = leak(20, 0, 5)
    exactly = leak(20, 0, 5)  # 6/8 = 0.75 of the window: not enough
    above = leak(20, 0, 6)  # 7/8 > 0.75
    assert score_leakdb(truth, exactly, after_steps=2).sed == 0.0
    assert score_leakdb(truth, above, after_steps=2).sed == 1.0
    assert score_leakdb(truth, exactly, after_steps=2, persistence=0.7).sed == 1.0


def test_persistence_counts_from_first_alarm_not_window_start() -> None:
    # Leak 10..29, window 10..39; alarm on from step 30 to the end: Dt = 20, window[20:] all ones.
    truth = leak(60, 10, 29)
    assert score_leakdb(truth, leak(60, 30, 59)).sed == pytest.approx(sed_score(20, 29))


def test_alarm_already_on_at_fault_start_scores_one() -> None:
    truth = leak(40, 10, 19)
    alarms = leak(40, 3, 39)
    s = score_leakdb(truth, alarms)
    assert s.sed == 1.0
    assert s.fp == 7 + 20


def test_leak_to_last_step_clips_window() -> None:
    # Leak 12..19 in 20 steps: tw_ex clipped to 0, tw = 7, alarm from 14 -> Dt = 2.
    truth = leak(20, 12, 19)
    alarms = leak(20, 14, 19)
    assert score_leakdb(truth, alarms).sed == pytest.approx(sed_score(2, 7))


def test_after_window_clipped_per_fault_not_carried_over() -> None:
    # LeakDB's MATLAB keeps the clipped tw_ex for every later fault (even other scenarios). Here the
    # first scenario's leak runs to the end; the second must still get the full 10-step window: tw = 14.
    truth = np.stack([leak(40, 30, 39), leak(40, 5, 9)])
    alarms = np.stack([leak(40, 30, 39), leak(40, 8, 39)])
    scores = early_detection_scores(truth, alarms)
    assert scores == pytest.approx([1.0, sed_score(3, 14)])
    assert score_leakdb(truth, alarms).sed == pytest.approx((1.0 + sed_score(3, 14)) / 2)


def test_leak_from_step_zero_is_a_fault() -> None:
    truth = leak(30, 0, 9)
    assert score_leakdb(truth, leak(30, 2, 29)).sed == pytest.approx(sed_score(2, 19))


def test_single_step_leak_at_end_guards_zero_tw() -> None:
    truth = leak(10, 9, 9)
    assert score_leakdb(truth, leak(10, 9, 9)).sed == 1.0
    assert score_leakdb(truth, np.zeros(10, dtype=np.int8)).sed == 0.0


def test_several_faults_in_one_scenario_average() -> None:
    # Faults 5..9 (tw 14) and 30..34 (tw 14); first detected at Dt 0, second missed.
    truth = leak(60, 5, 9) | leak(60, 30, 34)
    alarms = leak(60, 5, 19)
    s = score_leakdb(truth, alarms)
    assert s.faults == 2
    assert s.sed == pytest.approx(0.5)


def test_no_faults_leaves_undefined_ratios_none() -> None:
    s = score_leakdb(np.zeros((2, 10)), np.zeros((2, 10)))
    assert s.tpr is None
    assert s.f1 is None
    assert s.sed is None
    assert s.faults == 0
    assert s.tnr == 1.0


def test_mask_excludes_steps_from_confusion_but_not_sed() -> None:
    truth = leak(80, 20, 59)
    alarms = leak(80, 0, 4) | leak(80, 20, 59)  # a false alarm at 0..4, e.g. during a non-leak event
    mask = np.ones(80, dtype=bool)
    mask[0:5] = False
    mask[50:60] = False  # masking leak steps drops them from TP but the fault is still scored
    unmasked = score_leakdb(truth, alarms)
    masked = score_leakdb(truth, alarms, mask=mask)
    assert (unmasked.tp, unmasked.fp, unmasked.tn) == (40, 5, 35)
    assert (masked.tp, masked.tn, masked.fp, masked.fn) == (30, 35, 0, 0)
    assert masked.tnr == 1.0
    assert masked.sed == unmasked.sed == 1.0
    assert masked.faults == 1


def test_shape_and_value_validation() -> None:
    with pytest.raises(ValueError, match="same shape"):
        score_leakdb(np.zeros(10), np.zeros(11))
    with pytest.raises(ValueError, match="0/1"):
        score_leakdb(np.array([0, 2]), np.array([0, 1]))
    with pytest.raises(ValueError, match="mask"):
        score_leakdb(np.zeros(10), np.zeros(10), mask=np.ones(9, dtype=bool))


# --- MNF detector ------------------------------------------------------------------------------------

SPD = 48


def daily(mins: list[float], swing: float = 5.0) -> np.ndarray:
    """Days whose minimum (at 03:00) is the given value, with a daytime swing above it."""
    phase = np.arange(SPD) / SPD
    profile = swing * (1 - np.cos(2 * np.pi * (phase - 3 / 24))) / 2  # 0 at 03:00, peak at 15:00
    return np.concatenate([m + profile for m in mins])


def day_labels(labels: np.ndarray) -> np.ndarray:
    per_day = labels.reshape(-1, SPD)
    assert (per_day == per_day[:, :1]).all(), "a day's label must cover all its steps"
    return per_day[:, 0]


def test_mnf_step_up_flagged_by_gamma() -> None:
    flow = daily([10.0] * 10 + [12.5] * 5)
    low = mnf_labels(flow, gamma=0.2)
    assert low.dtype == np.int8
    assert low.shape == flow.shape
    assert day_labels(low).tolist() == [0] * 10 + [1] * 5
    assert day_labels(mnf_labels(flow, gamma=0.3)).tolist() == [0] * 15


def test_mnf_flagged_days_do_not_enter_window() -> None:
    # 30 days after the step stay flagged: the window never absorbs the leak's higher nights.
    flow = daily([10.0] * 10 + [12.5] * 30)
    assert day_labels(mnf_labels(flow, gamma=0.2)).tolist() == [0] * 10 + [1] * 30


def test_mnf_unflagged_days_slide_the_window() -> None:
    # A gentle rise (20 % < 30 %) is accepted and replaces the old nights; day 20 is then compared with
    # 12 (15 - 12 = 3 <= 3.6), not with 10 (5 > 3).
    flow = daily([10.0] * 10 + [12.0] * 10 + [15.0])
    assert day_labels(mnf_labels(flow, gamma=0.3)).tolist() == [0] * 21
    # With only nine accepted days, day 0's 10 is still in the window and day 19 is flagged.
    flow = daily([10.0] * 10 + [12.0] * 9 + [15.0])
    assert day_labels(mnf_labels(flow, gamma=0.3)).tolist() == [0] * 19 + [1]


def test_mnf_first_window_days_never_flagged() -> None:
    flow = daily([10.0, 50.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0])
    assert day_labels(mnf_labels(flow, gamma=0.1)).tolist() == [0] * 11
    assert mnf_labels(daily([10.0] * 3 + [99.0]), gamma=0.1).sum() == 0  # shorter than the window


def test_mnf_window_days_parameter() -> None:
    flow = daily([10.0, 10.0, 13.0, 10.0])
    assert day_labels(mnf_labels(flow, gamma=0.2, window_days=2)).tolist() == [0, 0, 1, 0]


def test_mnf_uses_the_whole_day_minimum_look_ahead() -> None:
    # The day's minimum occurs late in the day, yet the flag covers its early steps too.
    flow = daily([10.0] * 11)
    flow[10 * SPD:] = 20.0
    flow[10 * SPD + 40] = 12.5
    labels = mnf_labels(flow, gamma=0.2)
    assert labels[10 * SPD:].tolist() == [1] * SPD


def test_mnf_nan_handling() -> None:
    flow = daily([10.0] * 13)
    flow[3 * SPD + 3:3 * SPD + 10] = np.nan  # the night minimum of day 3 is missing: min from the rest
    flow[10 * SPD:11 * SPD] = np.nan  # day 10 all NaN: label 0
    flow[11 * SPD:12 * SPD] += 2.5  # day 11 a leak night
    flow[12 * SPD:13 * SPD] += 2.5
    flow[12 * SPD + 6] = np.nan  # day 12: NaN at the night minimum, other samples still high
    assert day_labels(mnf_labels(flow, gamma=0.2)).tolist() == [0] * 11 + [1, 1]


def test_mnf_all_nan_day_does_not_enter_window() -> None:
    # Window of 2: days 0, 1 at 10; day 2 all NaN (not added); day 3 at 11 (accepted, window 1, 3);
    # day 4 at 13 vs min 10 is flagged. Had the NaN day entered, the window would be (2, 3) -> min 11.
    flow = daily([10.0, 10.0, 0.0, 11.0, 13.0])
    flow[2 * SPD:3 * SPD] = np.nan
    assert day_labels(mnf_labels(flow, gamma=0.2, window_days=2)).tolist() == [0, 0, 0, 0, 1]


def test_mnf_empty_initial_window_accepts_first_day() -> None:
    flow = daily([0.0, 0.0, 10.0, 13.0])
    flow[:2 * SPD] = np.nan
    assert day_labels(mnf_labels(flow, gamma=0.2, window_days=2)).tolist() == [0, 0, 0, 1]


def test_mnf_rejects_partial_days() -> None:
    with pytest.raises(ValueError, match="whole number of days"):
        mnf_labels(np.ones(SPD * 10 + 1), gamma=0.2)
    with pytest.raises(ValueError, match="whole number of days"):
        mnf_labels(np.ones(30), gamma=0.2, steps_per_day=48)


# --- grid helpers ------------------------------------------------------------------------------------

def test_resample_mean_bins_and_gaps() -> None:
    t = np.array([1000, 1005, 1010, 1029, 999, 1040, 1002])
    v = np.array([1.0, 3.0, 5.0, 7.0, 100.0, 100.0, np.nan])
    out = resample_mean(t, v, start_ns=1000, step_ns=10, steps=4)
    assert out[:3].tolist() == [2.0, 5.0, 7.0]
    assert np.isnan(out[3])  # no sample in [1030, 1040); 1040 is past the grid, 999 before it


def test_resample_mean_five_minutes_to_thirty() -> None:
    minute = 60 * 10**9
    t0 = 1_718_000_000 * 10**9
    t = t0 + np.arange(12) * 5 * minute
    out = resample_mean(t, np.arange(12, dtype=float), start_ns=t0, step_ns=30 * minute, steps=2)
    assert out.tolist() == [2.5, 8.5]


def test_resample_mean_validation() -> None:
    with pytest.raises(ValueError):
        resample_mean(np.arange(3), np.arange(4.0), start_ns=0, step_ns=1, steps=3)
    with pytest.raises(ValueError):
        resample_mean(np.arange(3), np.arange(3.0), start_ns=0, step_ns=0, steps=3)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (10, 20, [0, 1, 0, 0, 0]),  # exactly one step; end exclusive
        (15, 25, [0, 1, 1, 0, 0]),  # partial overlaps on both sides
        (20, 21, [0, 0, 1, 0, 0]),  # tiny interval
        (19, 20, [0, 1, 0, 0, 0]),  # last instant of a step
        (-5, 3, [1, 0, 0, 0, 0]),  # starts before the grid
        (45, 100, [0, 0, 0, 0, 1]),  # runs past the grid
        (50, 60, [0, 0, 0, 0, 0]),  # entirely after the grid
        (-20, -10, [0, 0, 0, 0, 0]),  # entirely before
        (-10, 0, [0, 0, 0, 0, 0]),  # ends exactly at the grid start
        (30, 30, [0, 0, 0, 0, 0]),  # empty
        (35, 30, [0, 0, 0, 0, 0]),  # reversed
    ],
)
def test_step_labels_single_interval(start: int, end: int, expected: list[int]) -> None:
    out = step_labels([start], [end], start_ns=0, step_ns=10, steps=5)
    assert out.dtype == np.int8
    assert out.tolist() == expected


def test_step_labels_several_and_overlapping_intervals() -> None:
    out = step_labels(np.array([1000, 1015, 1042]), np.array([1012, 1020, 1043]), start_ns=1000, step_ns=10,
                      steps=6)
    assert out.tolist() == [1, 1, 0, 0, 1, 0]


def test_step_labels_empty_and_mismatched() -> None:
    assert step_labels([], [], start_ns=0, step_ns=10, steps=3).tolist() == [0, 0, 0]
    with pytest.raises(ValueError):
        step_labels([0, 1], [5], start_ns=0, step_ns=10, steps=3)


def test_step_labels_with_nanosecond_epoch_values() -> None:
    half_hour = 30 * 60 * 10**9
    t0 = 1_718_000_000 * 10**9
    out = step_labels([t0 + half_hour + 1], [t0 + 3 * half_hour], start_ns=t0, step_ns=half_hour, steps=4)
    assert out.tolist() == [0, 1, 1, 0]
