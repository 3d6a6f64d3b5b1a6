"""The words every sender uses: titles, one line per alert, local times, grade labels and colours.

Written once so DingTalk, WeCom, Feishu and e-mail say the same thing the same way; each robot only
chooses its markdown flavour (`Markdown`) and its byte limit. Chinese comes first (operators read it
first), English follows for the vendor's and the night shift's sake.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from alerts.model import Alert
from alerts.notification import Notification
from sentinel.readings import NS
from sentinel.severity import Severity


@dataclass(frozen=True)
class Grade:
    """How one grade looks everywhere: label in both languages, emoji, and each receiver's colour name."""

    zh: str
    en: str
    emoji: str
    colour: str  # Feishu card header template; also the plain colour name
    hex: str  # HTML e-mail
    wecom: str  # WeCom markdown knows only info (green), comment (grey), warning (orange-red)

    @property
    def label(self) -> str:
        return f"{self.zh} {self.en}"


GRADES: dict[Severity, Grade] = {
    Severity.RED: Grade("一级", "RED", "🔴", "red", "#d93026", "warning"),
    Severity.ORANGE: Grade("二级", "ORANGE", "🟠", "orange", "#e8710a", "warning"),
    Severity.YELLOW: Grade("三级", "YELLOW", "🟡", "yellow", "#f9ab00", "comment"),
}
RESOLVED = Grade("已恢复", "RESOLVED", "✅", "green", "#188038", "info")

NETWORK_ZH = {"water": "供水", "heat": "供热", "gas": "燃气"}
# reason -> (Chinese, English) of "N alerts ..."
_HEADLINE = {
    "firing": ("条告警触发", "firing"),
    "repeat": ("条告警仍未恢复（重复提醒）", "still firing"),
    "escalation": ("条告警升级", "escalated"),
    "resolved": ("条告警已恢复", "resolved"),
}


@dataclass(frozen=True)
class Style:
    """Per-receiver text choices: the operators' UTC offset (China: +8) and how many alert lines to list."""

    utc_offset_h: float = 8.0
    max_alerts: int = 20


DEFAULT_STYLE = Style()


def tz_name(utc_offset_h: float) -> str:
    sign = "+" if utc_offset_h >= 0 else "-"
    hours, minutes = divmod(round(abs(utc_offset_h) * 60), 60)
    return f"UTC{sign}{hours}" + (f":{minutes:02d}" if minutes else "")


def local_time(ns: int, utc_offset_h: float = 8.0, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """Wall-clock time the operators live in (alerts carry UTC ns), e.g. `2024-06-10 14:13:20`."""
    tz = timezone(timedelta(hours=utc_offset_h))
    return datetime.fromtimestamp(ns / NS, tz=tz).strftime(fmt)


def humanise(rule_id: str) -> str:
    """`burst-pressure-drop` -> `burst pressure drop`: rule ids are the only names rules have."""
    return rule_id.replace("-", " ").replace("_", " ")


def grade_of(alert: Alert) -> Grade:
    return RESOLVED if alert.state == "resolved" else GRADES[alert.severity]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def state_text(alert: Alert, utc_offset_h: float = 8.0) -> str:
    """Where the alert stands, and who is on it: `已确认 acknowledged by zhang.wei (crew dispatched)`."""
    if alert.state == "resolved":
        at = f" {local_time(alert.resolved_ns, utc_offset_h, '%m-%d %H:%M')}" if alert.resolved_ns else ""
        by = f" by {alert.resolved_by}" if alert.resolved_by else ""
        return f"已恢复 resolved{at}{by}"
    parts = []
    if alert.state == "acknowledged":
        note = f" ({alert.ack_note})" if alert.ack_note else ""
        parts.append(f"已确认 acknowledged by {alert.acked_by or '?'}{note}")
    else:
        parts.append("告警中 firing")
    if alert.current_severity is None:
        parts.append("条件已消失，待恢复 cleared, recovering")
    elif alert.current_severity != alert.severity:
        parts.append(f"当前 now {GRADES[alert.current_severity].label}")
    return " · ".join(parts)


def common(notification: Notification, name: str) -> str | None:
    """The group's value of `network`/`zone`: its label, else the one value all its alerts share."""
    if notification.labels.get(name):
        return notification.labels[name]
    values = {getattr(a, name) for a in notification.alerts}
    return values.pop() if len(values) == 1 else None


@dataclass(frozen=True)
class AlertLine:
    """One alert in words, before any markup."""

    grade: Grade
    rule: str
    subject: str
    message: str
    since: str
    state: str


@dataclass(frozen=True)
class Digest:
    """What a message about one notification says: built once, rendered by each sender."""

    grade: Grade
    reason: str
    where: str  # "water/DMA1"
    where_zh: str  # "供水 water/DMA1"
    what: str  # "burst pressure drop +2 more" (the worst alert's rule, and how many other rules)
    count: int
    headline_zh: str  # "3 条告警触发"
    headline_en: str  # "3 alerts firing"
    since: str  # "2024-06-10 14:13:20 UTC+8"
    states: str  # "2 告警中 firing · 1 已确认 acknowledged"
    lines: tuple[AlertLine, ...] = field(default=())
    group_key: str = ""

    @property
    def title(self) -> str:
        """Short enough for a chat preview: `🔴 一级告警 water/DMA1：3 条告警触发`."""
        return f"{self.grade.emoji} {self.grade.zh}告警 {self.where}：{self.headline_zh}"

    @property
    def title_en(self) -> str:
        return f"[{self.grade.label}] {self.where}: {self.headline_en} — {self.what}"


def _order(alerts: Sequence[Alert]) -> list[Alert]:
    """Open before resolved, worst first, then oldest first: the line an operator must read comes first."""
    return sorted(alerts, key=lambda a: (not a.is_open, -int(a.severity), a.started_ns, a.rule_id, a.subject))


def digest(n: Notification, style: Style = DEFAULT_STYLE) -> Digest:
    """Everything a message about `n` says, in both languages, times in `style.utc_offset_h`."""
    worst = n.worst
    open_alerts = [a for a in n.alerts if a.is_open]
    grade = RESOLVED if worst is None or not open_alerts else GRADES[worst.severity]
    network, zone = common(n, "network"), common(n, "zone")
    where = "/".join(x for x in (network, zone) if x) or n.group_key or "-"
    where_zh = f"{NETWORK_ZH[network]} {where}" if network in NETWORK_ZH else where
    rules = {a.rule_id for a in n.alerts}
    what = humanise(worst.rule_id) if worst else "-"
    what += f" +{len(rules) - 1} more" if len(rules) > 1 else ""
    zh, en = _HEADLINE[n.reason]
    count = len(n.alerts)
    first = min((a.started_ns for a in (open_alerts or n.alerts)), default=None)
    since = f"{local_time(first, style.utc_offset_h)} {tz_name(style.utc_offset_h)}" if first is not None else "-"
    tally = {s: sum(a.state == s for a in n.alerts) for s in ("firing", "acknowledged", "resolved")}
    names = {"firing": "告警中 firing", "acknowledged": "已确认 acknowledged", "resolved": "已恢复 resolved"}
    states = " · ".join(f"{k} {names[s]}" for s, k in tally.items() if k)
    lines = tuple(
        AlertLine(grade_of(a), a.rule_id, a.subject if zone else f"{a.zone}/{a.subject}", a.message,
                  local_time(a.started_ns, style.utc_offset_h, "%m-%d %H:%M:%S"),
                  state_text(a, style.utc_offset_h))
        for a in _order(n.alerts))
    return Digest(grade, n.reason, where, where_zh, what, count, f"{count} {zh}", _plural(count, "alert") + f" {en}",
                  since, states, lines, n.group_key)


def _keep(text: str) -> str:
    return text


def safe_markup(text: str) -> str:
    """Alert texts may hold `<` or `>` ("pressure < 200 kPa"); robots read them as tags. Full-width
    look-alikes read the same and cannot open a tag."""
    return text.replace("<", "＜").replace(">", "＞")


@dataclass(frozen=True)
class Markdown:
    """One receiver's markdown flavour: paragraph break, heading and bold marks, how a grade is coloured."""

    sep: str = "\n"
    heading: str = "### "
    bold: str = "**"
    quote: str = "> "
    colour: Callable[[str, Grade], str] = lambda text, grade: text
    escape: Callable[[str], str] = safe_markup


PLAIN = Markdown(heading="", bold="", quote="", escape=_keep)


def _b(m: Markdown, text: str) -> str:
    return f"{m.bold}{text}{m.bold}"


def alert_line(line: AlertLine, m: Markdown) -> str:
    e = m.escape
    grade = m.colour(f"{line.grade.emoji} {line.grade.label}", line.grade)
    return (f"- {grade} · {_b(m, e(line.rule))} · {e(line.subject)}：{e(line.message)} · "
            f"自 since {line.since} · {e(line.state)}")


def summary_lines(d: Digest, m: Markdown, *, title: bool = True) -> list[str]:
    """Title (optional: cards have a header), what/where/how bad/since/how many/state."""
    e = m.escape
    grade = m.colour(f"{d.grade.emoji} {d.grade.label}", d.grade)
    head = [f"{m.heading}{e(d.title)}"] if title else []
    return [
        *head,
        f"{_b(m, e(d.headline_zh))} | {e(d.headline_en)} — {e(d.what)}",
        f"{m.quote}等级 grade：{grade}",
        f"{m.quote}位置 where：{e(d.where_zh)}",
        f"{m.quote}起始 since：{d.since}",
        f"{m.quote}状态 state：{e(d.states)}",
    ]


def more_line(n: int) -> str:
    return f"…还有 {n} 条 / {n} more"


def _cut(text: str, limit: int) -> str:
    """At most `limit` UTF-8 bytes of `text`, never half a character."""
    raw = text.encode("utf-8")
    return text if len(raw) <= limit else raw[: max(0, limit - 3)].decode("utf-8", "ignore") + "…"


def fit(head: Sequence[str], items: Sequence[str], sep: str, limit: int | None, max_items: int | None = None) -> str:
    """`head` then as many `items` as fit in `limit` UTF-8 bytes (and `max_items`), then "…还有 N 条".

    Robots reject or cut over-long messages (WeCom markdown: 4096 bytes), and a cut in the middle of a
    line loses the count; this drops whole lines and says how many were dropped."""
    cap = len(items) if max_items is None else min(max_items, len(items))
    used, shown = _size(sep.join(head)), 0
    while shown < cap and limit is not None:
        grown = used + _size(sep) + _size(items[shown])
        hidden = len(items) - shown - 1
        if grown + (_size(sep) + _size(more_line(hidden)) if hidden else 0) > limit:
            break
        used, shown = grown, shown + 1
    if limit is None:
        shown = cap
    hidden = len(items) - shown
    out = sep.join([*head, *items[:shown], *([more_line(hidden)] if hidden else [])])
    return out if limit is None or _size(out) <= limit else _cut(out, limit)


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def render(d: Digest, m: Markdown, *, limit: int | None = None, max_alerts: int | None = None,
           title: bool = True) -> str:
    """The whole message body in flavour `m`, within `limit` bytes."""
    return fit(summary_lines(d, m, title=title), [alert_line(x, m) for x in d.lines], m.sep, limit, max_alerts)
