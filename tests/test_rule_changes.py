"""Changing rules or catalogs under a running processor never leaves an alert that nothing can clear,
and never applies learned state to the wrong sensor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rules import snapshot
from rules.engine import Engine
from sentinel.errors import InputErrors
from sentinel.pipeline import Pipeline
from tests.helpers import catalog, ruleset, series_batch
from tests.test_engine import WATER

LOW = {"id": "low", "kind": "threshold", "low": 280}


def test_an_alert_of_a_changed_rule_is_cleared_not_left_firing_forever() -> None:
    cat = catalog(WATER[0])
    pipeline = Pipeline(cat, ruleset(LOW), resolve_after_s=60)
    batch = series_batch(cat, {"P1": np.r_[np.full(5, 300.0), np.full(5, 250.0)]})
    pipeline.process(batch)
    assert [a.rule_id for a in pipeline.book.open_alerts()] == ["low"]
    pipeline.reload(ruleset({**LOW, "low": 200}))  # the new rule's state starts fresh, not raised
    later = series_batch(cat, {"P1": np.full(10, 250.0)}, t0=int(batch.time_ns[-1]) + 60 * 10**9)
    pipeline.process(later)
    assert pipeline.book.open_alerts() == []


def test_an_unchanged_rule_keeps_its_alert_across_a_reload() -> None:
    cat = catalog(WATER[0])
    other = {"id": "dev", "kind": "ewma", "z": 6}
    pipeline = Pipeline(cat, ruleset(LOW, other))
    pipeline.process(series_batch(cat, {"P1": np.full(5, 250.0)}))
    pipeline.reload(ruleset(LOW, {**other, "z": 8}))
    assert [(a.rule_id, a.cleared_ns) for a in pipeline.book.open_alerts()] == [("low", None)]


def test_saved_state_is_not_applied_to_a_different_catalog(tmp_path: Path) -> None:
    cat = catalog(WATER[0], WATER[1])
    eng = Engine(cat, ruleset({"id": "dev", "kind": "ewma", "baseline": {"warmup": 2}}))
    state = eng.new_state()
    eng.step(state, series_batch(cat, {"P1": np.full(20, 300.0), "P2": np.full(20, 20.0)}))
    snapshot.save(tmp_path / "s.npz", state, engine=eng)
    swapped = catalog({**WATER[0], "sensor_id": "P9"}, WATER[1])  # same size, another sensor in slot 0
    eng2 = Engine(swapped, ruleset({"id": "dev", "kind": "ewma", "baseline": {"warmup": 2}}))
    restored, _ = snapshot.load(tmp_path / "s.npz", eng2)
    assert restored.watermark == eng2.new_state().watermark
    same, _ = snapshot.load(tmp_path / "s.npz", eng)
    assert same.watermark == state.watermark


@pytest.mark.parametrize("levels", [{"high": {"yellow": 50, "red": 20}}, {"low": {"yellow": 100, "red": 150}}])
def test_grades_must_get_worse_in_the_right_direction(levels: dict) -> None:
    with pytest.raises((InputErrors, ValueError), match="from yellow to orange to red"):
        ruleset({"id": "t", "kind": "threshold", **levels})


def test_a_rule_that_breaks_stops_alone_and_the_others_go_on(monkeypatch: pytest.MonkeyPatch) -> None:
    cat = catalog(WATER[0])
    eng = Engine(cat, ruleset(LOW, {"id": "drop", "kind": "rate_of_change", "change": 30, "within": "5m"}))
    broken = next(c.detector for c in eng.rules if c.detector.rule.id == "drop")

    def fail(*_args: object) -> None:
        raise FloatingPointError("injected fault")

    monkeypatch.setattr(broken, "evaluate", fail)
    state = eng.new_state()
    first = eng.step(state, series_batch(cat, {"P1": np.full(5, 300.0)}))
    assert first.errors == [("drop", "FloatingPointError: injected fault")]
    later = eng.step(state, series_batch(cat, {"P1": np.full(5, 250.0)}, t0=first.watermark + 60 * 10**9))
    assert later.errors == []  # reported once; the rule stays stopped
    assert [(d.rule_id, d.transition) for d in later.detections] == [("low", "raised")]


def test_adding_a_zone_pressure_rule_or_a_holiday_keeps_what_other_rules_learned() -> None:
    """The first rule that reads pressures on the zone grid reshapes the grid, and a new holiday changes
    the calendar; neither is a reason for an EWMA baseline to start over or its alarms to be dropped."""
    cat = catalog(*WATER)
    ewma = {"id": "dev", "kind": "ewma", "z": 6, "baseline": {"warmup": 10}}
    settings = {"zone_bucket": "10m", "zone_lateness": "10m"}
    base = Engine(cat, ruleset(ewma, settings=settings))
    state = base.new_state()
    base.step(state, series_batch(cat, {"P1": 300 + np.sin(np.arange(60.0)), "P2": 30 + np.cos(np.arange(60.0)),
                                        "F1": np.full(60, 50.0), "F2": np.full(60, 10.0)}))
    learned = state.rules["dev"]
    fingerprint = {"id": "burst", "kind": "burst_fingerprint"}
    grown = Engine(cat, ruleset(ewma, fingerprint, settings={**settings, "holidays": ["2025-10-01"]}))
    adopted = grown.adopt(state)
    assert adopted.rules["dev"] is learned
    assert adopted.zone_flows is not state.zone_flows  # the grid itself starts afresh: it has pressure now
