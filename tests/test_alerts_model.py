"""The JSON every notifier sends, and the lossless form snapshots and stores keep."""

from __future__ import annotations

import json

from alerts.lifecycle import AlertBook
from alerts.model import Alert, AlertChange, alert_change_to_dict
from sentinel.detections import Detection
from sentinel.readings import NS
from sentinel.severity import Severity

T0 = 1_718_000_000 * NS  # 2024-06-10T06:13:20Z


def _opened() -> AlertChange:
    d = Detection("burst-pressure-drop", "pressure_drop", "water", "DMA1", "W-DMA1-P01", "W-DMA1-P01", T0,
                  "raised", Severity.RED, float("nan"), 4.2, "pressure fell 35 kPa in 2 min")
    (change,) = AlertBook().apply([d], T0)
    return change


def test_change_json_has_iso_utc_times_grade_in_both_languages_and_no_nan() -> None:
    d = alert_change_to_dict(_opened())
    text = json.dumps(d, allow_nan=False, ensure_ascii=False)
    assert d["change"] == "opened" and d["time"] == "2024-06-10T06:13:20Z" and d["time_ns"] == T0
    a = d["alert"]
    assert a["severity"] == "red" and a["grade_zh"] == "一级" and a["current_severity"] == "red"
    assert a["started"] == "2024-06-10T06:13:20Z" and a["started_ns"] == T0
    assert a["cleared"] is None and a["resolved"] is None and a["value"] is None
    assert a["network"] == "water" and a["zone"] == "DMA1" and a["subject"] == "W-DMA1-P01"
    assert "一级" in text


def test_state_form_round_trips_exactly() -> None:
    change = _opened()
    back = AlertChange.from_state(json.loads(json.dumps(change.to_state())))
    assert back.alert.to_state() == change.alert.to_state()
    assert back.change == change.change and back.time_ns == change.time_ns
    assert Alert.from_state(change.alert.to_state()).severity is Severity.RED
