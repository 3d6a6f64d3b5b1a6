"""Leakage accounting as a terminal table and as a self-contained HTML page (inline SVG, no JS build).

The page answers the question the 2030 target asks of each DMA - is its leakage below 9 % of what flows
in? - with one line per zone against the target line, and the volumes behind each share. Labels are
Chinese with English beside them, as on the operator console.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

from sentinel.leakage import DayLeakage, LeakageResult, Rollup

PALETTE = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#17becf", "#e377c2", "#bcbd22", "#7f7f7f")
TARGET_COLOUR = "#d62728"
W, H, LEFT, RIGHT, TOP, BOTTOM = 1000, 320, 70, 150, 20, 50
STATUS_ZH = {"ok": "正常 ok", "incomplete": "数据不足 incomplete", "missing": "数据缺失 missing"}


def _num(x: float | None, fmt: str = ".1f", unit: str = "") -> str:
    return "—" if x is None else f"{x:{fmt}}{unit}"


def _flag(above: bool | None) -> str:
    return "" if above is None else ("超标 ABOVE" if above else "达标 within")


# -- text ----------------------------------------------------------------------------------------------


def format_table(r: LeakageResult) -> str:
    """Days, weeks and per-zone totals as aligned text, with the zones above target named last."""
    out = [f"{'zone':10s} {'day':10s} {'MNF m3/h':>9s} {'night use':>9s} {'NDF h':>6s} {'leakage m3':>11s} "
           f"{'inflow m3':>10s} {'share':>7s}  status"]
    for d in r.days:
        status = d.status if d.status != "ok" else _flag(d.above_target)
        note = f"  ({d.note})" if d.note else ""
        out.append(f"{d.zone:10s} {d.day:10s} {_num(d.mnf_m3h):>9s} {_num(d.night_use_m3h):>9s} "
                   f"{_num(d.ndf_h):>6s} {_num(d.leakage_m3, '.0f'):>11s} {_num(d.inflow_m3, '.0f'):>10s} "
                   f"{_num(d.share_pct, '.1f', '%'):>7s}  {status}{note}")
    for title, rows in (("weekly 周", r.weeks), ("period 全期", r.totals)):
        out += ["", f"{'zone':10s} {title:10s} {'days ok':>7s} {'not ok':>7s} {'leakage m3':>11s} "
                    f"{'inflow m3':>10s} {'share':>7s}"]
        out += [f"{w.zone:10s} {w.period:10s} {w.days_ok:7d} {w.days_not_ok:7d} {_num(w.leakage_m3, '.0f'):>11s} "
                f"{_num(w.inflow_m3, '.0f'):>10s} {_num(w.share_pct, '.1f', '%'):>7s}  {_flag(w.above_target)}"
                for w in rows]
    above = r.above_target()
    out += ["", f"target 目标: leakage below {r.target_pct:g}% of net inflow; "
                + (f"above 超标: {', '.join(above)}" if above else "no zone above target 全部达标")]
    out += [f"note: {n}" for n in r.notes]
    return "\n".join(out)


# -- SVG -----------------------------------------------------------------------------------------------


def _scale(vmax: float) -> tuple[float, float]:
    """(axis top, tick step) with a round step (1, 2, 2.5 or 5 x 10^k) and at most ~6 ticks."""
    raw = max(vmax, 1e-9) / 5
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return step * math.ceil(vmax / step), step


def _axes(ymax: float, step: float, label: str, days: list[str], x_of, y_of, fmt: str = "g") -> list[str]:
    parts = []
    for k in range(round(ymax / step) + 1):
        y = y_of(k * step)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" stroke="#eee"/>'
                     f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{k * step:{fmt}}</text>')
    every = max(1, len(days) // 14)
    for i, day in enumerate(days):
        if i % every == 0:
            parts.append(f'<text class="day-label" x="{x_of(i):.1f}" y="{H - BOTTOM + 16}" font-size="11" '
                         f'text-anchor="middle">{day[5:]}</text>')
    mid = TOP + (H - TOP - BOTTOM) / 2
    parts.append(f'<text x="14" y="{mid:.0f}" font-size="12" text-anchor="middle" '
                 f'transform="rotate(-90 14 {mid:.0f})">{html.escape(label)}</text>')
    return parts


def _by_zone(r: LeakageResult) -> tuple[list[str], list[str], dict[str, dict[str, DayLeakage]]]:
    days = sorted({d.day for d in r.days})
    zones = sorted({d.zone for d in r.days})
    grid: dict[str, dict[str, DayLeakage]] = {z: {} for z in zones}
    for d in r.days:
        grid[d.zone][d.day] = d
    return days, zones, grid


def share_svg(r: LeakageResult) -> str:
    """Daily share per zone (a gap where a day is missing) against the target line."""
    days, zones, grid = _by_zone(r)
    shares = [d.share_pct for d in r.days if d.share_pct is not None]
    ymax, step = _scale(max([*shares, r.target_pct * 1.5]))
    span = max(len(days) - 1, 1)

    def x_of(i: float) -> float:
        return LEFT + (W - LEFT - RIGHT) * (i / span if len(days) > 1 else 0.5)

    def y_of(v: float) -> float:
        return H - BOTTOM - (H - TOP - BOTTOM) * v / ymax

    parts = [f'<svg id="share-chart" xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" role="img" '
             f'aria-label="daily leakage share per zone against the target">',
             *_axes(ymax, step, "漏损率 leakage share %", days, x_of, y_of)]
    yt = y_of(r.target_pct)
    parts.append(f'<line id="target-line" class="target" x1="{LEFT}" y1="{yt:.1f}" x2="{W - RIGHT}" y2="{yt:.1f}" '
                 f'stroke="{TARGET_COLOUR}" stroke-width="2" stroke-dasharray="6 4"/>'
                 f'<text x="{W - RIGHT + 6}" y="{yt + 4:.1f}" font-size="12" fill="{TARGET_COLOUR}">'
                 f'目标 target {r.target_pct:g}%</text>')
    for k, zone in enumerate(zones):
        colour = PALETTE[k % len(PALETTE)]
        path, pen_down, marks = [], False, []
        for i, day in enumerate(days):
            d = grid[zone].get(day)
            if d is None or d.share_pct is None:
                pen_down = False
                if d is not None:
                    marks.append(f'<text class="missing" x="{x_of(i):.1f}" y="{H - BOTTOM - 6}" font-size="18" '
                                 f'text-anchor="middle" fill="{colour}">×<title>{html.escape(zone)} {day}: '
                                 f'{STATUS_ZH.get(d.status, d.status)} — {html.escape(d.note)}</title></text>')
                continue
            x, y = x_of(i), y_of(d.share_pct)
            path.append(f"{'L' if pen_down else 'M'}{x:.1f},{y:.1f}")
            pen_down = True
            ring = f' stroke="{TARGET_COLOUR}" stroke-width="2"' if d.above_target else ""
            marks.append(f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}"{ring}>'
                         f'<title>{html.escape(zone)} {day}: {d.share_pct:.1f}% ({d.leakage_m3:.0f} of '
                         f'{d.inflow_m3:.0f} m3)</title></circle>')
        parts.append(f'<path class="zone-line" data-zone="{html.escape(zone)}" d="{" ".join(path)}" fill="none" '
                     f'stroke="{colour}" stroke-width="2"/>')
        parts += marks
        parts.append(f'<text x="{W - RIGHT + 6}" y="{TOP + 16 + 16 * k}" font-size="12" fill="{colour}">'
                     f'■ {html.escape(zone)}</text>')
    parts.append(f'<text x="{W - RIGHT + 6}" y="{TOP + 24 + 16 * len(zones)}" font-size="11" fill="#555">'
                 f'× 数据不足 no data</text><text x="{W - RIGHT + 6}" y="{TOP + 40 + 16 * len(zones)}" '
                 f'font-size="11" fill="#555">红圈 red ring: 超标 above</text></svg>')
    return "".join(parts)


def volume_svg(r: LeakageResult) -> str:
    """Per day and zone: inflow (light bar) with the leakage part of it (dark bar), m3/day."""
    days, zones, grid = _by_zone(r)
    vols = [d.inflow_m3 for d in r.days if d.inflow_m3 is not None]
    ymax, step = _scale(max(vols, default=1.0))
    slot = (W - LEFT - RIGHT) / max(len(days), 1)
    bar = slot * 0.8 / max(len(zones), 1)

    def x_of(i: float) -> float:
        return LEFT + slot * (i + 0.5)

    def y_of(v: float) -> float:
        return H - BOTTOM - (H - TOP - BOTTOM) * v / ymax

    parts = [f'<svg id="volume-chart" xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" role="img" '
             f'aria-label="daily inflow and leakage volumes per zone">',
             *_axes(ymax, step, "水量 volume m3/day", days, x_of, y_of, ",.0f")]
    for k, zone in enumerate(zones):
        colour = PALETTE[k % len(PALETTE)]
        for i, day in enumerate(days):
            d = grid[zone].get(day)
            if d is None or d.inflow_m3 is None or d.leakage_m3 is None:
                continue
            x = LEFT + slot * i + slot * 0.1 + bar * k
            tip = f"{zone} {day}: leakage 漏损 {d.leakage_m3:.0f} m3 of inflow 供水 {d.inflow_m3:.0f} m3"
            for cls, v, opacity in (("inflow-bar", d.inflow_m3, 0.25), ("volume-bar", d.leakage_m3, 0.9)):
                y = y_of(max(v, 0.0))
                parts.append(f'<rect class="{cls}" data-zone="{html.escape(zone)}" x="{x:.1f}" y="{y:.1f}" '
                             f'width="{bar:.1f}" height="{H - BOTTOM - y:.1f}" fill="{colour}" '
                             f'opacity="{opacity}"><title>{html.escape(tip)}</title></rect>')
        parts.append(f'<text x="{W - RIGHT + 6}" y="{TOP + 16 + 16 * k}" font-size="12" fill="{colour}">'
                     f'■ {html.escape(zone)}</text>')
    parts.append(f'<text x="{W - RIGHT + 6}" y="{TOP + 24 + 16 * len(zones)}" font-size="11" fill="#555">'
                 f'浅 light: 供水 inflow</text><text x="{W - RIGHT + 6}" y="{TOP + 40 + 16 * len(zones)}" '
                 f'font-size="11" fill="#555">深 dark: 漏损 leakage</text></svg>')
    return "".join(parts)


# -- page ----------------------------------------------------------------------------------------------


def _rollup_rows(rows: list[Rollup]) -> str:
    return "".join(
        f'<tr class="{"above" if w.above_target else ""}"><td>{html.escape(w.zone)}</td><td>{w.period}</td>'
        f"<td>{w.first_day} .. {w.last_day}</td><td>{w.days_ok}</td><td>{w.days_not_ok}</td>"
        f"<td>{_num(w.leakage_m3, ',.0f')}</td><td>{_num(w.inflow_m3, ',.0f')}</td>"
        f"<td><b>{_num(w.share_pct, '.1f', '%')}</b></td><td>{_flag(w.above_target)}</td></tr>" for w in rows)


def _day_rows(days: list[DayLeakage]) -> str:
    return "".join(
        f'<tr class="{d.status}{" above" if d.above_target else ""}"><td>{html.escape(d.zone)}</td><td>{d.day}</td>'
        f"<td>{STATUS_ZH.get(d.status, d.status)}</td><td>{d.coverage:.0%}</td><td>{_num(d.mnf_m3h, '.2f')}</td>"
        f"<td>{_num(d.night_use_m3h, '.2f')}</td><td>{_num(d.ndf_h, '.2f')} {d.ndf_source or ''}</td>"
        f"<td>{_num(d.leakage_m3, ',.0f')}</td><td>{_num(d.inflow_m3, ',.0f')}</td>"
        f"<td><b>{_num(d.share_pct, '.1f', '%')}</b></td><td>{_flag(d.above_target)}</td>"
        f"<td>{html.escape(d.note)}</td></tr>" for d in days)


def _settings_rows(r: LeakageResult) -> str:
    out = []
    for zone, s in r.zone_settings.items():
        use = ", ".join(f"{k}={v}" for k, v in s.night_use.model_dump().items() if k != "method")
        ndf = ", ".join(f"{k}={v}" for k, v in s.ndf.model_dump().items())
        out.append(f"<tr><td>{html.escape(zone)}</td><td>{s.night_window[0]}–{s.night_window[1]}</td>"
                   f"<td>{s.night_use.method} {html.escape(use)}</td><td>{html.escape(ndf)}</td>"
                   f"<td>{r.pressure_loggers[zone]}</td></tr>")
    return "".join(out)


def _head(*cols: str) -> str:
    return "<tr>" + "".join(f"<th>{c}</th>" for c in cols) + "</tr>"


def render(r: LeakageResult, title: str = "") -> str:
    heading = html.escape(title or "Leakage accounting")
    above = r.above_target()
    verdict = (f'<b style="color:{TARGET_COLOUR}">超标 above target: {html.escape(", ".join(above))}</b>'
               if above else "<b>全部达标 every zone within target</b>")
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in r.notes)
    roll = _head("zone 分区", "period 时段", "days 日期", "ok 天数", "not ok 缺", "leakage 漏损 m3", "inflow 供水 m3",
                 "share 漏损率", "")
    daily = _head("zone 分区", "day 日期", "status 状态", "coverage 覆盖", "MNF 最小夜间流量 m3/h",
                  "night use 合法夜间用水 m3/h", "NDF 日夜因子 h", "leakage 漏损 m3", "inflow 供水 m3", "share 漏损率",
                  "", "note 备注")
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{heading} — Lifeline Sentinel</title>
<style>
body {{ font-family: system-ui, "Noto Sans CJK SC", sans-serif; margin: 24px; color: #222; }}
table {{ border-collapse: collapse; font-size: 13px; margin-bottom: 18px; }}
td, th {{ padding: 3px 8px; border-bottom: 1px solid #eee; text-align: left; white-space: nowrap; }}
td:last-child {{ white-space: normal; }} tr.above td {{ background: #fdecea; }}
tr.missing td, tr.incomplete td {{ color: #777; }}
</style></head><body>
<h1>{heading} <small>管网漏损核算 (最小夜间流量法) leakage from minimum night flow</small></h1>
<p id="summary">目标 target: leakage below <b>{r.target_pct:g}%</b> of each DMA's net inflow · {verdict} ·
local time UTC{r.utc_offset_h:+g} · bucket {r.step_s / 60:g} min</p>
<h2>日漏损率 Daily leakage share</h2>
{share_svg(r)}
<h2>日水量 Daily volumes</h2>
{volume_svg(r)}
<h2>分区汇总 Per zone, whole period</h2>
<table id="totals"><thead>{roll}</thead><tbody>{_rollup_rows(r.totals)}</tbody></table>
<h2>周汇总 Weekly</h2>
<table id="weeks"><thead>{roll}</thead><tbody>{_rollup_rows(r.weeks)}</tbody></table>
<h2>逐日 Daily</h2>
<table id="days"><thead>{daily}</thead><tbody>{_day_rows(r.days)}</tbody></table>
<h2>参数 Settings per zone</h2>
<table id="settings"><thead><tr><th>zone 分区</th><th>night window 夜间时段</th><th>night use 合法夜间用水</th>
<th>NDF 日夜因子</th><th>pressure loggers 压力计</th></tr></thead><tbody>{_settings_rows(r)}</tbody></table>
<ul id="notes">{notes}</ul>
<p style="font-size:12px;color:#555">leakage = (MNF − night use) × NDF; NDF = Σ (P(t)/P_night)^N1 × Δt over the
day (24 h when pressure is not used). MNF counts physical losses only; the 漏损率 target also counts apparent
losses. 仅计物理漏失。</p>
</body></html>
"""


def write_leakage_report(path: str | Path, r: LeakageResult, title: str = "") -> None:
    Path(path).write_text(render(r, title), encoding="utf-8")
