"""`python -m bench.detection.ideal`: how well could *any* detector do on the suite's water leaks?

An ideal observer is handed what no real detector has: the zone's exact demand profile, the leak's start
time, its growth law and the simulator's noise model. Its evidence for a leak after a given time is the
matched-filter statistic d = sqrt(s' K^-1 s) of the leak's flow s against the noise covariance K. A
detector allowed b false alerts per zone-week alarms within a deadline T on leak-free data with
probability at most alpha = b T / week, and no test at that level detects with probability above
Phi(d - z_alpha) (Neyman-Pearson: the matched filter is the most powerful test of a known signal in
Gaussian noise). That bounds every rule that reads the zone's inflow (pressure is left out), so it tells a
target the data cannot reach from one the rules miss. The leak's flow is taken from its label; the
simulated leaks are emitters whose flow moves a little with pressure.

The noise is measured from the run's own leak-free inflow, except the day-to-day demand factor, whose
size and correlation time the scenario and the simulator state (`daily_sd`, one day):
- the profile E(t): per zone, the median quiet 30-minute inflow at that time of the week;
- white noise: per hour of day, from first differences of the 5-minute inflow less the profile;
- the demand factor: multiplicative, daily_sd * E(t), correlation exp(-|dt| / 1 day) (simulators/water_wntr/
  demands.py), which a known profile does not remove: it is the same for leak and no leak.

A burst is a step of `magnitude` times the zone's mean inflow from its start; a slow leak grows linearly
to its magnitude over its labelled duration. Both sizes are taken from the labels.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from bench.detection import scores, suite
from sentinel.events import LabelledEvent

STEP_S = 300  # the suite's sensor interval
SLOT_S = 1800  # profile and slow-leak grid
WEEK_S = 7 * 86400
PRE_ONSET_S = 48 * 3600  # quiet data before a slow leak that the observer also sees
NORMAL = NormalDist()
Z_POWER_80 = NORMAL.inv_cdf(0.8)
DEMAND_LEVEL_CORRELATION_S = 86400.0  # simulators/water_wntr/demands.py: demand_level's one-day OU process


@dataclass(frozen=True)
class ZoneNoise:
    """What the ideal observer knows about one zone's inflow."""

    profile: np.ndarray  # (336,) expected inflow per 30-minute slot of the local week, m3/h
    white_sd: np.ndarray  # (24,) white noise of a 5-minute reading per local hour of day, m3/h
    daily_sd: float  # relative size of the day-to-day demand factor
    tau_s: float  # its correlation time
    utc_offset_s: int

    @property
    def mean(self) -> float:
        return float(self.profile.mean())

    def local_s(self, t_ns: np.ndarray | int) -> np.ndarray:
        """Local seconds since 1970 (the profile and the noise follow local time)."""
        return np.asarray(t_ns, dtype=np.int64) // 1_000_000_000 + self.utc_offset_s

    def hour(self, t_ns: np.ndarray | int) -> np.ndarray:
        return (self.local_s(t_ns) % 86400) // 3600

    def expected(self, t_ns: np.ndarray, shift_s: int = 0) -> np.ndarray:
        """The profile at `t_ns` + `shift_s`, interpolated between the 30-minute slots' middles."""
        centres = np.arange(len(self.profile)) * SLOT_S + SLOT_S / 2
        return np.interp((self.local_s(t_ns) + shift_s) % WEEK_S, centres, self.profile, period=WEEK_S)


def phi(x: float) -> float:
    return NORMAL.cdf(x)


def z_of(alpha: float) -> float:
    """One-sided normal quantile: the evidence a test needs to keep its false alarms at alpha."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    return NORMAL.inv_cdf(1 - alpha)


def measure_noise(time_ns: np.ndarray, inflow: np.ndarray, quiet: np.ndarray, *, daily_sd: float, tau_s: float,
                  utc_offset_s: int) -> ZoneNoise:
    """Profile and white noise of one zone from its 5-minute inflow (`quiet` marks leak-free readings)."""
    ok = quiet & ~np.isnan(inflow)
    if ok.sum() < 2 * WEEK_S // STEP_S // 3:
        raise ValueError("too little quiet data to learn a weekly profile (need about two thirds of a week)")
    proto = ZoneNoise(np.zeros(336), np.zeros(24), daily_sd, tau_s, utc_offset_s)
    slot = (proto.local_s(time_ns) % WEEK_S) // SLOT_S
    # 30-minute means first (6 readings), then the median over the weeks of each slot
    block = time_ns // (SLOT_S * 1_000_000_000)
    _, first, inv = np.unique(block, return_index=True, return_inverse=True)
    sums = np.bincount(inv, weights=np.where(ok, inflow, 0.0))
    counts = np.bincount(inv, weights=ok.astype(float))
    means = np.where(counts >= 4, sums / np.maximum(counts, 1), np.nan)
    block_slot = slot[first]
    profile = np.array([np.nanmedian(means[block_slot == s]) if np.isfinite(means[block_slot == s]).any()
                        else np.nan for s in range(336)])
    if np.isnan(profile).any():  # a slot never quiet: take its neighbours' (the profile is smooth)
        idx = np.arange(336)
        good = ~np.isnan(profile)
        profile = np.interp(idx, idx[good], profile[good], period=336)
    # white noise: first differences of the reading less the profile (interpolated to the reading's time)
    resid = inflow - ZoneNoise(profile, proto.white_sd, daily_sd, tau_s, utc_offset_s).expected(time_ns)
    step_ok = ok[1:] & ok[:-1] & (np.diff(time_ns) == STEP_S * 1_000_000_000)
    diff = np.diff(resid)[step_ok]
    hours = proto.hour(time_ns[1:][step_ok])
    white = np.array([1.4826 * np.median(np.abs(diff[hours == h] - np.median(diff[hours == h]))) / math.sqrt(2)
                      if (hours == h).sum() >= 12 else np.nan for h in range(24)])
    white = np.where(np.isnan(white), np.nanmedian(white), white)
    return ZoneNoise(profile, white, daily_sd, tau_s, utc_offset_s)


def matched_filter(noise: ZoneNoise, start_ns: int, signal: np.ndarray, step_s: int, pre_s: int) -> float:
    """d = sqrt(s' K^-1 s) for `signal` (m3/h, one value per `step_s` mean from `start_ns` on) seen with
    `pre_s` of quiet data before it: the demand factor is unknown to the observer, so it must be told
    apart from the leak by its correlation (and estimated from the data before the leak)."""
    n_pre = pre_s // step_s
    k = np.arange(-n_pre, len(signal))
    t_ns = start_ns + k * step_s * 1_000_000_000
    e = noise.expected(t_ns, step_s // 2)  # at the middle of each mean
    s = np.concatenate([np.zeros(n_pre), signal])
    mid_s = (k + 0.5) * step_s
    cov = noise.daily_sd**2 * np.outer(e, e) * np.exp(-np.abs(mid_s[:, None] - mid_s[None, :]) / noise.tau_s)
    white = noise.white_sd[noise.hour(t_ns)] / math.sqrt(step_s / STEP_S)
    cov[np.diag_indices_from(cov)] += white**2
    return float(math.sqrt(s @ np.linalg.solve(cov, s)))


def burst_evidence(noise: ZoneNoise, start_ns: int, magnitude: float, *, readings: int = 3) -> float:
    """d after `readings` 5-minute readings of a step of magnitude * mean inflow, with six hours before."""
    return matched_filter(noise, start_ns, np.full(readings, magnitude * noise.mean), STEP_S, 6 * 3600)


def slow_leak_evidence(noise: ZoneNoise, start_ns: int, magnitude: float, duration_s: float,
                       horizon_s: float) -> float:
    """d after `horizon_s` of a leak growing linearly to magnitude * mean inflow over `duration_s`, seen on
    30-minute means with `PRE_ONSET_S` of quiet data before it."""
    since_s = (np.arange(max(1, int(horizon_s // SLOT_S))) + 0.5) * SLOT_S
    signal = magnitude * noise.mean * np.minimum(since_s / duration_s, 1.0)
    return matched_filter(noise, start_ns, signal, SLOT_S, PRE_ONSET_S)


def z_for(budget: float, window_s: float) -> float:
    """The evidence a detector needs to alarm at all within `window_s` of leak-free data no more often than
    `budget` false alerts per zone-week allow: the probability of such an alarm is at most budget times
    the window's share of a week, and no test at that level is more powerful than the matched filter."""
    return z_of(min(0.5, budget * window_s / WEEK_S))


def hours_to_detect(noise: ZoneNoise, event: LabelledEvent, budget: float, *, power: float = Z_POWER_80,
                    limit_h: int = 168) -> float | None:
    """Whole hours until the ideal observer detects this slow leak with 80 % probability within the
    false-alert `budget` (None: not before `limit_h` or the leak's end)."""
    duration = (event.end_ns - event.start_ns) / 1e9
    for h in range(1, min(limit_h, int(duration // 3600)) + 1):
        d = slow_leak_evidence(noise, event.start_ns, event.magnitude or 0.0, duration, h * 3600.0)
        if d >= z_for(budget, h * 3600.0) + power:
            return float(h)
    return None


@dataclass(frozen=True)
class Bound:
    case: str
    event: LabelledEvent
    evidence: float  # d at the target's deadline
    probability: float  # upper bound of the chance to detect by the deadline
    oracle_h: float | None  # slow leaks: hours to 80 % detection


BURST_DEADLINE_S = 15 * 60
SLOW_LEAK_DEADLINE_S = 48 * 3600


def bounds_for_case(case: suite.Case, *, budget: float, simulators: str) -> list[Bound]:
    from ingest.replay import read_replay
    from sentinel.catalog import load_catalog
    from sentinel.events import load_events

    directory, _ = suite.simulated(case, simulators=simulators)
    catalog = load_catalog(directory / "catalog.csv")
    events = load_events(directory / "events.csv")
    anomalies = load_events(directory / "anomalies.csv") if (directory / "anomalies.csv").exists() else []
    doc = suite.scenario_doc(case.scenario)
    offset_s = int(float(doc.get("utc_offset_h", 0)) * 3600)
    daily_sd = float((doc.get("demand") or {}).get("daily_sd", 0.03))
    b = read_replay(directory / "readings.csv", catalog).batch
    start = int(b.time_ns.min()) // (STEP_S * 10**9) * STEP_S * 10**9
    steps = int((int(b.time_ns.max()) - start) // (STEP_S * 10**9)) + 1
    grid = start + np.arange(steps, dtype=np.int64) * STEP_S * 10**9
    flows = scores.zone_inflows(catalog, b.sensor, b.time_ns, b.value, start_ns=start, step_ns=STEP_S * 10**9,
                                steps=steps)
    out = []
    for zkey, inflow in flows.items():
        network, zone = zkey.split("/", 1)
        quiet = np.ones(steps, dtype=bool)
        for e in [*events, *anomalies]:
            if e.network == network and (e.zone == zone or e.kind == "holiday"):  # a holiday is city-wide
                quiet &= ~((grid >= e.start_ns) & (grid < e.end_ns + 86400 * 10**9))
        noise = measure_noise(grid, inflow, quiet, daily_sd=daily_sd, tau_s=DEMAND_LEVEL_CORRELATION_S,
                              utc_offset_s=offset_s)
        for e in events:
            if (e.network, e.zone) != (network, zone) or e.magnitude is None:
                continue
            if e.kind == "burst":
                d = burst_evidence(noise, e.start_ns, e.magnitude, readings=BURST_DEADLINE_S // STEP_S)
                out.append(Bound(case.label, e, d, phi(d - z_for(budget, BURST_DEADLINE_S)), None))
            elif e.kind == "slow_leak":
                duration = (e.end_ns - e.start_ns) / 1e9
                d = slow_leak_evidence(noise, e.start_ns, e.magnitude, duration, SLOW_LEAK_DEADLINE_S)
                out.append(Bound(case.label, e, d, phi(d - z_for(budget, SLOW_LEAK_DEADLINE_S)),
                                 hours_to_detect(noise, e, budget)))
    return out


def needed(share: float, events: int) -> int:
    """Events a target of `share` asks for out of `events` (80 % of 8 is 7)."""
    return math.ceil(share * events - 1e-9)


def chance_at_least(probabilities: Sequence[float], share: float) -> float:
    """Chance that independent detections with these probabilities reach `share` of the events: how
    likely the ideal observer is to meet a target on these very runs."""
    dist = np.array([1.0])
    for p in probabilities:
        dist = np.convolve(dist, [1.0 - p, p])
    return float(dist[needed(share, len(probabilities)):].sum())


def render(bounds: Sequence[Bound], *, budget: float) -> str:
    lines = [f"Ideal observer of the zone's inflow (knows the profile, the leak's start and growth; "
             f"{budget:g} false alerts per zone-week per kind: evidence needed by the deadline z "
             f"{z_for(budget, BURST_DEADLINE_S):.2f} for bursts, {z_for(budget, SLOW_LEAK_DEADLINE_S):.2f} "
             "for slow leaks)", "",
             "| kind | size | events | d at deadline (median, min-max) | detectable by the deadline, at most | "
             "oracle hours to 80 % (median, max) |", "|---|---|---|---|---|---|"]
    for kind, deadline in (("burst", "15 min"), ("slow_leak", "48 h")):
        for size in ("small", "medium", "large"):
            rows = [b for b in bounds if b.event.kind == kind and scores.size_of(b.event) == size]
            if not rows:
                continue
            d = np.array([b.evidence for b in rows])
            p = np.mean([b.probability for b in rows])
            hours = [b.oracle_h for b in rows if b.oracle_h is not None]
            oracle = (f"{np.median(hours):.0f} h, {max(hours):.0f} h" if hours and kind == "slow_leak" else "")
            if kind == "slow_leak" and len(hours) < len(rows):
                oracle += f" ({len(rows) - len(hours)} never)"
            lines.append(f"| {kind} ({deadline}) | {size} | {len(rows)} | {np.median(d):.1f} ({d.min():.1f}-"
                         f"{d.max():.1f}) | {p:.0%} | {oracle} |")
        rows = [b for b in bounds if b.event.kind == kind]
        if rows:
            lines.append(f"| {kind} ({deadline}) | all | {len(rows)} | | "
                         f"{np.mean([b.probability for b in rows]):.0%} | |")
    lines.append("")
    for target in scores.TARGETS:
        probs = [b.probability for b in bounds if b.event.kind == target.kind]
        if probs:
            lines.append(f"Chance the ideal observer meets \"{target.what}: at least {target.share:.0%}\" on these "
                         f"runs (at least {needed(target.share, len(probs))} of {len(probs)}): "
                         f"{chance_at_least(probs, target.share):.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.detection.ideal", description=__doc__.splitlines()[0])
    ap.add_argument("--dev", action="store_true", help="the development seeds")
    ap.add_argument("--budget", type=float, default=0.25,
                    help="false alerts per zone-week each test may spend (default 0.25: a quarter of the target)")
    args = ap.parse_args(argv)
    sim = suite.simulator_digest()
    bounds: list[Bound] = []
    for case in suite.cases(dev=args.dev):
        if suite.scenario_doc(case.scenario).get("engine") != "wntr":
            continue
        print(f"  {case.label}", file=sys.stderr, flush=True)
        bounds += bounds_for_case(case, budget=args.budget, simulators=sim)
    print(render(bounds, budget=args.budget))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
