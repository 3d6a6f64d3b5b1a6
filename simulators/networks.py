"""Zone models: the physical state of one DMA, heating loop or gas district as functions of time.

`measure(channel, number, t, z)` returns what a sensor on `channel` reads at times `t` (seconds from
the scenario start) in the canonical unit of its quantity, with `z` (standard normals, one per
reading) as its measurement noise. Zone-wide randomness comes from the zone's own generator, drawn
in a fixed order, so a zone's background never depends on the events injected into it.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from simulators.events import EventPlan
from simulators.layout import ZoneLayout
from simulators.physics import (
    DAY,
    LocalClock,
    SmoothNoise,
    gas_pattern,
    inside,
    ramp,
    surge_envelope,
    taper,
    water_pattern,
)
from simulators.scenario import GasSpec, HeatSpec, WaterSpec

KPA_PER_M = 9.80665


class ZoneModel(Protocol):
    def measure(self, channel: str, number: int, t: np.ndarray, z: np.ndarray) -> np.ndarray: ...

    def describe(self, plan: EventPlan) -> str: ...


class _Zone:
    """Shared event envelopes; subclasses say what each envelope does to their sensors."""

    def __init__(self, layout: ZoneLayout, plans: list[EventPlan], clock: LocalClock) -> None:
        self.layout, self.plans, self.clock = layout, plans, clock
        self.ids = layout.ids()

    def _of(self, kind: str) -> list[EventPlan]:
        return [p for p in self.plans if p.kind == kind]

    def sag(self, t: np.ndarray) -> np.ndarray:
        """Fractional pressure sag from low_pressure events (pump trip, regulator fault)."""
        out = np.zeros_like(t)
        for p in self._of("low_pressure"):
            assert p.start_s is not None and p.magnitude is not None
            shape = ramp(t, p.start_s, p.params["rise_s"]) * taper(t, p.end_s, p.params["fall_s"])
            out += p.magnitude * shape * inside(t, p.start_s, p.end_s)
        return out

    def surge(self, t: np.ndarray, number_in_layout: int, nominal: float) -> np.ndarray:
        """Pressure added by surges at one sensor, in the same unit as `nominal`."""
        out = np.zeros_like(t)
        sid = self.ids[number_in_layout]
        for p in self._of("pressure_surge"):
            assert p.start_s is not None and p.magnitude is not None
            if p.sensor_id is not None and p.sensor_id != sid:
                continue
            atten = 1.0 if p.sensor_id is not None else float(p.params["atten"][number_in_layout])
            out += p.magnitude * atten * nominal * surge_envelope(t, p.start_s, p.end_s, p.params["tau_s"],
                                                                  p.params["period_s"])
        return out

    def _slot(self, channel: str, number: int) -> int:
        return self.layout.channels.index((channel, number))

    def describe(self, plan: EventPlan) -> str:
        if plan.kind == "pressure_surge":
            where = plan.sensor_id or "the zone's pressure sensors"
            return f"pressure transient at {where}, peak +{plan.magnitude:.0%} of normal, oscillating decay"
        if plan.kind == "low_pressure":
            return f"pressures sag by {plan.magnitude:.0%} (pump trip / regulator fault), then recover"
        return plan.kind


class WaterZone(_Zone):
    """A DMA: inflow = demand + background leakage + leaks/bursts (+ water passed on to outlets);
    logger pressure = source head - elevation - headloss ~ inflow^2 (+ a local drop near a burst)."""

    def __init__(self, layout: ZoneLayout, plans: list[EventPlan], clock: LocalClock, spec: WaterSpec,
                 rng: np.random.Generator, span_s: float) -> None:
        super().__init__(layout, plans, clock)
        n_in = sum(1 for c, _ in layout.channels if c == "inlet")
        n_out = sum(1 for c, _ in layout.channels if c == "outlet")
        n_p = sum(1 for c, _ in layout.channels if c == "pressure")
        self.q_mean = float(rng.uniform(*spec.mean_flow_m3h))
        self.leak_frac = spec.leakage_fraction
        self.head = float(rng.uniform(*spec.source_head_m))
        shares = rng.uniform(0.6, 1.4, n_in)
        self.shares = shares / shares.sum()
        self.out_frac = float(rng.uniform(0.15, 0.35)) if n_out else 0.0
        self.hl = rng.uniform(2.0, 6.0, n_p)  # headloss (m) at mean inflow; ~3x that at the peak
        self.elev = rng.uniform(-4.0, 6.0, n_p)
        self.n_out = n_out
        self.daily = SmoothNoise.draw(rng, span_s, DAY, 0.05)  # day-to-day
        self.fine = SmoothNoise.draw(rng, span_s, 1800.0, 0.03)
        self.head_wobble = SmoothNoise.draw(rng, span_s, 3600.0, 0.3)  # tank level / pump control
        self.share_wobble = [SmoothNoise.draw(rng, span_s, 3 * 3600.0, 0.02) for _ in range(n_in)]
        self.out_noise = SmoothNoise.draw(rng, span_s, 1800.0, 0.05)
        self.q_through = self.q_mean * (1 + self.out_frac)
        p_xy = [xy for xy, (c, _) in zip(layout.xy_m, layout.channels, strict=True) if c == "pressure"]
        self.p_xy = np.array(p_xy).reshape(-1, 2)

    def demand(self, t: np.ndarray) -> np.ndarray:
        h, we = self.clock.hour(t), self.clock.weekend(t)
        pattern = water_pattern(h, we)
        # day-to-day swings are in daytime use; night use (and so the MNF baseline) is steadier
        return (self.q_mean * (1 - self.leak_frac) * pattern
                * (1 + self.daily(t) * np.minimum(pattern, 1.0)) * (1 + self.fine(t)))

    def _burst_q(self, p: EventPlan, t: np.ndarray) -> np.ndarray:
        """A burst opens within 1-2 minutes and flows until the main is shut for repair (label end)."""
        assert p.start_s is not None and p.magnitude is not None
        opening = ramp(t, p.start_s, p.params["ramp_s"])
        return p.magnitude * self.q_mean * opening * inside(t, p.start_s, p.end_s)

    def burst_flow(self, t: np.ndarray) -> np.ndarray:
        return sum((self._burst_q(p, t) for p in self._of("burst")), np.zeros_like(t))

    def leak_flow(self, t: np.ndarray) -> np.ndarray:
        """Slow leaks grow linearly from nothing at onset; repaired (gone) at the label end."""
        out = np.zeros_like(t)
        for p in self._of("slow_leak"):
            assert p.start_s is not None and p.magnitude is not None
            out += p.magnitude * self.q_mean * (t - p.start_s) / p.duration_s * inside(t, p.start_s, p.end_s)
        return out

    def outflow(self, t: np.ndarray) -> np.ndarray:
        if not self.n_out:
            return np.zeros_like(t)
        h, we = self.clock.hour(t - 1800.0), self.clock.weekend(t)
        return self.out_frac * self.q_mean * water_pattern(h, we) * (1 + self.out_noise(t))

    def net_inflow(self, t: np.ndarray) -> np.ndarray:
        """Water used or lost inside the zone: inlets minus outlets."""
        leakage = self.q_mean * self.leak_frac * (1 - self.sag(t)) ** 1.15  # leakage follows pressure
        return self.demand(t) + leakage + self.leak_flow(t) + self.burst_flow(t)

    def head_at(self, i: int, t: np.ndarray) -> np.ndarray:
        """Pressure head (m) at logger i."""
        q = self.net_inflow(t) + self.outflow(t)
        k = self.hl[i] / self.q_through**2
        head = self.head + self.head_wobble(t) - self.elev[i] - k * q**2
        for p in self._of("burst"):  # extra local drop: up to ~4 m at a logger next to a 25 % burst
            near = math.exp(-math.dist(self.p_xy[i], p.params["xy"]) / 400.0)
            head -= 4.0 * near * (self._burst_q(p, t) / (0.25 * self.q_mean)) ** 2
        nominal = self.head - self.elev[i] - self.hl[i]
        return head * (1 - self.sag(t)) + self.surge(t, self._slot("pressure", i), nominal)

    def measure(self, channel: str, number: int, t: np.ndarray, z: np.ndarray) -> np.ndarray:
        if channel == "pressure":
            return (self.head_at(number, t) + 0.08 * z) * KPA_PER_M
        if channel == "inlet":
            total = self.net_inflow(t) + self.outflow(t)
            w = np.array([self.shares[j] * (1 + self.share_wobble[j](t)) for j in range(len(self.shares))])
            q = total * w[number] / w.sum(axis=0)
        else:  # outlet
            q = self.outflow(t) / self.n_out
        return np.maximum(q * (1 + 0.006 * z) + 0.05 * z, 0.0)

    def describe(self, plan: EventPlan) -> str:
        if plan.kind == "burst":
            assert plan.magnitude is not None
            x, y = plan.params["xy"]
            near = int(np.argmin(np.hypot(self.p_xy[:, 0] - x, self.p_xy[:, 1] - y)))
            sid = self.layout.ids("pressure")[near]
            return (f"burst of {plan.magnitude * self.q_mean:.1f} m3/h ({plan.magnitude:.0%} of mean net "
                    f"inflow {self.q_mean:.1f} m3/h) nearest {sid}; repaired at end")
        if plan.kind == "slow_leak":
            assert plan.magnitude is not None
            return (f"leak growing linearly to {plan.magnitude * self.q_mean:.1f} m3/h "
                    f"({plan.magnitude:.1%} of mean net inflow); repaired at end")
        return super().describe(plan)


class HeatZone(_Zone):
    """A heating loop: supply temperature follows a heating curve of the outdoor temperature, return is
    25-35 K cooler; make-up flow replaces what leaks out."""

    def __init__(self, layout: ZoneLayout, plans: list[EventPlan], clock: LocalClock, spec: HeatSpec,
                 rng: np.random.Generator, span_s: float) -> None:
        super().__init__(layout, plans, clock)
        self.t_mean = spec.outdoor_mean_c
        self.qc = float(rng.uniform(*spec.circulation_m3h))
        self.makeup_base = float(rng.uniform(*spec.makeup_m3h))
        self.ps0 = float(rng.uniform(600.0, 750.0))  # kPa
        self.pr0 = float(rng.uniform(250.0, 330.0))
        self.t_daily = SmoothNoise.draw(rng, span_s, DAY, 2.5)
        self.t_fine = SmoothNoise.draw(rng, span_s, 3600.0, 0.5)
        self.ts_noise = SmoothNoise.draw(rng, span_s, 1800.0, 0.6)
        self.dt_noise = SmoothNoise.draw(rng, span_s, 3600.0, 1.0)
        self.mu_noise = SmoothNoise.draw(rng, span_s, 1800.0, 0.12)
        self.p_wobble = SmoothNoise.draw(rng, span_s, 1800.0, 3.0)
        self.q_noise = SmoothNoise.draw(rng, span_s, 1800.0, 0.01)

    def outdoor(self, t: np.ndarray) -> np.ndarray:
        h = self.clock.hour(t)
        return self.t_mean + 4.5 * np.cos(2 * np.pi * (h - 14.5) / 24) + self.t_daily(t) + self.t_fine(t)

    def load(self, t: np.ndarray) -> np.ndarray:
        return (18.0 - self.outdoor(t)) / (18.0 - self.t_mean)

    def supply_temp(self, t: np.ndarray) -> np.ndarray:
        return np.clip(80.0 - 1.3 * (self.outdoor(t) - self.t_mean) + self.ts_noise(t), 70.0, 95.0)

    def _makeup_env(self, t: np.ndarray) -> list[tuple[float, np.ndarray]]:
        out = []
        for p in self._of("makeup_rise"):
            assert p.start_s is not None and p.magnitude is not None
            dt = np.maximum(t - p.start_s, 0.0)
            env = (1 - np.exp(-dt / p.params["tau_s"])) * taper(t, p.end_s, p.params["fall_s"])
            out.append((p.magnitude, env * inside(t, p.start_s, p.end_s)))
        return out

    def flow(self, t: np.ndarray) -> np.ndarray:
        return self.qc * (1 + 0.04 * (self.load(t) - 1) + self.q_noise(t)) * (1 - 0.5 * self.sag(t))

    def pressure(self, channel: str, t: np.ndarray) -> np.ndarray:
        leak_drop = sum((0.006 * (f - 1) * env for f, env in self._makeup_env(t)), np.zeros_like(t))
        scale = (1 - self.sag(t)) * (1 - leak_drop)
        slot = self._slot(channel, 0)
        if channel == "supply_p":
            base = self.ps0 - 25.0 * ((self.flow(t) / self.qc) ** 2 - 1) + self.p_wobble(t)
            return base * scale + self.surge(t, slot, self.ps0)
        return (self.pr0 + 0.5 * self.p_wobble(t)) * scale + self.surge(t, slot, self.pr0)

    def measure(self, channel: str, number: int, t: np.ndarray, z: np.ndarray) -> np.ndarray:
        if channel in ("supply_p", "return_p"):
            return self.pressure(channel, t) + 1.5 * z
        if channel == "supply_t":
            return self.supply_temp(t) + 0.12 * z
        if channel == "return_t":
            delta = np.clip(30.0 + 3.0 * (self.load(t) - 1) + self.dt_noise(t), 25.0, 35.0)
            return self.supply_temp(t) - delta + 0.12 * z
        if channel == "flow":
            return self.flow(t) * (1 + 0.005 * z)
        # make-up: small baseline, a little more when it is colder (pipes contract), plus leaks
        base = self.makeup_base * (1 + 0.1 * (self.load(t) - 1) + self.mu_noise(t))
        extra = sum((self.makeup_base * (f - 1) * env for f, env in self._makeup_env(t)), np.zeros_like(t))
        return np.maximum(base + extra + 0.04 * self.makeup_base * z, 0.0)

    def describe(self, plan: EventPlan) -> str:
        if plan.kind == "makeup_rise":
            return (f"make-up flow rises to {plan.magnitude:g}x its baseline {self.makeup_base:.2f} m3/h "
                    f"(network leak), slight pressure loss; repaired at end")
        return super().describe(plan)


class GasZone(_Zone):
    """A gas district: regulator station pressure droops with demand; manholes read 0-2 %LEL of methane."""

    def __init__(self, layout: ZoneLayout, plans: list[EventPlan], clock: LocalClock, spec: GasSpec,
                 rng: np.random.Generator, span_s: float) -> None:
        super().__init__(layout, plans, clock)
        n_m = sum(1 for c, _ in layout.channels if c == "methane")
        self.q_mean = float(rng.uniform(*spec.station_flow_m3h))
        self.p_set = float(rng.uniform(*spec.station_pressure_kpa))
        self.droop = float(rng.uniform(3.0, 8.0))
        self.ch4_base = rng.uniform(0.2, 1.5, n_m)
        self.daily = SmoothNoise.draw(rng, span_s, DAY, 0.06)
        self.fine = SmoothNoise.draw(rng, span_s, 1800.0, 0.04)
        self.p_wobble = SmoothNoise.draw(rng, span_s, 3600.0, 0.6)
        self.ch4_wander = [SmoothNoise.draw(rng, span_s, 1800.0, 0.3) for _ in range(n_m)]

    def flow(self, t: np.ndarray) -> np.ndarray:
        h, we = self.clock.hour(t), self.clock.weekend(t)
        return self.q_mean * gas_pattern(h, we) * (1 + self.daily(t)) * (1 + self.fine(t))

    def gas_rise(self, t: np.ndarray, sensor_id: str) -> np.ndarray:
        out = np.zeros_like(t)
        for p in self._of("gas_rise"):
            if p.sensor_id != sensor_id:
                continue
            assert p.start_s is not None and p.magnitude is not None
            dt = np.maximum(t - p.start_s, 0.0)
            env = (1 - np.exp(-dt / p.params["tau_s"])) * taper(t, p.end_s, p.params["fall_s"])
            out += p.magnitude * env * (1 + p.params["flicker"](dt)) * inside(t, p.start_s, p.end_s)
        return out

    def measure(self, channel: str, number: int, t: np.ndarray, z: np.ndarray) -> np.ndarray:
        if channel == "station_p":
            p = self.p_set - self.droop * (self.flow(t) / self.q_mean) ** 2 + self.p_wobble(t)
            return p * (1 - self.sag(t)) + 0.3 * z
        if channel == "station_f":
            return self.flow(t) * (1 + 0.008 * z)
        sid = self.ids[self._slot("methane", number)]
        background = np.maximum(self.ch4_base[number] + self.ch4_wander[number](t), 0.0)
        return np.clip(background + self.gas_rise(t, sid) + 0.15 * z, 0.0, 100.0)

    def describe(self, plan: EventPlan) -> str:
        if plan.kind == "gas_rise":
            return f"methane at manhole {plan.sensor_id} rises within minutes to ~{plan.magnitude:g} %LEL"
        return super().describe(plan)
