"""A replay as a page: alerts per zone over time (with labelled events behind them) and a table.

Self-contained HTML with inline SVG: it opens from disk, mails as one file, and needs no server.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from sentinel.catalog import Catalog
from sentinel.events import LabelledEvent
from sentinel.readings import iso
from sentinel.replay_run import ReplayOutcome

COLOURS = {"yellow": "#e6b800", "orange": "#f07c00", "red": "#d62728"}
ZH = {"yellow": "三级", "orange": "二级", "red": "一级"}
W, LEFT, ROW, TOP = 1100, 150, 26, 30


def _x(t: int, t0: int, t1: int) -> float:
    return LEFT + (W - LEFT - 10) * (t - t0) / max(t1 - t0, 1)


def render(catalog: Catalog, out: ReplayOutcome, events: Sequence[LabelledEvent] = (), title: str = "") -> str:
    t0, t1 = out.first_ns, max(out.last_ns, out.first_ns + 1)
    zones = list(catalog.zones)
    row_of = {z: i for i, z in enumerate(zones)}
    height = TOP + ROW * len(zones) + 30
    parts = [f'<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" '
             f'role="img" aria-label="alerts per zone over time">']
    days = int((t1 - t0) // 86_400_000_000_000) + 1
    step = 86_400_000_000_000 * max(1, days // 10)
    tick = t0 - t0 % 86_400_000_000_000 + 86_400_000_000_000
    while tick < t1:
        x = _x(tick, t0, t1)
        parts.append(f'<line x1="{x:.1f}" y1="{TOP - 5}" x2="{x:.1f}" y2="{height - 25}" stroke="#ddd"/>'
                     f'<text x="{x:.1f}" y="{height - 10}" font-size="11" text-anchor="middle">'
                     f'{iso(tick)[:10]}</text>')
        tick += step
    for z, i in row_of.items():
        y = TOP + i * ROW
        parts.append(f'<text x="{LEFT - 8}" y="{y + ROW * 0.65:.1f}" font-size="12" text-anchor="end">'
                     f'{html.escape(z)}</text><line x1="{LEFT}" y1="{y + ROW}" x2="{W - 10}" y2="{y + ROW}" '
                     f'stroke="#eee"/>')
    for ev in events:
        i = row_of.get(f"{ev.network}/{ev.zone}")
        if i is None:
            continue
        x0, x1 = _x(ev.start_ns, t0, t1), _x(ev.end_ns, t0, t1)
        parts.append(f'<rect class="event" x="{x0:.1f}" y="{TOP + i * ROW + 1}" width="{max(x1 - x0, 2):.1f}" '
                     f'height="{ROW - 2}" fill="#9aa7b8" opacity="0.35"><title>{html.escape(ev.event_id)} '
                     f'{html.escape(ev.kind)} {iso(ev.start_ns)} .. {iso(ev.end_ns)}</title></rect>')
    for a in out.alerts:
        i = row_of.get(f"{a.network}/{a.zone}")
        if i is None:
            continue
        end = a.resolved_ns or t1
        x0, x1 = _x(a.started_ns, t0, t1), _x(end, t0, t1)
        sev = a.severity.label
        tip = f"[{sev} {ZH[sev]}] {a.rule_id} {a.subject}: {a.message} ({iso(a.started_ns)})"
        parts.append(f'<rect class="alert {sev}" x="{x0:.1f}" y="{TOP + i * ROW + 6}" '
                     f'width="{max(x1 - x0, 3):.1f}" height="{ROW - 12}" fill="{COLOURS[sev]}">'
                     f'<title>{html.escape(tip)}</title></rect>')
    parts.append("</svg>")
    rows = "".join(
        f'<tr class="{a.severity.label}"><td>{iso(a.started_ns)}</td>'
        f'<td>{iso(a.resolved_ns) if a.resolved_ns else "open"}</td>'
        f'<td><span class="badge" style="background:{COLOURS[a.severity.label]}">{a.severity.label} '
        f'{ZH[a.severity.label]}</span></td><td>{html.escape(a.network)}/{html.escape(a.zone)}</td>'
        f'<td>{html.escape(a.subject)}</td><td>{html.escape(a.rule_id)}</td><td>{html.escape(a.message)}</td></tr>'
        for a in out.alerts)
    c = out.counters.as_dict()
    heading = html.escape(title or "Replay")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{heading} — Lifeline Sentinel</title>
<style>
body {{ font-family: system-ui, "Noto Sans CJK SC", sans-serif; margin: 24px; color: #222; }}
table {{ border-collapse: collapse; font-size: 13px; }} td, th {{ padding: 3px 8px; border-bottom: 1px solid #eee;
text-align: left; white-space: nowrap; }} td:last-child {{ white-space: normal; }}
.badge {{ color: #fff; border-radius: 3px; padding: 1px 6px; }}
.legend span {{ margin-right: 14px; }}
</style></head><body>
<h1>{heading} <small>管网哨兵 回放</small></h1>
<p id="summary">{iso(t0)} .. {iso(t1)} · {c['accepted']:,} readings · <b>{len(out.alerts)}</b> alerts ·
{c['detections']:,} detections · {c['dead_letters_total']:,} dead letters</p>
<p class="legend"><span style="color:{COLOURS['red']}">■ red 一级</span>
<span style="color:{COLOURS['orange']}">■ orange 二级</span>
<span style="color:{COLOURS['yellow']}">■ yellow 三级</span><span style="color:#9aa7b8">■ labelled event</span></p>
{"".join(parts)}
<h2>Alerts 告警</h2>
<table id="alerts"><thead><tr><th>start</th><th>end</th><th>grade</th><th>zone</th><th>subject</th><th>rule</th>
<th>what</th></tr></thead><tbody>{rows}</tbody></table>
</body></html>
"""


def write_replay_report(path: str | Path, catalog: Catalog, out: ReplayOutcome,
                        events: Sequence[LabelledEvent] = (), title: str = "") -> None:
    Path(path).write_text(render(catalog, out, events, title), encoding="utf-8")
