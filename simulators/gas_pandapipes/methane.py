"""Methane in underground spaces (manholes, valve chambers, utility tunnels) next to a leaking main.

Model, per space s at trench distance d_s from a leak (the scenario's `dispersion` holds every number):

    G_s(t) = capture · exp(-d_s / L) · k_s · q_leak(t - d_s / v)       gas entering the space, Nm3/h
    V_s · dc_s/dt = G_s - (G_s + Q_s) · c_s                            c_s: volume fraction of methane
    %LEL = 2000 · c_s                                                   (LEL = 5 %vol)

Gas from a buried leak spreads mostly along the trench's permeable backfill, so d_s is measured along
the pipes (the physical layout, closed district valves included); L is the e-folding length of that
migration and v the speed of its front, so a space 20 m away sees gas about 10 minutes after the leak
opens. k_s is a lognormal factor per space (how well its walls and cable ducts connect it to the
soil). The space is one well-mixed volume V_s whose air is exchanged Q_s = V_s · air_changes_per_h
an hour (vent holes, forced ventilation in tunnels); inflowing gas displaces air, so c stays below 1
and the equation is linear for small G, where c -> G/Q. With G piecewise constant on a 10 s grid the
equation is integrated exactly (exponential update); after the last leak stops, c decays as
exp(-Q_s t / V_s). Detectors read the result plus their own background (sewer/swamp gas), noise,
and saturate at 100 %LEL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simulators.gas_pandapipes.scenario import Dispersion
from simulators.pipes_common import held

DT = 10.0  # s, integration grid
LEL_PER_FRACTION = 2000.0


@dataclass(frozen=True)
class Spaces:
    """The monitored spaces, in catalog order."""

    sensor_ids: list[str]
    districts: list[str]
    junctions: list[int]
    volume_m3: np.ndarray
    vent_m3h: np.ndarray
    connectivity: np.ndarray


def inflow(t: np.ndarray, q_leak_m3h: np.ndarray, step_s: float, dist_m: np.ndarray, disp: Dispersion,
           connectivity: np.ndarray) -> np.ndarray:
    """(times, spaces) Nm3/h of methane entering each space from one leak (per-step flows)."""
    q = held(q_leak_m3h, step_s)
    reach = np.where(np.isfinite(dist_m), disp.capture_fraction * np.exp(-np.where(np.isfinite(dist_m), dist_m, 0.0)
                                                                         / disp.decay_length_m), 0.0)
    delay = np.where(np.isfinite(dist_m), dist_m, 0.0) / (disp.migration_m_per_min / 60.0)
    out = np.zeros((len(t), len(dist_m)))
    for s in np.flatnonzero(reach * connectivity > 1e-12):
        shifted = t - delay[s]
        out[:, s] = np.where(shifted >= 0, q(np.maximum(shifted, 0.0)), 0.0) * reach[s] * connectivity[s]
    return out


def integrate(g: np.ndarray, volume: np.ndarray, vent: np.ndarray) -> np.ndarray:
    """Volume fractions at the grid times for inflows g (times, spaces) held over each DT interval."""
    c = np.zeros_like(g)
    busy = g.any(axis=1)
    if not busy.any():
        return c
    dt_h = DT / 3600.0
    decay = np.exp(-vent / volume * dt_h)
    state = np.zeros(g.shape[1])
    i = int(np.flatnonzero(busy)[0])
    n = len(g)
    while i < n - 1:
        if busy[i]:
            gi = g[i]
            ceq = gi / (gi + vent)
            state = ceq + (state - ceq) * np.exp(-(gi + vent) / volume * dt_h)
            c[i + 1] = state
            i += 1
            continue
        nxt = np.flatnonzero(busy[i:])  # quiet stretch: closed-form decay until the next inflow
        stop = i + int(nxt[0]) if len(nxt) else n - 1
        m = np.arange(1, stop - i + 1)
        c[i + 1: stop + 1] = state[None, :] * decay[None, :] ** m[:, None]
        state = c[stop].copy()
        i = stop
    return c


def concentrations(span_s: float, step_s: float, leaks: list[tuple[np.ndarray, np.ndarray]], spaces: Spaces,
                   disp: Dispersion) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """(grid times, %LEL of all leaks together, %LEL of each leak alone) for `leaks` given as
    (per-step flow Nm3/h, trench distance to every space)."""
    t = np.arange(0.0, span_s + DT, DT)
    gs = [inflow(t, q, step_s, d, disp, spaces.connectivity) for q, d in leaks]
    total = integrate(sum(gs, np.zeros((len(t), len(spaces.sensor_ids)))), spaces.volume_m3, spaces.vent_m3h)
    alone = [integrate(g, spaces.volume_m3, spaces.vent_m3h) * LEL_PER_FRACTION for g in gs]
    return t, total * LEL_PER_FRACTION, alone


def vented_s(t: np.ndarray, lel: np.ndarray, after_s: float, below: float = 0.5) -> float:
    """First grid time >= after_s from which every space stays below `below` %LEL (inf if never)."""
    over = np.flatnonzero((lel >= below).any(axis=1))
    last = float(t[over[-1]]) + DT if len(over) else 0.0
    return max(after_s, last) if last <= t[-1] else math.inf
