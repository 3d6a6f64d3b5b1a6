"""Routing decides who hears about what, and when: one message per incident, not a storm, and never silence
where someone must be told. Alerts come from a real AlertBook, as in the pipeline; time is injected."""

from __future__ import annotations

import json

import pytest

from alerts.lifecycle import AlertBook
from alerts.model import Alert, AlertChange
from alerts.notification import Notification
from alerts.routing.config import parse_routing
from alerts.routing.router import Router
from alerts.routing.silences import Silence, SilenceBook
from sentinel.detections import Detection
from sentinel.readings import NS
from sentinel.severity import Severity

T0 = 1_735_689_600 * NS  # 2025-01-01T00:00:00Z
RED, ORANGE, YELLOW = Severity.RED, Severity.ORANGE, Severity.YELLOW
KIND = {"water-burst-pressure-drop": "rate_of_change", "water-pressure-low": "threshold", "gas-lel": "threshold"}

CONFIG = """
receivers:
  ops: {type: webhook, url: "http://127.0.0.1:9/ops"}
  duty: {type: webhook, url: "http://127.0.0.1:9/duty"}
  mail: {type: email, host: 127.0.0.1, to: [duty@example.org]}
route:
  receivers: [ops]
  group_by: [network, zone]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - match: {network: gas, grade: red}
      receivers: [duty]
      group_wait: 0s
inhibit:
  - source: {kind: rate_of_change, rule: water-burst-pressure-drop}
    target: {rule: water-pressure-low}
    equal: [network, zone]
escalate:
  - match: {grade: red}
    after: 10m
    receivers: [mail]
"""


def at(seconds: float = 0, *, m: float = 0, h: float = 0) -> int:
    return T0 + round((seconds + 60 * m + 3600 * h) * NS)


class Incidents:
    """Produces alert changes the way the pipeline does: detections through a real AlertBook."""

    def __init__(self, resolve_after_s: float = 0) -> None:
        self.book = AlertBook(resolve_after_s=resolve_after_s)

    def fire(self, t: int, subject: str, *, zone: str = "DMA1", rule: str = "water-pressure-low",
             grade: Severity = ORANGE, network: str = "water") -> list[AlertChange]:
        d = Detection(rule_id=rule, kind=KIND[rule], network=network, zone=zone, subject=subject,
                      sensor_id=subject, time_ns=t, transition="raised", severity=grade, value=90.0, score=3.0,
                      message=f"{rule} on {subject}")
        return self.book.apply([d], t)

    def clear(self, t: int, subject: str, rule: str = "water-pressure-low") -> list[AlertChange]:
        a = self.alert(subject)
        d = Detection(rule_id=rule, kind=KIND[rule], network=a.network, zone=a.zone, subject=subject,
                      sensor_id=subject, time_ns=t, transition="cleared", severity=None, value=150.0, score=0.0,
                      message="back to normal")
        return self.book.apply([d], t)

    def advance(self, t: int) -> list[AlertChange]:
        """Event time moves on (recoveries become resolutions)."""
        return self.book.apply([], t)

    def alert(self, subject: str) -> Alert:
        return next(a for a in self.book.open_alerts() if a.subject == subject)

    def ack(self, t: int, subject: str, who: str = "li.wei") -> list[AlertChange]:
        return [self.book.acknowledge(self.alert(subject).alert_id, who, "on my way", t)]

    def resolve(self, t: int, subject: str, who: str = "li.wei") -> list[AlertChange]:
        return [self.book.resolve(self.alert(subject).alert_id, who, "valve closed", t)]


@pytest.fixture
def router() -> Router:
    return Router(parse_routing(CONFIG))


def subjects(n: Notification) -> list[str]:
    return [a.subject for a in n.alerts]


def run(router: Router, start: int, end: int, step_s: float = 1.0) -> list[Notification]:
    """Tick like the live loop does, every `step_s`, collecting what goes out."""
    out, t = [], start
    while t <= end:
        out += router.tick(t)
        t += round(step_s * NS)
    return out


# -- grouping ---------------------------------------------------------------------------------------

def test_three_alerts_of_one_zone_within_group_wait_make_one_notification(router: Router) -> None:
    inc = Incidents()
    assert router.observe(inc.fire(at(0), "P01"), at(0)) == []
    assert router.observe(inc.fire(at(10), "P02"), at(10)) == []
    assert router.observe(inc.fire(at(20), "P03"), at(20)) == []
    assert run(router, at(21), at(29)) == []  # still collecting
    (n,) = router.tick(at(30))
    assert (n.receiver, n.group_key, n.reason, n.labels) == ("ops", "water/DMA1", "firing",
                                                            {"network": "water", "zone": "DMA1"})
    assert subjects(n) == ["P01", "P02", "P03"]
    assert [c.change for c in n.changes] == ["opened"] * 3 and n.created_ns == at(30)
    assert run(router, at(31), at(m=5)) == []  # nothing new: silence until something changes


def test_alerts_of_other_zones_are_separate_groups(router: Router) -> None:
    inc = Incidents()
    router.observe(inc.fire(at(0), "P01") + inc.fire(at(0), "Q01", zone="DMA2"), at(0))
    sent = router.tick(at(30))
    assert sorted((n.group_key, tuple(subjects(n))) for n in sent) == [("water/DMA1", ("P01",)),
                                                                      ("water/DMA2", ("Q01",))]


def test_later_changes_are_batched_every_group_interval(router: Router) -> None:
    inc = Incidents()
    router.observe(inc.fire(at(0), "P01"), at(0))
    assert len(router.tick(at(30))) == 1
    router.observe(inc.fire(at(m=1), "P02"), at(m=1))
    router.observe(inc.fire(at(m=2), "P03"), at(m=2))
    router.observe(inc.ack(at(m=3), "P01"), at(m=3))
    assert run(router, at(m=1), at(m=5, seconds=29)) == []  # waits for the group's next interval
    (n,) = router.tick(at(m=5, seconds=30))
    assert n.reason == "firing" and subjects(n) == ["P01", "P02", "P03"]
    assert [(c.change, c.alert.subject) for c in n.changes] == [("opened", "P02"), ("opened", "P03"),
                                                                ("acknowledged", "P01")]
    assert n.alerts[0].acked_by == "li.wei"


def test_zero_group_wait_sends_at_once(router: Router) -> None:
    (n,) = router.observe(Incidents().fire(at(0), "G01", rule="gas-lel", network="gas", grade=RED), at(0))
    assert (n.receiver, n.group_key, n.reason) == ("duty", "gas/DMA1", "firing")


def test_first_matching_route_takes_the_alert_and_a_rising_grade_joins_the_new_route() -> None:
    router, inc = Router(parse_routing(CONFIG)), Incidents()
    assert router.observe(inc.fire(at(0), "G01", rule="gas-lel", network="gas", grade=ORANGE), at(0)) == []
    (ops,) = router.tick(at(30))
    assert ops.receiver == "ops"
    (duty,) = router.observe(inc.fire(at(m=1), "G01", rule="gas-lel", network="gas", grade=RED), at(m=1))
    assert duty.receiver == "duty" and duty.alerts[0].severity is RED
    assert [c.change for c in duty.changes] == ["escalated"]
    (ops,) = router.tick(at(m=5, seconds=30))  # the first receivers hear the rest of the story too
    assert ops.receiver == "ops" and [c.change for c in ops.changes] == ["escalated"]


# -- repeat and resolution --------------------------------------------------------------------------

def test_an_unchanged_firing_group_is_repeated_every_repeat_interval(router: Router) -> None:
    inc = Incidents()
    router.observe(inc.fire(at(0), "P01"), at(0))
    router.tick(at(30))
    assert run(router, at(31), at(h=4, seconds=29), step_s=30) == []
    (n,) = router.tick(at(h=4, seconds=30))
    assert n.reason == "repeat" and subjects(n) == ["P01"] and n.changes == ()
    assert run(router, at(h=4, seconds=31), at(h=8, seconds=29), step_s=30) == []
    assert [n.reason for n in router.tick(at(h=8, seconds=30))] == ["repeat"]


def test_an_acknowledged_group_is_not_repeated(router: Router) -> None:
    inc = Incidents()
    router.observe(inc.fire(at(0), "P01"), at(0))
    router.tick(at(30))
    router.observe(inc.ack(at(m=1), "P01"), at(m=1))
    (n,) = router.tick(at(m=5, seconds=30))
    assert n.reason == "firing" and [c.change for c in n.changes] == ["acknowledged"]
    assert run(router, at(m=6), at(h=9), step_s=60) == []  # someone is on it: no reminders


def test_resolution_is_notified_once_then_the_group_is_gone(router: Router) -> None:
    inc = Incidents()
    router.observe(inc.fire(at(0), "P01") + inc.fire(at(0), "P02"), at(0))
    router.tick(at(30))
    router.observe(inc.resolve(at(m=1), "P01") + inc.resolve(at(m=2), "P02"), at(m=2))
    (n,) = run(router, at(m=2), at(m=6))
    assert n.reason == "resolved" and n.created_ns == at(m=5, seconds=30)
    assert [a.state for a in n.alerts] == ["resolved", "resolved"]
    assert [(c.change, c.actor) for c in n.changes] == [("resolved", "li.wei")] * 2
    assert run(router, at(m=6), at(h=5), step_s=60) == []


def test_a_group_with_one_alert_resolved_still_fires_and_shows_the_resolution(router: Router) -> None:
    inc = Incidents()
    router.observe(inc.fire(at(0), "P01") + inc.fire(at(0), "P02"), at(0))
    router.tick(at(30))
    router.observe(inc.resolve(at(m=1), "P01"), at(m=1))
    (n,) = router.tick(at(m=5, seconds=30))
    assert n.reason == "firing" and [(a.subject, a.state) for a in n.alerts] == [("P01", "resolved"),
                                                                               ("P02", "firing")]
    (later,) = run(router, at(m=6), at(h=4, m=6), step_s=30)  # the resolved one is not carried along
    assert later.reason == "repeat" and subjects(later) == ["P02"]


def test_a_clear_rides_along_with_the_resolution_instead_of_its_own_message(router: Router) -> None:
    inc = Incidents(resolve_after_s=600)
    router.observe(inc.fire(at(0), "P01"), at(0))
    router.tick(at(30))
    router.observe(inc.clear(at(m=1), "P01"), at(m=1))
    assert run(router, at(m=1), at(m=10, seconds=59), step_s=10) == []  # recovering: nothing to say yet
    router.observe(inc.advance(at(m=11)), at(m=11))
    (n,) = run(router, at(m=11), at(m=16), step_s=10)
    assert n.reason == "resolved" and [c.change for c in n.changes] == ["cleared", "resolved"]


def test_an_alert_resolved_before_anyone_was_told_is_never_notified(router: Router) -> None:
    inc = Incidents()
    router.observe(inc.fire(at(0), "P01"), at(0))
    router.observe(inc.resolve(at(10), "P01"), at(10))
    assert run(router, at(10), at(m=30)) == []


# -- inhibition -------------------------------------------------------------------------------------

def test_a_burst_mutes_low_pressure_in_its_zone_only_until_it_resolves(router: Router) -> None:
    inc = Incidents()
    router.observe(inc.fire(at(0), "P01", rule="water-burst-pressure-drop"), at(0))
    router.observe(inc.fire(at(0), "P02") + inc.fire(at(0), "Q01", zone="DMA2"), at(0))
    sent = {n.group_key: n for n in router.tick(at(30))}
    assert subjects(sent["water/DMA1"]) == ["P01"]  # the burst, not the pressure it pulls down
    assert [c.alert.subject for c in sent["water/DMA1"].changes] == ["P01"]
    assert subjects(sent["water/DMA2"]) == ["Q01"]  # another zone's low pressure is its own problem
    assert "inhibited by water-burst-pressure-drop/P01" in (router.why_muted(inc.alert("P02"), at(30)) or "")

    router.observe(inc.resolve(at(m=2), "P01"), at(m=2))
    (n,) = router.tick(at(m=5, seconds=30))  # the low pressure outlasted the burst: now people hear of it
    assert n.group_key == "water/DMA1" and n.reason == "firing"
    assert [(a.subject, a.state) for a in n.alerts] == [("P01", "resolved"), ("P02", "firing")]
    assert router.why_muted(inc.alert("P02"), at(m=6)) is None


def test_an_acknowledged_burst_still_inhibits(router: Router) -> None:
    inc = Incidents()
    router.observe(inc.fire(at(0), "P01", rule="water-burst-pressure-drop") + inc.fire(at(0), "P02"), at(0))
    router.observe(inc.ack(at(10), "P01"), at(10))
    (n,) = router.tick(at(30))
    assert subjects(n) == ["P01"]


# -- escalation -------------------------------------------------------------------------------------

def test_a_red_alert_unacknowledged_after_ten_minutes_escalates_once(router: Router) -> None:
    inc = Incidents()
    router.observe(inc.fire(at(0), "P01", rule="water-burst-pressure-drop", grade=RED), at(0))
    sent = run(router, at(0), at(m=30))
    escalations = [n for n in sent if n.reason == "escalation"]
    (e,) = escalations
    assert (e.receiver, e.created_ns, subjects(e)) == ("mail", at(m=10), ["P01"])
    assert (e.group_key, e.labels) == ("water/DMA1", {"network": "water", "zone": "DMA1"})
    assert [n.reason for n in sent if n.reason != "escalation"] == ["firing"]


def test_a_red_alert_acknowledged_in_time_does_not_escalate(router: Router) -> None:
    inc = Incidents()
    router.observe(inc.fire(at(0), "P01", rule="water-burst-pressure-drop", grade=RED), at(0))
    router.observe(inc.ack(at(m=9), "P01"), at(m=9))
    assert [n for n in run(router, at(0), at(m=30), step_s=10) if n.reason == "escalation"] == []


def test_red_alerts_of_one_zone_due_together_escalate_in_one_message(router: Router) -> None:
    inc = Incidents()
    router.observe(inc.fire(at(0), "P01", rule="water-burst-pressure-drop", grade=RED)
                   + inc.fire(at(0), "P02", rule="water-burst-pressure-drop", grade=RED)
                   + inc.fire(at(0), "Q01", zone="DMA2", rule="water-burst-pressure-drop", grade=RED), at(0))
    sent = [n for n in run(router, at(0), at(m=11)) if n.reason == "escalation"]
    assert sorted((n.group_key, tuple(subjects(n))) for n in sent) == [("water/DMA1", ("P01", "P02")),
                                                                      ("water/DMA2", ("Q01",))]


def test_orange_alerts_do_not_escalate(router: Router) -> None:
    inc = Incidents()
    router.observe(inc.fire(at(0), "P01"), at(0))
    assert [n for n in run(router, at(0), at(h=1), step_s=30) if n.reason == "escalation"] == []


def test_escalation_counts_from_when_routing_first_saw_the_alert(router: Router) -> None:
    inc = Incidents()
    late = at(m=20)  # delivered 20 min after its start (a replay, a backlog): nobody could have acked yet
    router.observe(inc.fire(at(0), "P01", rule="water-burst-pressure-drop", grade=RED), late)
    sent = run(router, late, late + 15 * 60 * NS, step_s=10)
    assert [n.created_ns for n in sent if n.reason == "escalation"] == [late + 10 * 60 * NS]


# -- silences ---------------------------------------------------------------------------------------

def test_a_silenced_zone_is_quiet_during_the_window_and_notified_after() -> None:
    silences = SilenceBook()
    silences.add(Silence("s1", {"network": "water", "zone": "DMA1"}, at(0), at(h=1), "wang.fang",
                         "valve replacement"))
    router, inc = Router(parse_routing(CONFIG), silences), Incidents()
    router.observe(inc.fire(at(m=1), "P01", grade=RED, rule="water-burst-pressure-drop")
                   + inc.fire(at(m=1), "Q01", zone="DMA2"), at(m=1))
    during = run(router, at(m=1), at(m=59, seconds=59), step_s=10)
    assert [n.group_key for n in during] == ["water/DMA2"]  # no message and no escalation for DMA1
    assert (router.why_muted(inc.alert("P01"), at(m=30)) or "").startswith("silenced by wang.fang")
    after = run(router, at(h=1), at(h=1, m=10), step_s=10)
    assert sorted((n.reason, n.receiver, subjects(n)) for n in after) == [
        ("escalation", "mail", ["P01"]), ("firing", "ops", ["P01"])]


def test_an_alert_that_ends_during_its_silence_is_never_notified() -> None:
    silences = SilenceBook([Silence("s1", {"subject": "P01"}, at(0), at(h=1), "wang.fang")])
    router, inc = Router(parse_routing(CONFIG), silences), Incidents()
    router.observe(inc.fire(at(m=1), "P01"), at(m=1))
    router.observe(inc.resolve(at(m=20), "P01"), at(m=20))
    assert run(router, at(m=1), at(h=2), step_s=10) == []


def test_silences_need_a_matcher_and_a_window() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Silence("s", {}, at(0), at(h=1), "me")
    with pytest.raises(ValueError, match="unknown silence matcher 'grade'"):
        Silence("s", {"grade": "red"}, at(0), at(h=1), "me")
    with pytest.raises(ValueError, match="end after"):
        Silence("s", {"zone": "DMA1"}, at(h=1), at(0), "me")


def test_silence_book_expires_lists_and_survives_a_snapshot() -> None:
    book = SilenceBook()
    s = book.add(Silence.new({"zone": "DMA1"}, at(0), at(h=2), "wang.fang", "flushing"))
    later = book.add(Silence.new({"rule": "water-pressure-low"}, at(h=3), at(h=4), "li.wei"))
    assert [x.id for x in book.active(at(h=1))] == [s.id]
    book.expire(s.id, at(h=1))
    assert book.active(at(h=1)) == [] and book.get(s.id).ends_ns == at(h=1)  # type: ignore[union-attr]
    restored = SilenceBook.restore(json.loads(json.dumps(book.snapshot())))
    assert restored.list() == book.list() and [x.id for x in restored.active(at(h=3))] == [later.id]


# -- restart ----------------------------------------------------------------------------------------

def restarted(router: Router) -> Router:
    fresh = Router(parse_routing(CONFIG), router.silences)
    fresh.restore(json.loads(json.dumps(router.snapshot())))
    return fresh


def test_a_restart_neither_renotifies_nor_forgets(router: Router) -> None:
    inc = Incidents()
    router.observe(inc.fire(at(0), "P01", grade=RED, rule="water-burst-pressure-drop"), at(0))
    assert len(router.tick(at(30))) == 1
    router.observe(inc.fire(at(m=1), "P02"), at(m=1))  # pending for the next batch (inhibited, though)
    router.observe(inc.fire(at(m=1), "Q01", zone="DMA2"), at(m=1))  # its group still waiting
    router = restarted(router)
    (q,) = router.tick(at(m=1, seconds=30))  # the waiting group was not forgotten...
    assert q.group_key == "water/DMA2"
    assert router.tick(at(m=2)) == []  # ...and nothing already sent goes out again
    (esc,) = run(router, at(m=2), at(m=10))  # the escalation clock survived
    assert esc.reason == "escalation"
    router = restarted(router)
    assert run(router, at(m=10), at(m=11)) == []  # escalated once, even across restarts
    router.observe(inc.resolve(at(m=12), "P01"), at(m=12))
    sent = {n.group_key: n for n in run(router, at(m=12), at(m=16))}
    assert [(a.subject, a.state) for a in sent["water/DMA1"].alerts] == [("P01", "resolved"), ("P02", "firing")]


def test_same_changes_same_notifications() -> None:
    def play() -> list[dict]:
        router, inc = Router(parse_routing(CONFIG)), Incidents()
        sent = router.observe(inc.fire(at(0), "P01") + inc.fire(at(3), "P02", zone="DMA2"), at(3))
        sent += run(router, at(4), at(m=2), step_s=5)
        sent += router.observe(inc.fire(at(m=2), "P03", grade=RED, rule="water-burst-pressure-drop"), at(m=2))
        sent += run(router, at(m=2, seconds=1), at(m=20), step_s=5)
        return [n.to_dict() for n in sent]

    first = play()
    assert first == play()
    assert [(n["reason"], n["group_key"]) for n in first] == [
        ("firing", "water/DMA1"), ("firing", "water/DMA2"), ("firing", "water/DMA1"),
        ("escalation", "water/DMA1")]


def test_next_due_says_when_to_tick(router: Router) -> None:
    inc = Incidents()
    assert router.next_due_ns() is None
    router.observe(inc.fire(at(0), "P01", grade=RED, rule="water-burst-pressure-drop"), at(0))
    assert router.next_due_ns() == at(30)
    router.tick(at(30))
    assert router.next_due_ns() == at(m=5, seconds=30)


def test_a_restart_with_a_changed_tree_routes_orphaned_alerts_afresh() -> None:
    router, inc = Router(parse_routing(CONFIG)), Incidents()
    (duty,) = router.observe(inc.fire(at(0), "G01", rule="gas-lel", network="gas", grade=RED), at(0))
    assert duty.receiver == "duty"
    simpler = parse_routing(CONFIG.replace("  routes:\n    - match: {network: gas, grade: red}\n"
                                           "      receivers: [duty]\n      group_wait: 0s\n", ""))
    fresh = Router(simpler)
    fresh.restore(json.loads(json.dumps(router.snapshot())), now_ns=at(m=1))
    (ops,) = fresh.tick(at(m=1, seconds=30))  # its old route is gone: not forgotten, told to the new one
    assert (ops.receiver, subjects(ops)) == ("ops", ["G01"])
