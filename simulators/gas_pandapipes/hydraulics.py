"""Steady-state gas hydraulics per step with pandapipes: houses draw their demand, each district's
regulator holds its outlet pressure (set point, sag, droop, wander), leaks draw what their orifice lets
out at the pressure the network gives them.

Trusted from pandapipes: pressures and flows of the compressible steady state (Newton on the full
network, real-gas density and compressibility of its hgas model, Colebrook-style friction). Not
modelled: line pack and transients (each step is a steady state, so a leak's pressure response is
instantaneous at the step it opens) and regulator dynamics beyond the droop below.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandapipes as pp
from pandapipes.pf.pipeflow_setup import PipeflowNotConverged

from simulators.gas_pandapipes.network import GasNetwork
from simulators.gas_pandapipes.scenario import GasScenario
from simulators.physics import SmoothNoise, rng_for
from simulators.pipes_common import Leak, Planned, run_steps, settle

R = 8.314462618  # J/(mol K)
GAMMA = 1.31  # heat capacity ratio of natural gas
CD = 0.61  # discharge coefficient of a sharp-edged hole


@dataclass(frozen=True)
class GasProps:
    molar_mass: float  # kg/mol
    normal_density: float  # kg/Nm3 (0 degC, 101.325 kPa)
    temperature_k: float

    @classmethod
    def of(cls, net: pp.pandapipesNet, temperature_c: float) -> GasProps:
        fluid = net.fluid
        return cls(float(np.ravel(fluid.get_molar_mass())[0]) / 1000.0, float(np.ravel(fluid.get_density(273.15))[0]),
                   273.15 + temperature_c)


def ambient_kpa(height_m: float) -> float:
    """Barometric pressure at the junction's height (standard atmosphere)."""
    return 101.325 * (1 - 2.25577e-5 * height_m) ** 5.25588


def orifice_m3h(p_gauge_kpa: np.ndarray, p_amb_kpa: np.ndarray, area_m2: np.ndarray, gas: GasProps) -> np.ndarray:
    """Isentropic flow of gas through a hole (Nm3/h): choked (sonic) when the pipe holds more than ~1.84x
    the outside pressure, as every medium-pressure leak does, subsonic below that."""
    p0 = (np.maximum(p_gauge_kpa, 0.0) + p_amb_kpa) * 1e3
    r = np.minimum(p_amb_kpa * 1e3 / p0, 1.0)
    g = GAMMA
    r_crit = (2 / (g + 1)) ** (g / (g - 1))
    mrt = gas.molar_mass / (R * gas.temperature_k)
    choked = np.sqrt(g * mrt * (2 / (g + 1)) ** ((g + 1) / (g - 1)))
    sub = np.sqrt(np.maximum(2 * g / (g - 1) * mrt * (r ** (2 / g) - r ** ((g + 1) / g)), 0.0))
    mdot = CD * area_m2 * p0 * np.where(r <= r_crit, choked, sub)
    return mdot * 3600.0 / gas.normal_density


@dataclass
class GasHydraulics:
    """One steady state per step. Pressures are gauge kPa, flows Nm3/h."""

    watch: list[int]  # junctions whose pressure is kept: regulators, end loggers, leak sites
    p_kpa: np.ndarray  # (steps, watch)
    outlet_kpa: np.ndarray  # (steps, districts): each regulator's outlet pressure
    inflow_m3h: np.ndarray  # (steps, districts): through each regulator (= houses + leaks)
    demand_m3h: np.ndarray  # (steps, districts): houses only
    leak_m3h: np.ndarray  # (steps, leaks)
    quiet_kpa: np.ndarray  # (steps, watch): the same step without its leaks (the counterfactual)
    runs: np.ndarray  # (steps,) pandapipes solves per step (more than one while a leak settles)

    def pressure(self, junction: int) -> np.ndarray:
        return self.p_kpa[:, self.watch.index(junction)]


class _Stepper:
    def __init__(self, sc: GasScenario, gn: GasNetwork, demand: np.ndarray, leaks: list[Leak],
                 sags: list[Planned], gas: GasProps) -> None:
        self.sc, self.gn, self.leaks, self.gas = sc, gn, leaks, gas
        net = self.net = gn.net.deepcopy()
        self.houses = len(net.sink)
        for leak in leaks:
            pp.create_sink(net, leak.junction, 0.0, name=f"leak@{leak.junction}", type="leak")
        t_k = 273.15 + sc.gas_temperature_c
        for d in gn.districts:
            pp.create_ext_grid(net, d.regulator, sc.regulators.set_kpa / 100.0, t_k, name=f"regulator {d.name}")
        t = np.arange(sc.steps) * sc.step
        self.opening = np.array([leak.plan.opening(t, sc.step) for leak in leaks]).T.reshape(sc.steps, len(leaks))
        cols = {label: i for i, label in enumerate(net.sink.index[: self.houses])}
        self.demand = demand
        self.district_demand = np.stack([demand[:, [cols[s] for s in d.sinks]].sum(axis=1) for d in gn.districts],
                                        axis=1)
        self.q_ref = 2.0 * self.district_demand.mean(axis=0)
        reg = sc.regulators
        self.base_kpa = np.stack([
            reg.set_kpa + SmoothNoise.draw(rng_for(sc.seed, "regulator", d.name), sc.span_s + sc.step, 3600.0,
                                           reg.wobble_kpa)(t) for d in gn.districts], axis=1)
        for p in sags:
            assert p.magnitude is not None
            i = [d.name for d in gn.districts].index(p.zone)
            self.base_kpa[:, i] -= reg.set_kpa * p.magnitude * p.active(t)
        self.watch = sorted({*(d.regulator for d in gn.districts), *(j for d in gn.districts for j in d.ends),
                             *(leak.junction for leak in leaks)})
        self.pos: np.ndarray | None = None
        heights = net.junction.height_m
        self.leak_amb = np.array([ambient_kpa(float(heights[leak.junction])) for leak in leaks])
        self.leak_col = [self.watch.index(leak.junction) for leak in leaks]
        self.area = np.array([leak.area_m2 for leak in leaks])

    def run(self, k: int, q_leak: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One pandapipes solve at step k with the given leak flows: (watched p, outlet p, inflow)."""
        net, gas = self.net, self.gas
        per_district = self.district_demand[k].copy()
        for leak, q in zip(self.leaks, q_leak, strict=True):
            per_district[leak.zone] += q
        outlet = self.base_kpa[k] - self.sc.regulators.droop_kpa * per_district / self.q_ref
        net.sink["mdot_kg_per_s"] = np.concatenate([self.demand[k], q_leak]) * gas.normal_density / 3600.0
        net.ext_grid["p_bar"] = outlet / 100.0
        try:
            pp.pipeflow(net, mode="hydraulics")
        except PipeflowNotConverged as exc:
            raise RuntimeError(f"pandapipes did not converge at step {k} (leaks {q_leak.round(1).tolist()} Nm3/h); "
                               "a hole that large empties the district: use a smaller hole_mm") from exc
        if self.pos is None:
            self.pos = net.res_junction.index.get_indexer(self.watch)
        p = net.res_junction.p_bar.to_numpy()[self.pos] * 100.0
        inflow = -net.res_ext_grid.mdot_kg_per_s.to_numpy() * 3600.0 / gas.normal_density
        return p, outlet, inflow

    def leak_flow(self, k: int, p_at_leaks: np.ndarray) -> np.ndarray:
        return orifice_m3h(p_at_leaks, self.leak_amb, self.area * self.opening[k], self.gas)

    def step(self, k: int) -> dict[str, np.ndarray | int]:
        """Step k's state, keyed by the GasHydraulics field it fills."""
        q = np.zeros(len(self.leaks))
        quiet, outlet, inflow = self.run(k, q)
        p, runs = quiet, 1
        if self.leaks and self.opening[k].any():
            (p, outlet, inflow), q, n = settle(lambda q: self.run(k, q),
                                               lambda s: self.leak_flow(k, s[0][self.leak_col]),
                                               self.leak_flow(k, quiet[self.leak_col]))
            runs += n
        return {"p_kpa": p, "outlet_kpa": outlet, "inflow_m3h": inflow, "leak_m3h": q, "quiet_kpa": quiet,
                "runs": runs}


def simulate(sc: GasScenario, gn: GasNetwork, demand: np.ndarray, leaks: list[Leak], sags: list[Planned],
             gas: GasProps, show_progress: bool = False) -> GasHydraulics:
    """Every step's steady state, computed ahead; leak flows settled against their own pressure drop."""
    stepper = _Stepper(sc, gn, demand, leaks, sags, gas)
    states = run_steps(sc.steps, stepper.step, "gas hydraulics (pandapipes)", show_progress)
    cols = {name: np.array([s[name] for s in states]) for name in states[0]}
    cols["leak_m3h"] = cols["leak_m3h"].reshape(sc.steps, len(leaks))
    return GasHydraulics(stepper.watch, demand_m3h=stepper.district_demand, **cols)
