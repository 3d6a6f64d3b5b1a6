"""How detections become alerts: one per incident, graded, acknowledged, recovered by event time only."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.lifecycle import AlertBook, AlertError
from alerts.model import AlertChange
from sentinel.detections import Detection
from sentinel.readings import NS
from sentinel.severity import Severity

T0 = 1_718_000_000 * NS
RED, ORANGE, YELLOW = Severity.RED, Severity.ORANGE, Severity.YELLOW


def det(t_s: float, transition: str, sev: Severity | None = RED, rule: str = "burst-pressure-drop",
        subject: str = "W-DMA1-P01", value: float = 180.0) -> Detection:
    return Detection(rule_id=rule, kind="pressure_drop", network="water", zone="DMA1", subject=subject,
                     sensor_id=subject, time_ns=T0 + int(t_s * NS), transition=transition,  # type: ignore[arg-type]
                     severity=None if transition == "cleared" else sev, value=value, score=3.0,
                     message=f"{transition} at {t_s}s")


def at(t_s: float) -> int:
    return T0 + int(t_s * NS)


def kinds(changes: list[AlertChange]) -> list[str]:
    return [c.change for c in changes]


def test_raised_opens_a_firing_alert_carrying_the_detection() -> None:
    book = AlertBook()
    (change,) = book.apply([det(0, "raised", ORANGE)], at(0))
    a = change.alert
    assert change.change == "opened" and change.time_ns == at(0) and change.actor is None
    assert (a.rule_id, a.subject, a.network, a.zone, a.sensor_id) == (
        "burst-pressure-drop", "W-DMA1-P01", "water", "DMA1", "W-DMA1-P01")
    assert a.state == "firing" and a.severity is ORANGE and a.current_severity is ORANGE
    assert a.started_ns == a.updated_ns == at(0) and a.cleared_ns is None and a.resolved_ns is None
    assert book.open_alerts() == [a]


def test_repeated_raise_for_the_same_rule_and_subject_is_one_alert() -> None:
    book = AlertBook()
    first = book.apply([det(0, "raised")], at(0))
    again = book.apply([det(60, "raised"), det(60, "raised")], at(60))
    assert kinds(first) == ["opened"] and again == []
    assert len(book.open_alerts()) == 1


def test_other_subjects_and_rules_get_their_own_alerts() -> None:
    book = AlertBook()
    changes = book.apply([det(0, "raised"), det(0, "raised", subject="W-DMA1-P02"),
                          det(0, "raised", rule="low-pressure")], at(0))
    assert kinds(changes) == ["opened"] * 3
    assert len({c.alert.alert_id for c in changes}) == 3


def test_escalation_raises_the_grade_and_deescalation_keeps_the_worst_seen() -> None:
    book = AlertBook()
    book.apply([det(0, "raised", YELLOW)], at(0))
    (up,) = book.apply([det(60, "escalated", RED)], at(60))
    (down,) = book.apply([det(120, "deescalated", ORANGE)], at(120))
    assert up.change == "escalated" and up.alert.severity is RED and up.alert.current_severity is RED
    assert down.change == "deescalated" and down.alert.severity is RED
    assert down.alert.current_severity is ORANGE and down.alert.updated_ns == at(120)
    assert up.alert.alert_id == down.alert.alert_id


def test_cleared_alert_resolves_only_after_resolve_after_s_of_event_time() -> None:
    book = AlertBook(resolve_after_s=900)
    book.apply([det(0, "raised")], at(0))
    (cleared,) = book.apply([det(100, "cleared")], at(100))
    assert cleared.change == "cleared" and cleared.alert.cleared_ns == at(100)
    assert cleared.alert.state == "firing" and cleared.alert.current_severity is None
    assert book.apply([], at(999)) == []  # 899 s after the clear: still pending
    (resolved,) = book.apply([], at(5000))  # the watermark jumps well past the due time
    assert resolved.change == "resolved" and resolved.actor is None
    # resolved at clear + 900 s, not at whatever watermark happened to reveal it: replay-stable
    assert resolved.time_ns == resolved.alert.resolved_ns == at(1000)
    assert resolved.alert.state == "resolved" and book.open_alerts() == []


def test_raise_before_recovery_reactivates_the_same_alert_after_recovery_opens_a_new_one() -> None:
    book = AlertBook(resolve_after_s=900)
    (opened,) = book.apply([det(0, "raised", ORANGE)], at(0))
    book.apply([det(100, "cleared")], at(100))
    (back,) = book.apply([det(500, "raised", YELLOW)], at(500))
    assert back.change == "reactivated" and back.alert.alert_id == opened.alert.alert_id
    assert back.alert.cleared_ns is None and back.alert.current_severity is YELLOW
    assert back.alert.severity is ORANGE  # worst seen while open
    assert book.apply([], at(1400)) == []  # the old recovery timer no longer applies
    book.apply([det(1500, "cleared")], at(1500))
    changes = book.apply([det(2500, "raised")], at(2500))  # 1000 s after the clear: recovered first
    assert kinds(changes) == ["resolved", "opened"]
    assert changes[0].time_ns == at(2400)
    assert changes[1].alert.alert_id != opened.alert.alert_id


def test_acknowledgement_records_who_and_why_and_survives_escalation() -> None:
    book = AlertBook()
    (opened,) = book.apply([det(0, "raised", ORANGE)], at(0))
    ack = book.acknowledge(opened.alert.alert_id, "zhang.wei", "crew dispatched to Jiefang Rd", at(30))
    assert ack.change == "acknowledged" and ack.actor == "zhang.wei"
    assert ack.note == "crew dispatched to Jiefang Rd" and ack.time_ns == at(30)
    assert ack.alert.state == "acknowledged" and ack.alert.acked_by == "zhang.wei"
    assert ack.alert.ack_note == "crew dispatched to Jiefang Rd"
    (up,) = book.apply([det(60, "escalated", RED)], at(60))
    assert up.alert.state == "acknowledged" and up.alert.acked_by == "zhang.wei"


def test_manual_resolve_closes_the_alert_and_a_later_raise_opens_a_new_one() -> None:
    book = AlertBook()
    (opened,) = book.apply([det(0, "raised")], at(0))
    done = book.resolve(opened.alert.alert_id, "li.na", "valve closed", at(50))
    assert done.change == "resolved" and done.alert.resolved_by == "li.na"
    assert done.alert.resolve_note == "valve closed" and done.alert.resolved_ns == at(50)
    assert book.open_alerts() == []
    assert book.apply([det(60, "cleared")], at(60)) == []  # nothing open to clear
    with pytest.raises(AlertError):
        book.acknowledge(opened.alert.alert_id, "li.na", None, at(70))
    (reopened,) = book.apply([det(80, "raised")], at(80))
    assert reopened.change == "opened" and reopened.alert.alert_id != opened.alert.alert_id


def test_acknowledging_an_unknown_alert_is_an_error() -> None:
    with pytest.raises(AlertError):
        AlertBook().acknowledge("nope", "zhang.wei", None, at(0))


def test_detections_are_taken_in_event_time_order_within_a_call() -> None:
    book = AlertBook(resolve_after_s=0)
    changes = book.apply([det(20, "raised"), det(10, "cleared"), det(0, "raised")], at(20))
    assert kinds(changes) == ["opened", "cleared", "resolved", "opened"]


def test_ids_are_deterministic_and_unique_even_when_a_key_reopens_in_the_same_nanosecond() -> None:
    stream = [det(0, "raised"), det(0, "cleared"), det(0, "raised"), det(0, "cleared"), det(0, "raised")]
    runs = [AlertBook(resolve_after_s=0).apply(stream, at(0)) for _ in range(2)]
    ids = [c.alert.alert_id for c in runs[0] if c.change == "opened"]
    assert len(ids) == 3 and len(set(ids)) == 3
    assert runs[0] == runs[1]


def _incident_stream() -> list[Detection]:
    """Two sensors: an alert that flaps, one that recovers, one still pending recovery at the end."""
    return [
        det(0, "raised", YELLOW), det(30, "raised", ORANGE, subject="W-DMA1-P02"),
        det(60, "escalated", RED), det(200, "cleared", subject="W-DMA1-P02"),
        det(300, "cleared"), det(600, "raised", ORANGE), det(700, "cleared"),
        det(1200, "raised", RED, subject="W-DMA1-P02"),
        det(1900, "deescalated", YELLOW, subject="W-DMA1-P02"),
        det(2000, "cleared", subject="W-DMA1-P02"), det(2600, "raised", YELLOW),
    ]


def test_snapshot_and_restore_mid_stream_gives_the_same_changes_as_an_uninterrupted_book() -> None:
    stream = _incident_stream()
    whole = AlertBook(resolve_after_s=900)
    expected = [c for d in stream for c in whole.apply([d], d.time_ns)] + whole.apply([], at(4000))

    for cut in range(1, len(stream)):
        first = AlertBook(resolve_after_s=900)
        got = [c for d in stream[:cut] for c in first.apply([d], d.time_ns)]
        saved = json.loads(json.dumps(first.snapshot()))  # as it would travel through a file
        restarted = AlertBook.restore(saved)
        got += [c for d in stream[cut:] for c in restarted.apply([d], d.time_ns)]
        got += restarted.apply([], at(4000))
        assert got == expected, f"cut at {cut}"
        assert restarted.snapshot() == whole.snapshot()


def test_restore_keeps_a_pending_recovery_and_does_not_re_alert() -> None:
    book = AlertBook(resolve_after_s=900)
    book.apply([det(0, "raised"), det(1, "raised", subject="W-DMA1-P02")], at(1))
    book.apply([det(100, "cleared")], at(100))
    restarted = AlertBook.restore(book.snapshot())
    assert restarted.apply([det(200, "raised", subject="W-DMA1-P02")], at(200)) == []  # no re-alert
    (resolved,) = restarted.apply([], at(1000))
    assert resolved.change == "resolved" and resolved.alert.subject == "W-DMA1-P01"


_subjects = st.sampled_from(["P01", "P02", "P03"])
_steps = st.lists(
    st.tuples(st.integers(0, 400), _subjects,
              st.sampled_from(["raised", "escalated", "deescalated", "cleared"]),
              st.sampled_from(list(Severity))),
    min_size=1, max_size=40)


@settings(max_examples=150, deadline=None)
@given(steps=_steps, cuts=st.lists(st.integers(1, 40), max_size=6))
def test_batch_boundaries_do_not_change_the_alerts(steps, cuts) -> None:
    t, stream = 0, []
    for dt, subject, transition, sev in steps:
        t += dt
        stream.append(det(t, transition, sev, subject=subject))
    stream.sort(key=Detection.sort_key)
    end = at(t + 10_000)

    one_go = AlertBook(resolve_after_s=300)
    expected = one_go.apply(stream, end)

    book, got, start = AlertBook(resolve_after_s=300), [], 0
    for cut in [*sorted({c for c in cuts if c < len(stream)}), len(stream)]:
        chunk = stream[start:cut]
        got += book.apply(chunk, chunk[-1].time_ns if chunk else at(0))
        start = cut
    got += book.apply([], end)
    assert got == expected
