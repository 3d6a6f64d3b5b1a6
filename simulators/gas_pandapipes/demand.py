"""House gas demand per hydraulic step: the mean from each house's annual consumption, shaped by the
daily/weekly cooking-and-heating pattern the synthetic generator uses, a district-wide day-to-day and
half-hourly factor, and each house's own lognormal randomness (one burner more or less)."""

from __future__ import annotations

import numpy as np

from simulators.gas_pandapipes.network import GasNetwork
from simulators.gas_pandapipes.scenario import GasScenario
from simulators.physics import DAY, LocalClock, SmoothNoise, gas_pattern, rng_for

HOURS_PER_YEAR = 8760.0


def mean_demand_m3h(gn: GasNetwork, normal_density: float) -> np.ndarray:
    """Each house's mean draw (Nm3/h) in sink order: its annual consumption if the network gives one,
    else the sink's design mass flow."""
    sink = gn.net.sink
    if "demand_m3_per_a" in sink and sink.demand_m3_per_a.notna().all():
        return sink.demand_m3_per_a.to_numpy(dtype=np.float64) / HOURS_PER_YEAR
    return sink.mdot_kg_per_s.to_numpy(dtype=np.float64) * 3600.0 / normal_density


def house_demand(sc: GasScenario, gn: GasNetwork, normal_density: float) -> np.ndarray:
    """(steps, houses) Nm3/h at each step's midpoint; houses in net.sink row order."""
    t = (np.arange(sc.steps) + 0.5) * sc.step
    clock = LocalClock(float(sc.start.timestamp()), sc.utc_offset_h)
    shape = gas_pattern(clock.hour(t), clock.weekend(t))
    mean = mean_demand_m3h(gn, normal_density) * sc.demand.multiplier
    out = np.empty((sc.steps, len(mean)))
    row = {label: i for i, label in enumerate(gn.net.sink.index)}
    span = sc.span_s + sc.step
    for d in gn.districts:
        rng = rng_for(sc.seed, "demand", d.name)
        factor = (1 + SmoothNoise.draw(rng, span, DAY, sc.demand.daily_sd)(t)) * (
            1 + SmoothNoise.draw(rng, span, 1800.0, sc.demand.fine_sd)(t))
        cols = [row[s] for s in d.sinks]
        out[:, cols] = (shape * factor)[:, None] * mean[cols][None, :]
    sd = sc.demand.house_sd
    z = rng_for(sc.seed, "houses").standard_normal(out.shape)
    return out * np.exp(sd * z - 0.5 * sd * sd)
