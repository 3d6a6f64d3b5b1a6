"""Daily leakage of a water zone (DMA) from its minimum night flow: pure numpy, no I/O.

Why the night: at 02:00-04:00 almost nobody uses water, so what still flows into a DMA is mostly
leaking. Per local day and zone:

    MNF        = lowest `bucket` mean of net inflow (inlets - outlets) in the night window   [m3/h]
    night use  = legitimate use at that time (per property, a fraction of MNF, or absolute) [m3/h]
    L_night    = max(MNF - night use, 0)                                                     [m3/h]
    leakage(t) = L_night * (P(t) / P_night)^N1        (FAVAD: leak flow follows pressure)
    NDF        = sum over the day of (P(t) / P_night)^N1 * dt                                [h]
    leakage    = L_night * NDF                                                               [m3/day]
    inflow     = sum over the day of net inflow * dt                                         [m3/day]
    share      = leakage / inflow * 100                                                      [%]

P_night is the pressure in the bucket where the MNF was measured. With several loggers each is taken
against its own P_night and the ratios^N1 are averaged, so a logger that drops out does not shift the
zone's level. Without usable pressure NDF is a fixed number of hours (24 by default: pressure assumed
flat, which overstates leakage where daytime pressure sags). Gaps inside a day are filled with the
day's mean (inflow, pressure ratio) when enough of the day is covered; otherwise the day is reported
as missing or incomplete, never as zero.

MNF measures physical (real) losses only; the 9 % target's 漏损率 (CJJ 92) also counts apparent losses
(meter under-registration, theft), so a zone under 9 % here may still miss it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from sentinel.leakage_config import DAY_S, LeakageConfig, ZoneSettings

NS = 1_000_000_000
DAY_NS = DAY_S * NS


@dataclass(frozen=True)
class ZoneSeries:
    """One zone on a grid of whole local days: bucket 0 starts at a local midnight."""

    zone: str
    start_ns: int
    step_s: float
    net_m3h: np.ndarray  # (n,) net inflow per bucket; NaN = unknown
    pressure_kpa: np.ndarray | None = None  # (loggers, n) or (n,); NaN = unknown; None = no loggers

    @property
    def per_day(self) -> int:
        return round(DAY_S / self.step_s)

    @property
    def days(self) -> int:
        return len(self.net_m3h) // self.per_day


@dataclass(frozen=True)
class DayLeakage:
    """One zone-day. Numbers are None unless status is "ok"."""

    zone: str
    day: str  # local date
    start_ns: int  # local midnight, UTC ns
    status: str  # ok | incomplete | missing
    note: str
    coverage: float  # share of the day's buckets with a net inflow
    mnf_m3h: float | None = None
    mnf_at_ns: int | None = None
    night_use_m3h: float | None = None
    ndf_h: float | None = None
    ndf_source: str | None = None  # fixed | pressure
    p_night_kpa: float | None = None
    leakage_m3: float | None = None
    inflow_m3: float | None = None
    share_pct: float | None = None
    above_target: bool | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Rollup:
    """Several days of one zone summed: share = total leakage / total inflow over the ok days."""

    zone: str
    period: str  # ISO week "2025-W02", or "all"
    first_day: str
    last_day: str
    days_ok: int
    days_not_ok: int
    leakage_m3: float | None
    inflow_m3: float | None
    share_pct: float | None
    above_target: bool | None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def night_day_factor(pressure: np.ndarray, p_night: float, n1: float, step_h: float) -> float:
    """NDF [h] = sum of (P(t)/P_night)^N1 * dt over one day's buckets; NaN buckets take the mean ratio."""
    ratio = (np.asarray(pressure, dtype=np.float64) / p_night) ** n1
    per_day = len(ratio)
    return float(np.nanmean(ratio) * per_day * step_h)


def _nanmean(a: np.ndarray, axis: int) -> np.ndarray:
    """Mean ignoring NaN; NaN (not a warning) where a row has no value at all."""
    n = np.isfinite(a).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.nansum(a, axis=axis) / n, np.nan)


def _ndf_from_loggers(p: np.ndarray, j_mnf: int, night: np.ndarray, n1: float,
                      step_h: float) -> tuple[float | None, float | None, float]:
    """(NDF, mean P_night, coverage) for one day of (loggers, per_day) pressures; each logger against its
    own night pressure (its value at the MNF bucket, else its night-window mean)."""
    p_night = np.where(np.isfinite(p[:, j_mnf]), p[:, j_mnf], _nanmean(p[:, night], axis=1))
    usable = np.isfinite(p_night) & (p_night > 0)
    if not usable.any():
        return None, None, 0.0
    zone_ratio = _nanmean((p[usable] / p_night[usable, None]) ** n1, axis=0)  # per bucket
    seen = np.isfinite(zone_ratio)
    coverage = float(seen.mean())
    if not seen.any():
        return None, float(p_night[usable].mean()), 0.0
    return night_day_factor(zone_ratio, 1.0, 1.0, step_h), float(p_night[usable].mean()), coverage


def _local_day(start_ns: int, utc_offset_h: float) -> str:
    t = dt.datetime.fromtimestamp(start_ns / NS, dt.UTC) + dt.timedelta(hours=utc_offset_h)
    return t.date().isoformat()


def daily_leakage(series: ZoneSeries, settings: ZoneSettings, *, utc_offset_h: float,
                  target_pct: float) -> list[DayLeakage]:
    """One `DayLeakage` per local day of the series (see the module doc for the formulas)."""
    per_day, days, step_h = series.per_day, series.days, series.step_s / 3600.0
    net = series.net_m3h[: days * per_day].reshape(days, per_day)
    p = series.pressure_kpa
    if p is not None:
        p = np.atleast_2d(p)[:, : days * per_day].reshape(-1, days, per_day)
    w0, w1 = settings.night_minutes
    start_min = np.arange(per_day) * series.step_s / 60.0
    night = (start_min >= w0) & (start_min + series.step_s / 60.0 <= w1)
    window = f"{settings.night_window[0]}-{settings.night_window[1]}"
    if not night.any():
        raise ValueError(f"zone {series.zone}: night window {window} holds no whole {series.step_s:g}s bucket")
    out = []
    for d in range(days):
        t0 = series.start_ns + d * DAY_NS
        base = {"zone": series.zone, "day": _local_day(t0, utc_offset_h), "start_ns": t0}
        x = net[d]
        valid = np.isfinite(x)
        coverage = float(valid.mean())
        night_ok = valid & night
        night_cov = night_ok.sum() / night.sum()
        if not valid.any():
            out.append(DayLeakage(**base, status="missing", note="no net inflow data", coverage=0.0))
            continue
        if coverage < settings.min_day_coverage:
            out.append(DayLeakage(**base, status="incomplete", coverage=coverage,
                                  note=f"net inflow covers {coverage:.0%} of the day (needs "
                                       f"{settings.min_day_coverage:.0%})"))
            continue
        if night_cov < settings.min_night_coverage:
            out.append(DayLeakage(**base, status="incomplete", coverage=coverage,
                                  note=f"night window {window} has {int(night_ok.sum())} of {int(night.sum())} "
                                       f"buckets (needs {settings.min_night_coverage:.0%})"))
            continue
        j = int(np.flatnonzero(night_ok)[np.argmin(x[night_ok])])
        mnf = float(x[j])
        use = settings.night_use.rate_m3h(mnf)
        notes = []
        l_night = mnf - use
        if l_night < 0:
            notes.append(f"night use {use:.3g} m3/h exceeds MNF {mnf:.3g} m3/h: leakage taken as 0")
            l_night = 0.0
        ndf, source, p_night = settings.ndf.hours, "fixed", None
        if settings.ndf.method != "fixed":
            if p is None:
                if settings.ndf.method == "pressure":
                    notes.append(f"no pressure loggers: NDF {ndf:g} h")
            else:
                got, p_night, p_cov = _ndf_from_loggers(p[:, d], j, night, settings.ndf.n1, step_h)
                if got is not None and p_cov >= settings.min_day_coverage:
                    ndf, source = got, "pressure"
                else:
                    notes.append(f"pressure covers {p_cov:.0%} of the day: NDF {ndf:g} h")
        inflow = float(np.nanmean(x) * per_day * step_h)
        leakage = l_night * ndf
        share = leakage / inflow * 100.0 if inflow > 0 else None
        if share is None:
            notes.append("net inflow is not positive: no share")
        out.append(DayLeakage(
            **base, status="ok", note="; ".join(notes), coverage=coverage, mnf_m3h=mnf,
            mnf_at_ns=t0 + round(j * series.step_s * NS), night_use_m3h=use, ndf_h=ndf, ndf_source=source,
            p_night_kpa=p_night, leakage_m3=leakage, inflow_m3=inflow, share_pct=share,
            above_target=None if share is None else share > target_pct))
    return out


def iso_week(day: str) -> str:
    y, w, _ = dt.date.fromisoformat(day).isocalendar()
    return f"{y}-W{w:02d}"


def rollup(days: Sequence[DayLeakage], period: str, target_pct: float) -> Rollup:
    """Sum one zone's days (leakage and inflow over ok days only: a missing day adds nothing to either)."""
    ok = [d for d in days if d.status == "ok" and d.share_pct is not None]
    leak = sum(d.leakage_m3 or 0.0 for d in ok) if ok else None
    inflow = sum(d.inflow_m3 or 0.0 for d in ok) if ok else None
    share = leak / inflow * 100.0 if ok and inflow and inflow > 0 else None
    return Rollup(days[0].zone, period, days[0].day, days[-1].day, len(ok), len(days) - len(ok), leak, inflow,
                  share, None if share is None else share > target_pct)


def weekly(days: Iterable[DayLeakage], target_pct: float) -> list[Rollup]:
    """Per zone and ISO week (Monday to Sunday, local dates)."""
    groups: dict[tuple[str, str], list[DayLeakage]] = {}
    for d in days:
        groups.setdefault((d.zone, iso_week(d.day)), []).append(d)
    return [rollup(g, week, target_pct) for (_, week), g in sorted(groups.items())]


def totals(days: Iterable[DayLeakage], target_pct: float) -> list[Rollup]:
    """Per zone over the whole period."""
    groups: dict[str, list[DayLeakage]] = {}
    for d in days:
        groups.setdefault(d.zone, []).append(d)
    return [rollup(g, "all", target_pct) for _, g in sorted(groups.items())]


@dataclass(frozen=True)
class LeakageResult:
    """Everything a report shows: days, ISO weeks and whole-period totals per zone, and how each zone
    was configured (so a reader can see what night use and NDF the figures assume)."""

    target_pct: float
    utc_offset_h: float
    step_s: float
    days: list[DayLeakage]
    weeks: list[Rollup]
    totals: list[Rollup]
    zone_settings: dict[str, ZoneSettings]
    pressure_loggers: dict[str, int]
    notes: list[str]

    def above_target(self) -> list[str]:
        """Zones whose whole-period share is above the target."""
        return [r.zone for r in self.totals if r.above_target]

    def to_dict(self) -> dict[str, object]:
        return {"target_pct": self.target_pct, "utc_offset_h": self.utc_offset_h, "bucket_s": self.step_s,
                "zones_above_target": self.above_target(),
                "zone_settings": {z: {**s.model_dump(mode="json"), "pressure_loggers": self.pressure_loggers[z]}
                                  for z, s in self.zone_settings.items()},
                "totals": [r.to_dict() for r in self.totals], "weeks": [r.to_dict() for r in self.weeks],
                "days": [d.to_dict() for d in self.days], "notes": self.notes}


def account(series: dict[str, ZoneSeries], config: LeakageConfig, *, utc_offset_h: float,
            step_s: float) -> LeakageResult:
    """Daily, weekly and period leakage of every zone in `series`, with each zone's settings from `config`."""
    days: list[DayLeakage] = []
    used: dict[str, ZoneSettings] = {}
    loggers: dict[str, int] = {}
    notes: list[str] = []
    for zone, s in sorted(series.items()):
        zs = used[zone] = config.for_zone(zone)
        loggers[zone] = 0 if s.pressure_kpa is None else len(np.atleast_2d(s.pressure_kpa))
        if zs.night_use.method == "none":
            notes.append(f"{zone}: no legitimate night use configured, so its leakage is an upper bound")
        days += daily_leakage(s, zs, utc_offset_h=utc_offset_h, target_pct=config.target_pct)
    target = config.target_pct
    return LeakageResult(target, utc_offset_h, step_s, days, weekly(days, target), totals(days, target), used,
                         loggers, notes)
