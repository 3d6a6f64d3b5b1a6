"""Scoring a replay against labelled events, the way operators judge a detector.

An alert matches an event when network and zone agree and the alert starts between the event's start
and its end plus a grace period; every alert that matches no event is a false alert.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from sentinel.events import LabelledEvent

WEEK_S = 7 * 86400.0
# which event kinds a rule kind is meant to find: the tie-break when an alert starts during several events
MEANT_FOR: dict[str, frozenset[str]] = {
    "burst_fingerprint": frozenset({"burst"}),
    "inflow_excess": frozenset({"slow_leak"}),
    "night_flow": frozenset({"slow_leak"}),
    "inflow_drop": frozenset({"sensor_offset"}),
}
# event kinds a rule kind cannot see at all, so its alert during one is not a find: a leak growing over
# days makes no step within minutes, so a burst alarm hours into a slow leak is the fingerprint's noise.
# (The leak rules measure extra water, whatever its cause: their alarm during a burst is the burst's water.)
# Nor does a fall in the inflow find a burst or a leak, which only raise it (its alarm at a repair is not
# a find).
CANNOT_SEE: dict[str, frozenset[str]] = {
    "burst_fingerprint": frozenset({"slow_leak"}),
    "inflow_drop": frozenset({"burst", "slow_leak"}),
}


@dataclass(frozen=True)
class AlertSpan:
    """The part of an alert a scorer needs."""

    alert_id: str
    rule_id: str
    network: str
    zone: str
    sensor_id: str | None
    severity: str
    start_ns: int
    end_ns: int | None


@dataclass(frozen=True)
class EventOutcome:
    event: LabelledEvent
    detected: bool
    time_to_detect_s: float | None
    first_alert: AlertSpan | None
    matched_alerts: int


def _ttd_stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median_time_to_detect_s": None, "p90_time_to_detect_s": None}
    arr = np.asarray(values)
    return {"median_time_to_detect_s": float(np.median(arr)), "p90_time_to_detect_s": float(np.percentile(arr, 90))}


CITY_WIDE_ANOMALIES = ("holiday",)  # benign anomalies that touch every zone of their network


def touches(a: AlertSpan, an: LabelledEvent, *, grace_s: float) -> bool:
    """The alert started during the labelled event or anomaly, or up to `grace_s` after it ended, in its
    zone (its network, for city-wide ones)."""
    where = an.network == a.network and (an.kind in CITY_WIDE_ANOMALIES or an.zone in ("", "*", a.zone))
    return where and an.start_ns <= a.start_ns < an.end_ns + int(grace_s * 1e9)


def on_benign_anomalies(alerts: Sequence[AlertSpan], anomalies: Sequence[LabelledEvent], *,
                        grace_s: float) -> list[AlertSpan]:
    """The alerts a benign anomaly (hydrant draw, holiday: labelled in anomalies.csv) raised (`touches`)."""
    return [a for a in alerts if any(touches(a, an, grace_s=grace_s) for an in anomalies)]


def match_alerts(events: Sequence[LabelledEvent], alerts: Sequence[AlertSpan], *, grace_s: float,
                 rule_kinds: Mapping[str, str] | None = None) -> tuple[dict[str, list[AlertSpan]], list[AlertSpan]]:
    """(the alerts matching each event, by event id; the alerts matching none: the false ones).

    An alert starting in the windows of several events of its zone is credited to one: to an event its
    rule is meant for (`MEANT_FOR`, given the rules' kinds by id), else to the one that began last. So a
    burst's alarm during a slow leak is the burst's and does not also detect the leak around it, and a
    leak rule's alarm that happens to start during a burst is the leak's. Nor does an alert detect an
    event its rule cannot see (`CANNOT_SEE`): a burst alarm during a slow leak and no burst is false."""
    grace = int(grace_s * 1e9)
    by_zone: dict[tuple[str, str], list[LabelledEvent]] = defaultdict(list)
    for ev in events:
        by_zone[(ev.network, ev.zone)].append(ev)
    hits: dict[str, list[AlertSpan]] = defaultdict(list)
    false_alerts = []
    for a in alerts:
        zone_events = by_zone.get((a.network, a.zone), ())
        kind = (rule_kinds or {}).get(a.rule_id, "")
        meant, blind = MEANT_FOR.get(kind, frozenset()), CANNOT_SEE.get(kind, frozenset())
        open_events = [ev for ev in zone_events if ev.start_ns <= a.start_ns <= ev.end_ns + grace
                       and ev.kind not in blind]
        if open_events:
            hits[max(open_events, key=lambda ev: (ev.kind in meant, ev.start_ns, ev.event_id)).event_id].append(a)
        else:
            false_alerts.append(a)
    return hits, false_alerts


def score(events: Sequence[LabelledEvent], alerts: Sequence[AlertSpan], *, zones: int, span_s: float,
          grace_s: float = 3600.0, anomalies: Sequence[LabelledEvent] = (),
          rule_kinds: Mapping[str, str] | None = None) -> tuple[dict, list[EventOutcome]]:
    """Per-event outcomes and a summary; with `anomalies`, also how many false alerts fell on them;
    `rule_kinds` (rule id to kind) settles which of several events an alert detects, and whether one its
    rule cannot see makes it false."""
    hits, false_alerts = match_alerts(events, alerts, grace_s=grace_s, rule_kinds=rule_kinds)
    return score_matched(events, alerts, hits, false_alerts, zones=zones, span_s=span_s, grace_s=grace_s,
                         anomalies=anomalies)


def score_matched(events: Sequence[LabelledEvent], alerts: Sequence[AlertSpan], hits: Mapping[str, list[AlertSpan]],
                  false_alerts: Sequence[AlertSpan], *, zones: int, span_s: float, grace_s: float,
                  anomalies: Sequence[LabelledEvent] = ()) -> tuple[dict, list[EventOutcome]]:
    """`score` on alerts already matched to events (`match_alerts`), for callers that keep the false ones."""
    outcomes = []
    for ev in sorted(events, key=lambda e: (e.start_ns, e.event_id)):
        found = sorted(hits.get(ev.event_id, []), key=lambda a: a.start_ns)
        first = found[0] if found else None
        ttd = (first.start_ns - ev.start_ns) / 1e9 if first else None
        outcomes.append(EventOutcome(ev, first is not None, ttd, first, len(found)))
    weeks = max(span_s / WEEK_S, 1e-9)

    def summary(outs: list[EventOutcome]) -> dict:
        detected = [o for o in outs if o.detected]
        return {"events": len(outs), "detected": len(detected),
                "recall": len(detected) / len(outs) if outs else None,
                **_ttd_stats([o.time_to_detect_s for o in detected if o.time_to_detect_s is not None])}

    report = summary(outcomes)
    report.update({
        "alerts": len(alerts),
        "precision": (1 - len(false_alerts) / len(alerts)) if alerts else None,
        "false_alerts": len(false_alerts),
        "false_alerts_per_zone_week": len(false_alerts) / max(zones, 1) / weeks,
        "false_alerts_on_benign_anomalies": len(on_benign_anomalies(false_alerts, anomalies, grace_s=grace_s)),
        "zones": zones,
        "weeks": span_s / WEEK_S,
        "grace_s": grace_s,
    })
    kinds = sorted({o.event.kind for o in outcomes})
    report["by_kind"] = {k: summary([o for o in outcomes if o.event.kind == k]) for k in kinds}
    fa_by_rule: dict[str, int] = defaultdict(int)
    for a in false_alerts:
        fa_by_rule[a.rule_id] += 1
    report["false_alerts_by_rule"] = dict(sorted(fa_by_rule.items()))
    report["per_event"] = [
        {"event_id": o.event.event_id, "kind": o.event.kind, "network": o.event.network, "zone": o.event.zone,
         "detected": o.detected, "time_to_detect_s": o.time_to_detect_s,
         "first_rule": o.first_alert.rule_id if o.first_alert else None}
        for o in outcomes
    ]
    return report, outcomes
