"""The routing core: alert changes in, notifications out, Alertmanager semantics, no I/O and no clock.

Why each rule exists:
- Grouping: an incident (a burst) raises many alerts in one zone at once; people want one message about
  the zone, not one per sensor. A new group waits `group_wait` to collect them, then later changes are
  batched every `group_interval`, and a group still firing unchanged is re-sent every `repeat_interval`.
- Only an alert people were told about gets a resolved notice, and a group only speaks when something
  they should know changed: a new or reactivated alert, a grade going up, an acknowledgement ("who is on
  it"), a resolution. De-escalations and clears ride along with the next message.
- Inhibition: while a burst is open (firing or acknowledged, even if its fast drop has cleared and it waits
  out its recovery) the low-pressure alarms it causes in that zone are noise. Silences: people said so.
  A muted alert that is unmuted later is notified then, as new.
- Escalation: a red alert nobody acknowledged `after` its start goes to more people, once per alert and
  escalation rule (alerts of one zone due at the same tick share one message). Muted alerts do not
  escalate while muted. The clock starts at the alert's start, or when routing first saw it if later,
  so a replay or a late delivery does not escalate for time nobody could have acted in.
- Alerts stay in every group they joined until resolved, and join new groups when a rising grade makes
  new routes match: the first receivers hear the end of a story they heard the start of.

`now_ns` is whatever clock the caller uses (the live loop: wall clock). Same inputs, same outputs.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from alerts.model import Alert, AlertChange
from alerts.notification import Notification, Reason
from alerts.routing.config import RouteNode, RoutingConfig, alert_labels, compile_routes
from alerts.routing.silences import Silence, SilenceBook
from sentinel.readings import NS, iso

SNAPSHOT_VERSION = 1
# changes that make a group speak at its next flush; the others ride along with the next message
TRIGGERS = frozenset({"opened", "escalated", "reactivated", "acknowledged", "resolved"})
MAX_PENDING = 200  # changes kept per group for alerts that are muted (a flapping silenced alert)
ESCALATION_RECHECK_NS = 5 * NS  # a muted alert due for escalation is looked at again this often
GroupId = tuple[str, str]  # (route id, group key)


def _order(a: Alert) -> tuple[int, str, str]:
    return a.started_ns, a.rule_id, a.subject


def _needs_attention(a: Alert) -> bool:
    """Worth a reminder: still firing, nobody on it, condition not cleared."""
    return a.state == "firing" and a.acked_by is None and a.cleared_ns is None


@dataclass
class _Group:
    route_id: str
    key: str
    labels: dict[str, str]
    created_ns: int
    next_flush_ns: int
    members: dict[str, Alert] = field(default_factory=dict)  # incl. resolved ones until the next flush
    pending: list[AlertChange] = field(default_factory=list)  # changes not yet sent
    notified: set[str] = field(default_factory=set)  # alert ids people were told about while open
    last_sent_ns: int | None = None

    def to_state(self) -> dict[str, Any]:
        return {"route": self.route_id, "key": self.key, "labels": self.labels, "created_ns": self.created_ns,
                "next_flush_ns": self.next_flush_ns, "last_sent_ns": self.last_sent_ns,
                "members": [a.to_state() for a in sorted(self.members.values(), key=_order)],
                "pending": [c.to_state() for c in self.pending], "notified": sorted(self.notified)}

    @classmethod
    def from_state(cls, d: dict[str, Any]) -> _Group:
        members = [Alert.from_state(m) for m in d["members"]]
        return cls(d["route"], d["key"], dict(d["labels"]), int(d["created_ns"]), int(d["next_flush_ns"]),
                   {a.alert_id: a for a in members}, [AlertChange.from_state(c) for c in d["pending"]],
                   set(d["notified"]), d.get("last_sent_ns"))


class Router:
    """Decides who is told what, and when. Not thread-safe: call it from one thread (or under a lock).

    Costs stay flat with many open alerts: inhibiting sources are indexed by their `equal` labels and
    escalations wait in a heap by due time, so a tick only touches what is due.
    """

    def __init__(self, config: RoutingConfig, silences: SilenceBook | None = None) -> None:
        self.config = config
        self.silences = silences if silences is not None else SilenceBook()
        self._tree: RouteNode = compile_routes(config)
        self._nodes = {n.id: n for n in self._tree.walk()}
        self._after_ns = [round(e.after * NS) for e in config.escalate]
        self._open: dict[str, tuple[Alert, int]] = {}  # alert id -> (latest, first seen ns)
        self._groups: dict[GroupId, _Group] = {}
        self._member_of: dict[str, set[GroupId]] = {}  # open alert id -> groups it is in
        self._escalated: dict[str, set[int]] = {}  # alert id -> escalation indexes already sent
        # derived from _open (rebuilt on restore): per inhibit rule, `equal` label values -> open source ids
        self._sources: list[dict[tuple[str, ...], set[str]]] = [{} for _ in config.inhibit]
        self._esc_due: list[tuple[int, str, int]] = []  # heap of (due ns, alert id, escalation index)
        self._esc_queued: set[tuple[str, int]] = set()

    # -- inputs ------------------------------------------------------------------------------------

    def observe(self, changes: Sequence[AlertChange], now_ns: int) -> list[Notification]:
        """Take alert changes in; returns what is due at `now_ns` (a zero group_wait sends at once)."""
        for c in changes:
            self._apply(c, now_ns)
        return self.tick(now_ns)

    def tick(self, now_ns: int) -> list[Notification]:
        """Everything due by `now_ns`: group flushes (first, batched, repeat, resolved), then escalations."""
        due = sorted((g for g in self._groups.values() if g.next_flush_ns <= now_ns),
                     key=lambda g: (g.next_flush_ns, g.route_id, g.key))
        silences = self.silences.active(now_ns)
        out: list[Notification] = []
        for g in due:
            out += self._flush(g, now_ns, silences)
        out += self._escalations(now_ns, silences)
        return out

    def next_due_ns(self) -> int | None:
        """When the next group flush or escalation could be due (for a loop that sleeps until then)."""
        times = [g.next_flush_ns for g in self._groups.values()]
        if self._esc_due:
            times.append(self._esc_due[0][0])
        return min(times, default=None)

    def _apply(self, c: AlertChange, now_ns: int) -> None:
        a = c.alert
        groups = self._member_of.get(a.alert_id, set())
        if a.is_open:
            seen = self._open.get(a.alert_id, (a, now_ns))[1]
            self._open[a.alert_id] = (a, seen)
            self._index(a, seen)
            for node in self._tree.routes_for(a):
                key, labels = self._group_key(node, a)
                gid = (node.id, key)
                if gid not in self._groups:
                    self._groups[gid] = _Group(node.id, key, labels, now_ns, now_ns + node.group_wait_ns)
                groups.add(gid)
            self._member_of[a.alert_id] = groups
        else:
            self._open.pop(a.alert_id, None)
            self._member_of.pop(a.alert_id, None)
            self._escalated.pop(a.alert_id, None)
            self._index(a, 0)
        for gid in groups:  # a resolved alert never routed is dropped: nobody was told it began
            g = self._groups[gid]
            g.members[a.alert_id] = a
            g.pending.append(c)

    def _index(self, a: Alert, seen_ns: int) -> None:
        """Keep the inhibition index and the escalation heap in step with `a` (labels never change)."""
        labels = alert_labels(a)
        for inh, sources in zip(self.config.inhibit, self._sources, strict=True):
            key = tuple(labels[name] for name in inh.equal)
            if a.is_open and inh.source.matches(a):
                sources.setdefault(key, set()).add(a.alert_id)
            elif key in sources:
                sources[key].discard(a.alert_id)
                if not sources[key]:
                    del sources[key]
        if not _needs_attention(a):
            return
        sent = self._escalated.get(a.alert_id, set())
        for i, esc in enumerate(self.config.escalate):
            if i not in sent and (a.alert_id, i) not in self._esc_queued and esc.match.matches(a):
                heapq.heappush(self._esc_due, (max(a.started_ns, seen_ns) + self._after_ns[i], a.alert_id, i))
                self._esc_queued.add((a.alert_id, i))

    @staticmethod
    def _group_key(node: RouteNode, a: Alert) -> tuple[str, dict[str, str]]:
        labels = alert_labels(a)
        picked = {name: labels[name] for name in node.group_by}
        return "/".join(picked.values()) or "*", picked

    # -- muting ------------------------------------------------------------------------------------

    def why_muted(self, a: Alert, now_ns: int) -> str | None:
        """Why `a` is not notified now ("silenced ...", "inhibited ..."), or None: for the console too."""
        return self._mute_reason(a, self.silences.active(now_ns))

    def _mute_reason(self, a: Alert, silences: Sequence[Silence]) -> str | None:
        s = next((s for s in silences if s.matches(a)), None)
        if s is not None:
            return f"silenced by {s.created_by} until {iso(s.ends_ns)} ({s.id})"
        if not a.is_open:
            return None
        labels = alert_labels(a)
        for inh, sources in zip(self.config.inhibit, self._sources, strict=True):
            if not inh.target.matches(a):
                continue
            src_id = min((i for i in sources.get(tuple(labels[n] for n in inh.equal), ()) if i != a.alert_id),
                         default=None)
            if src_id is not None:
                src = self._open[src_id][0]
                return f"inhibited by {src.rule_id}/{src.subject} ({src.alert_id})"
        return None

    # -- outputs -----------------------------------------------------------------------------------

    def _flush(self, g: _Group, now_ns: int, silences: Sequence[Silence]) -> list[Notification]:
        node = self._nodes[g.route_id]
        included = [a for a in g.members.values()
                    if (a.is_open or a.alert_id in g.notified) and self._mute_reason(a, silences) is None]
        included.sort(key=_order)
        ids = {a.alert_id for a in included}
        changes = [c for c in g.pending if c.alert.alert_id in ids]
        reason: Reason | None = None
        if (any(not a.is_open or a.alert_id not in g.notified for a in included)
                or any(c.change in TRIGGERS for c in changes)):
            reason = "firing" if any(a.is_open for a in included) else "resolved"
        elif (any(_needs_attention(a) for a in included) and g.last_sent_ns is not None
              and now_ns >= g.last_sent_ns + node.repeat_interval_ns):
            reason = "repeat"
        out: list[Notification] = []
        if reason is not None:
            out = [Notification(r, g.key, reason, tuple(included), tuple(changes), now_ns, dict(g.labels))
                   for r in node.receivers]
            g.last_sent_ns = now_ns
            g.notified |= {a.alert_id for a in included if a.is_open}
            g.pending = [c for c in g.pending if c.alert.alert_id not in ids]
        resolved = {aid for aid, a in g.members.items() if not a.is_open}  # told or not: it is over
        for aid in resolved:
            del g.members[aid]
        g.notified -= resolved
        g.pending = [c for c in g.pending if c.alert.alert_id not in resolved][-MAX_PENDING:]
        if not g.members:
            del self._groups[(g.route_id, g.key)]
        else:
            nxt = g.next_flush_ns + node.group_interval_ns
            g.next_flush_ns = nxt if nxt > now_ns else now_ns + node.group_interval_ns
        return out

    def _escalations(self, now_ns: int, silences: Sequence[Silence]) -> list[Notification]:
        """Due escalations, one message per escalation rule, zone and receiver (a burst's red alerts due
        in the same tick are one message, not one each); every alert is escalated once per rule."""
        bundles: dict[tuple[int, str, str], list[Alert]] = {}
        muted: list[tuple[int, str, int]] = []
        while self._esc_due and self._esc_due[0][0] <= now_ns:
            _, aid, i = heapq.heappop(self._esc_due)
            self._esc_queued.discard((aid, i))
            entry = self._open.get(aid)
            if entry is None or i in self._escalated.get(aid, ()) or not _needs_attention(entry[0]):
                continue  # resolved, sent, or acknowledged/cleared (a reactivation queues it again)
            a = entry[0]
            if self._mute_reason(a, silences) is not None:
                muted.append((now_ns + ESCALATION_RECHECK_NS, aid, i))  # escalate if it is unmuted in time
                continue
            self._escalated.setdefault(aid, set()).add(i)
            bundles.setdefault((i, a.network, a.zone), []).append(a)
        for item in muted:
            heapq.heappush(self._esc_due, item)
            self._esc_queued.add((item[1], item[2]))
        out: list[Notification] = []
        for (i, network, zone), alerts in sorted(bundles.items()):
            out += [Notification(r, f"{network}/{zone}", "escalation", tuple(sorted(alerts, key=_order)), (),
                                 now_ns, {"network": network, "zone": zone})
                    for r in self.config.escalate[i].receivers]
        return out

    # -- restart -----------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """JSON-able state, so a restart neither re-notifies what was sent nor forgets what is pending."""
        return {
            "version": SNAPSHOT_VERSION,
            "open": [{"alert": a.to_state(), "first_seen_ns": seen}
                     for a, seen in sorted(self._open.values(), key=lambda v: _order(v[0]))],
            "groups": [g.to_state() for _, g in sorted(self._groups.items())],
            "escalated": sorted([aid, i] for aid, sent in self._escalated.items() for i in sent),
        }

    def restore(self, data: dict[str, Any], now_ns: int | None = None) -> None:
        """Replace the state with a `snapshot()` (all or nothing: a bad snapshot raises and changes nothing).

        Groups of routes the config no longer has are dropped; their open alerts are routed afresh (at
        `now_ns`, or when first seen), so a changed tree may repeat a message but forgets no alert.
        """
        if data.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unsupported routing snapshot version {data.get('version')!r}")
        opened: dict[str, tuple[Alert, int]] = {}
        for o in data.get("open", []):
            a = Alert.from_state(o["alert"])
            opened[a.alert_id] = (a, int(o["first_seen_ns"]))
        groups: dict[GroupId, _Group] = {}
        member_of: dict[str, set[GroupId]] = {}
        for gd in data.get("groups", []):
            g = _Group.from_state(gd)
            if g.route_id not in self._nodes:
                continue
            groups[(g.route_id, g.key)] = g
            for aid, a in g.members.items():
                if a.is_open:
                    member_of.setdefault(aid, set()).add((g.route_id, g.key))
        escalated: dict[str, set[int]] = {}
        for aid, i in data.get("escalated", []):
            escalated.setdefault(str(aid), set()).add(int(i))
        self._open, self._groups, self._member_of, self._escalated = opened, groups, member_of, escalated
        self._sources = [{} for _ in self.config.inhibit]
        self._esc_due, self._esc_queued = [], set()
        for aid, (a, seen) in sorted(opened.items()):
            if aid in member_of:
                self._index(a, seen)
            else:
                self._apply(AlertChange(a, "opened", a.started_ns), seen if now_ns is None else now_ns)
