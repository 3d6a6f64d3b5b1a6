"""Learned baselines: what a reading far off the learned mean teaches, with and without `learn_within`."""

from __future__ import annotations

import numpy as np
import pydantic
import pytest

from rules.baseline import Baseline
from rules.schema import BaselineParams


def _trained(params: BaselineParams, seed: int = 1, n: int = 2000) -> tuple[Baseline, object]:
    """One subject, no profile, `n` unit-spread readings learned."""
    base = Baseline(params, np.array([60.0]), 0.0)
    st = base.new_state(1)
    rng = np.random.default_rng(seed)
    for x in rng.normal(0.0, 1.0, n):
        base.learn(st, np.array([0]), np.array([x]), base.alpha)
    return base, st


def _sd(st) -> float:
    return float(np.sqrt(st.var.ravel()[0]))


PARAMS = BaselineParams(halflife=3600.0 * 6, warmup=20)


def test_an_anomalys_first_readings_widen_the_spread_that_judges_it_without_learn_within() -> None:
    base, st = _trained(PARAMS)
    before = _sd(st)
    for _ in range(3):
        base.learn(st, np.array([0]), np.array([8.0 * before]), base.alpha)
    assert _sd(st) > 1.15 * before


def test_with_learn_within_readings_that_far_off_a_ready_slot_teach_nothing() -> None:
    base, st = _trained(PARAMS.model_copy(update={"learn_within": 4.0}))
    before, mean, count = _sd(st), float(st.mean.ravel()[0]), int(st.count.ravel()[0])
    for _ in range(3):
        base.learn(st, np.array([0]), np.array([8.0 * before]), base.alpha)
    assert (_sd(st), float(st.mean.ravel()[0]), int(st.count.ravel()[0])) == (before, mean, count)
    base.learn(st, np.array([0]), np.array([0.5]), base.alpha)  # an ordinary reading still teaches
    assert int(st.count.ravel()[0]) == count + 1


def test_a_slot_still_warming_up_learns_every_reading() -> None:
    params = PARAMS.model_copy(update={"learn_within": 4.0})
    base = Baseline(params, np.array([60.0]), 0.0)
    st = base.new_state(1)
    for x in (0.0, 0.1, 50.0):
        base.learn(st, np.array([0]), np.array([x]), base.alpha)
    assert int(st.count.ravel()[0]) == 3 and _sd(st) > 10


def test_a_spread_that_truly_grows_is_still_followed() -> None:
    params = PARAMS.model_copy(update={"learn_within": 4.0})
    base, st = _trained(params)
    rng = np.random.default_rng(2)
    for x in rng.normal(0.0, 3.0, 3000):  # the noise triples for good
        base.learn(st, np.array([0]), np.array([x]), base.alpha)
    assert 2.4 < _sd(st) < 3.3


def test_gaussian_noise_is_learned_at_its_true_spread() -> None:
    _base, st = _trained(PARAMS.model_copy(update={"learn_within": 4.0}), n=5000)
    assert 0.85 < _sd(st) < 1.15


def test_learn_within_must_be_positive() -> None:
    with pytest.raises(pydantic.ValidationError, match="learn_within"):
        BaselineParams(learn_within=0)
