"""`python -m bench.commissioning` runs end to end on one seed and reports both sides on the same events."""

from __future__ import annotations

import json

import pytest

from bench.commissioning import main


def test_one_seed_scores_the_same_week_cold_and_learned(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--seeds", "101"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["bench"] == "commissioning" and summary["events"] == 14  # every drawn event after day 10
    kinds = summary["by_kind"]
    assert sum(k["events"] for k in kinds.values()) == 14
    assert sum(k["cold"] for k in kinds.values()) == summary["found_cold"]
    assert sum(k["learned"] for k in kinds.values()) == summary["found_learned"]
    # cold, the fingerprint has no earlier weekday to compare with; learned, it judges (and is what raises)
    assert "water-burst-fingerprint" not in summary["false_by_rule_cold"]
    assert summary["false_by_rule_learned"].get("water-burst-fingerprint", 0) > 0
    assert "| all | 14 |" in out and "events found, learned / cold:" in out
