"""`python -m bench.detection.leak_pressure`: do a zone's pressures show a slow leak its inflow cannot?

The ideal observer (`ideal.py`) reads the zone's inflow only. A leak also draws its water through the
mains to where it is, so the loggers near it should sit lower than the zone's others. Per slow leak and
logger: the logger's departure from the median of the zone's loggers, averaged over a daily window of
local hours (night 02-04, day 08-20), on the leak's second and third days (24-72 hours in) against the six
days before it began, in units of that departure's day-to-day spread (a t statistic with five degrees of
freedom). The zone's median takes out what moves every logger alike (the day's demand, the source head).

The largest |t| over a zone's loggers is then compared with the same statistic at leak-free onsets: the
same zones on days whose ten-day span holds no labelled event or benign anomaly of the zone. Its share of
those at least as large is the leak's p-value: a leak the pressures show stands out from them.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import numpy as np

from bench.detection import suite
from rules.calendar import DAY_NS
from sentinel.events import LabelledEvent

BEFORE_DAYS = 6  # reference days before the onset
AFTER_DAYS = (1, 2)  # the leak's second and third days: 24-72 hours in
WINDOWS = {"night": (2, 4), "day": (8, 20)}  # local hours averaged per day


@dataclass(frozen=True)
class Shift:
    """The logger whose departure from the zone's median moved most, in one daily window."""

    logger: str
    t: float  # its move in units of its day-to-day spread (largest |t| of the zone's loggers)
    kpa: float  # its move


def departures(pressure: np.ndarray) -> np.ndarray:
    """(steps, loggers) pressures less the zone's median at each step: what moves the loggers apart."""
    return pressure - np.nanmedian(pressure, axis=1, keepdims=True)


def daily_means(dep: np.ndarray, local_hour: np.ndarray, day: np.ndarray, days: range,
                hours: tuple[int, int]) -> np.ndarray:
    """(len(days), loggers) mean departure within `hours` of each day (NaN where a day has none)."""
    inside = (local_hour >= hours[0]) & (local_hour < hours[1])
    out = np.full((len(days), dep.shape[1]), np.nan)
    for i, d in enumerate(days):
        rows = dep[inside & (day == d)]
        if len(rows):
            out[i] = np.nanmean(rows, axis=0)
    return out


def largest_shift(dep: np.ndarray, local_hour: np.ndarray, day: np.ndarray, onset_day: int,
                  hours: tuple[int, int], loggers: list[str]) -> Shift | None:
    """The logger that moved most on the days after `onset_day` against the days before, by |t|."""
    before = daily_means(dep, local_hour, day, range(onset_day - BEFORE_DAYS, onset_day), hours)
    after = daily_means(dep, local_hour, day, range(onset_day + AFTER_DAYS[0], onset_day + AFTER_DAYS[1] + 1),
                        hours)
    ref, spread = np.nanmean(before, axis=0), np.nanstd(before, axis=0, ddof=1)
    n = np.sum(~np.isnan(before), axis=0)
    moved = np.nanmean(after, axis=0) - ref
    # a logger that sets the median itself (odd count) never departs from it: it has no spread to judge by
    judged = (spread > 1e-9) & (n >= 3) & ~np.isnan(moved)
    if not judged.any():
        return None
    t = np.where(judged, moved / np.where(judged, spread, 1.0) / np.sqrt(1 + 1 / np.maximum(n, 1)), 0.0)
    k = int(np.argmax(np.abs(t)))
    return Shift(loggers[k], float(t[k]), float(moved[k]))


def quiet_onsets(labelled: list[LabelledEvent], zone: str, first_ns: int, days: int) -> list[int]:
    """Onset days whose span (six days before to three after) holds nothing labelled in `zone`."""
    busy: set[int] = set()
    for ev in labelled:
        if ev.zone in ("", "*", zone) or ev.kind == "holiday":
            busy.update(range((ev.start_ns - first_ns) // DAY_NS, (ev.end_ns - first_ns) // DAY_NS + 1))
    return [d for d in range(BEFORE_DAYS + 1, days - AFTER_DAYS[1])
            if not busy & set(range(d - BEFORE_DAYS, d + AFTER_DAYS[1] + 1))]


@dataclass(frozen=True)
class LeakRow:
    run: str
    zone: str
    size: str
    shifts: dict[str, Shift | None]


def case_rows(case: suite.Case, simulators: str) -> tuple[list[LeakRow], dict[str, list[float]]]:
    """Per slow leak its largest shifts, and the null |t| per window from quiet onsets in every zone."""
    from ingest.replay import read_replay
    from sentinel.catalog import load_catalog
    from sentinel.events import load_events

    directory, _ = suite.simulated(case, simulators=simulators, show_progress=False)
    catalog = load_catalog(directory / "catalog.csv")
    events = load_events(directory / "events.csv")
    anomalies = load_events(directory / "anomalies.csv") if (directory / "anomalies.csv").exists() else []
    batch = read_replay(directory / "readings.csv", catalog).batch
    steps = np.unique(batch.time_ns)
    first_ns = int(steps[0])
    local_s = steps // 1_000_000_000 + int(float(suite.scenario_doc(case.scenario).get("utc_offset_h", 0)) * 3600)
    local_hour, day = (local_s % 86400) // 3600, (steps - first_ns) // DAY_NS
    rows: list[LeakRow] = []
    null: dict[str, list[float]] = {w: [] for w in WINDOWS}
    for zone_code, zone in enumerate(catalog.zones):
        members = [i for i, s in enumerate(catalog.sensors)
                   if catalog.zone_code[i] == zone_code and s.quantity == "pressure"]
        if len(members) < 3:
            continue
        pressure = np.full((len(steps), len(members)), np.nan)
        for j, i in enumerate(members):
            mine = batch.sensor == i
            pressure[np.searchsorted(steps, batch.time_ns[mine]), j] = batch.value[mine]
        dep = departures(pressure)
        names = [catalog.sensors[i].sensor_id for i in members]
        network, name = zone.split("/", 1)
        mine_labelled = [e for e in [*events, *anomalies] if e.network == network]
        for onset in quiet_onsets(mine_labelled, name, first_ns, int(day[-1]) + 1):
            for w, hours in WINDOWS.items():
                s = largest_shift(dep, local_hour, day, onset, hours, names)
                if s is not None:
                    null[w].append(abs(s.t))
        for ev in events:
            if ev.kind == "slow_leak" and ev.network == network and ev.zone == name:
                onset = int((ev.start_ns - first_ns) // DAY_NS)
                shifts = {w: largest_shift(dep, local_hour, day, onset, hours, names) for w, hours in WINDOWS.items()}
                size = (ev.description or "").split(" ", 1)[0]
                rows.append(LeakRow(case.label, zone, size, shifts))
    return rows, null


def p_value(t: float, null: list[float]) -> float:
    """Share of leak-free onsets whose largest |t| is at least this one's (with the leak counted in)."""
    return (1 + sum(x >= abs(t) for x in null)) / (1 + len(null))


def render(rows: list[LeakRow], null: dict[str, list[float]]) -> str:
    lines = ["| run | zone | size | " + " | ".join(f"{w}: logger, move, t, p" for w in WINDOWS) + " |",
             "|---|---|---|" + "---|" * len(WINDOWS)]
    for r in rows:
        cells = []
        for w in WINDOWS:
            s = r.shifts[w]
            cells.append("-" if s is None
                         else f"{s.logger} {s.kpa:+.2f} kPa, t {s.t:+.1f}, p {p_value(s.t, null[w]):.2f}")
        lines.append(f"| {r.run} | {r.zone} | {r.size} | " + " | ".join(cells) + " |")
    lines.append("")
    for w in WINDOWS:
        ps = [p_value(r.shifts[w].t, null[w]) for r in rows if r.shifts[w] is not None]
        lines.append(f"{w}: {len(null[w])} leak-free onsets (median largest |t| {np.median(null[w]):.1f}); "
                     f"leaks at p <= 0.05: {sum(p <= 0.05 for p in ps)} of {len(ps)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.detection.leak_pressure", description=__doc__.splitlines()[0])
    ap.add_argument("--dev", action="store_true", help="the development seeds")
    args = ap.parse_args(argv)
    sim = suite.simulator_digest()
    rows: list[LeakRow] = []
    null: dict[str, list[float]] = {w: [] for w in WINDOWS}
    for case in suite.cases(dev=args.dev):
        if suite.scenario_doc(case.scenario).get("engine") != "wntr":
            continue
        print(f"  {case.label}", file=sys.stderr, flush=True)
        r, n = case_rows(case, sim)
        rows += r
        for w in WINDOWS:
            null[w] += n[w]
    print(render(rows, null))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
