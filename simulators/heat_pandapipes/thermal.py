"""Temperatures in a heating circuit from pandapipes' mass flows: our own steady-state model, and an
audit of pandapipes' thermal solution that says why we do not use it.

Model (per step, one sparse linear solve over all junctions):
  * pipe, flow m from node u:    T_out = T_soil + (T_u - T_soil)·exp(-lambda·L / (m·cp))
    (lambda: linear heat-loss coefficient of the pre-insulated pipe, W/(m K), grows with the bore)
  * valve:                       T_out = T_u
  * substation (flow-controlled): T_out = T_u - Q / (m·cp)    (it takes exactly its heat demand Q)
  * junction:                    mass-weighted mix of what flows in; no inflow -> soil temperature
  * supply header:               the plant's supply temperature (fixed)
Water leaving through a leak or seepage takes its junction's temperature with it. With one constant cp
the energy balance closes to solver precision: plant output = substations + pipe losses + enthalpy lost
with the water (checked in the tests). Physical bounds follow: every temperature lies between the soil
and the supply temperature, a substation's return below its supply.

Why not pandapipes' thermal solution: the make-up system has to be an external grid (see network.py),
and with external grids on both headers pandapipes 0.16 (modes "sequential" and "bidirectional")
leaves the whole return side at the ambient temperature of its options and reports NaN substation
inlet temperatures, so its energy balance misses by most of the plant's output, with or without a leak
(`audit_pandapipes` measures this on the run's own network). Closed by its own circulation pump (no
mass exchange) its thermal solution is sound, but that configuration cannot lose water: a leak makes
its hydraulics diverge. So pandapipes does the hydraulics, this model the temperatures, and
`closed_loop_check` solves a leak-free step both ways as a cross-check (return headers agree within a
few hundredths of a kelvin, substation returns within ~0.4 K, pipe-loss shares to 0.1 %; the
difference is pandapipes' temperature-dependent cp). Both results travel in HeatSimResult.audit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandapipes as pp
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from simulators.heat_pandapipes.network import CP, HeatNetwork
from simulators.heat_pandapipes.scenario import HeatScenario

TINY_KG_S = 1e-9


@dataclass(frozen=True)
class ThermalState:
    t_c: np.ndarray  # per node (ThermalModel.nodes order)
    consumer_out_c: np.ndarray  # per substation: its return outlet temperature
    plant_w: float  # heat the plants put in: sum of m_supply·cp·T_supply - m_return·cp·T_return_header
    consumers_w: float
    losses_w: float
    lost_water_w: float  # enthalpy leaving with leaks and seepage


class ThermalModel:
    """The network's fixed structure, compiled once; `solve` per step."""

    def __init__(self, sc: HeatScenario, hn: HeatNetwork) -> None:
        net = hn.net
        self.nodes = np.array(sorted(int(j) for j in net.junction.index[net.junction.in_service.astype(bool)]))
        self.pos = {int(j): i for i, j in enumerate(self.nodes)}
        self.soil = sc.pipes.soil_c
        pipe = net.pipe
        self.p_from = self._at(pipe.from_junction)
        self.p_to = self._at(pipe.to_junction)
        loss = sc.pipes.loss_base_w_mk + sc.pipes.loss_per_mm_w_mk * pipe.inner_diameter_mm.to_numpy()
        self.p_ua = loss * pipe.length_km.to_numpy() * 1000.0  # W/K per pipe
        self.v_from = self._at(net.valve.junction)
        self.v_to = self._at(net.valve.element)
        hc = net.heat_consumer
        self.c_from = self._at(hc.from_junction)
        self.c_to = self._at(hc.to_junction)
        self.fixed = np.array([self.pos[c.supply_plant] for c in hn.circuits])
        self.returns = np.array([self.pos[c.return_plant] for c in hn.circuits])

    def _at(self, col) -> np.ndarray:
        return np.array([self.pos.get(int(j), -1) for j in col], dtype=np.int64)

    def solve(self, m_pipe: np.ndarray, m_valve: np.ndarray, m_cons: np.ndarray, q_cons: np.ndarray,
              supply_c: np.ndarray, sinks: list[tuple[int, float]], m_supply: np.ndarray,
              m_return: np.ndarray) -> ThermalState:
        """Temperatures for one step. Flows are signed from->to (kg/s); `sinks` (node, kg/s) are water
        leaving the network; m_supply/m_return: what each plant's headers pass (kg/s, >= 0)."""
        n = len(self.nodes)
        up, down, m, coef, const = [], [], [], [], []
        branches = ((self.p_from, self.p_to, m_pipe, self._pipe_a), (self.v_from, self.v_to, m_valve, None))
        for f, t, flow, a_of in branches:
            live = (f >= 0) & (t >= 0) & (np.abs(flow) > TINY_KG_S)
            fwd = flow[live] > 0
            u, d, mm = np.where(fwd, f[live], t[live]), np.where(fwd, t[live], f[live]), np.abs(flow[live])
            a = a_of(mm, live) if a_of is not None else np.ones_like(mm)
            up.append(u), down.append(d), m.append(mm), coef.append(mm * a), const.append(mm * (1 - a) * self.soil)
        cons = m_cons > TINY_KG_S
        up.append(self.c_from[cons]), down.append(self.c_to[cons]), m.append(m_cons[cons])
        coef.append(m_cons[cons]), const.append(-q_cons[cons] / CP)
        up_a, down_a, m_a = np.concatenate(up), np.concatenate(down), np.concatenate(m)
        coef_a, const_a = np.concatenate(coef), np.concatenate(const)
        inflow = np.bincount(down_a, weights=m_a, minlength=n)
        free = inflow > TINY_KG_S
        free[self.fixed] = False
        rows = np.concatenate([np.arange(n), down_a[free[down_a]]])
        cols = np.concatenate([np.arange(n), up_a[free[down_a]]])
        vals = np.concatenate([np.where(free, inflow, 1.0), -coef_a[free[down_a]]])
        rhs = np.where(free, 0.0, self.soil)
        rhs[self.fixed] = supply_c
        np.add.at(rhs, down_a[free[down_a]], const_a[free[down_a]])
        t_c = spla.spsolve(sp.csr_matrix((vals, (rows, cols)), shape=(n, n)), rhs)
        pipe_live = (self.p_from >= 0) & (self.p_to >= 0) & (np.abs(m_pipe) > TINY_KG_S)
        pu = np.where(m_pipe > 0, self.p_from, self.p_to)[pipe_live]
        pm = np.abs(m_pipe[pipe_live])
        losses = float(np.sum(pm * CP * (1 - self._pipe_a(pm, pipe_live)) * (t_c[pu] - self.soil)))
        out_c = np.where(cons, t_c[self.c_from] - q_cons / (CP * np.maximum(m_cons, TINY_KG_S)), t_c[self.c_to])
        lost = sum(CP * q * t_c[self.pos[j]] for j, q in sinks)
        plant = float(np.sum(CP * (m_supply * supply_c - m_return * t_c[self.returns])))
        return ThermalState(t_c, out_c, plant, float(q_cons[cons].sum()), losses, float(lost))

    def _pipe_a(self, m: np.ndarray, live: np.ndarray) -> np.ndarray:
        return np.exp(-self.p_ua[live] / (m * CP))

    def at(self, state: ThermalState, junction: int) -> float:
        return float(state.t_c[self.pos[junction]])


def audit_pandapipes(net: pp.pandapipesNet, hn: HeatNetwork, model: ThermalModel, ours: ThermalState,
                     supply_c: np.ndarray) -> dict:
    """Run pandapipes' own thermal solution on `net` as last solved and compare it with ours (`ours`):
    temperatures outside [soil, supply], NaN temperatures, return-header temperatures and the energy
    balance (plant output vs substations + enthalpy lost with water; the rest must be pipe losses)."""
    for c, ts in zip(hn.circuits, supply_c, strict=True):
        net.ext_grid.loc[c.supply_ext, "t_k"] = 273.15 + float(ts)
    try:
        pp.pipeflow(net, mode="sequential")
    except Exception as exc:  # an audit reports, it does not fail the run
        return {"converged": False, "error": str(exc)}
    live = net.junction.in_service.astype(bool)
    t = net.res_junction.t_k[live].to_numpy() - 273.15
    hi = float(np.max(supply_c)) + 0.5
    ret = [float(net.res_junction.t_k[c.return_plant]) - 273.15 for c in hn.circuits]
    eg = net.res_ext_grid.mdot_kg_per_s
    plant = sum(CP * (-float(eg[c.supply_ext]) * float(ts) - float(eg[c.return_ext]) * r)
                for c, ts, r in zip(hn.circuits, supply_c, ret, strict=True))
    sinks = sum(CP * float(m) * float(net.res_junction.t_k[j] - 273.15)
                for j, m in zip(net.sink.junction, net.sink.mdot_kg_per_s, strict=True)) if len(net.sink) else 0.0
    delivered = float(net.heat_consumer.qext_w[net.heat_consumer.in_service.astype(bool)].sum())
    unexplained = (plant - delivered - sinks) / plant if plant else math.nan
    return {
        "converged": True,
        "junction_temps_nan": int(np.isnan(t).sum()),
        "junction_temps_outside_bounds": int(np.sum((t < model.soil - 0.5) | (t > hi))),
        "substation_inlet_nan": int(net.res_heat_consumer.t_from_k.isna().sum()),
        "return_header_c": [round(r, 2) for r in ret],
        "our_return_header_c": [round(float(ours.t_c[i]), 2) for i in model.returns],
        "pipe_loss_share": round(unexplained, 4),  # pandapipes: what its balance leaves for pipe losses
        "our_pipe_loss_share": round(ours.losses_w / ours.plant_w, 4) if ours.plant_w else math.nan,
    }


def closed_loop_check(net: pp.pandapipesNet, hn: HeatNetwork, model: ThermalModel, ours: ThermalState,
                      supply_c: np.ndarray) -> dict:
    """Where pandapipes' thermal solution is sound - each circuit closed by its own circulation pump, no
    water lost - solve the same step's flows and heat demands with it and compare with our model: the
    cross-check of our temperatures. Only meaningful for a step without leaks (`net` as last solved)."""
    net = net.deepcopy()
    lost = float(net.sink.mdot_kg_per_s.sum()) if len(net.sink) else 0.0
    net.sink["mdot_kg_per_s"] = 0.0
    for c, ts in zip(hn.circuits, supply_c, strict=True):
        p_hold = float(net.ext_grid.p_bar[c.return_ext])
        pp.create_circ_pump_const_pressure(net, c.return_plant, c.supply_plant, p_hold + c.lift_kpa / 100.0,
                                           c.lift_kpa / 100.0, t_flow_k=273.15 + float(ts))
    net.ext_grid.drop(net.ext_grid.index, inplace=True)
    net.user_pf_options["ambient_temperature"] = 273.15 + model.soil
    try:
        pp.pipeflow(net, mode="sequential")
    except Exception as exc:  # a check reports, it does not fail the run
        return {"converged": False, "error": str(exc)}
    rows = net.heat_consumer.index
    theirs = net.res_heat_consumer.t_to_k.to_numpy() - 273.15
    mine = np.array([ours.consumer_out_c[i] for i in range(len(rows))])
    pump = float(net.res_circ_pump_pressure.qext_w.sum())
    return {
        "converged": True,
        "water_ignored_kg_s": round(lost, 4),  # seepage left out: the closed loop cannot lose water
        "return_header_c": [round(float(net.res_junction.t_k[c.return_plant]) - 273.15, 2) for c in hn.circuits],
        "our_return_header_c": [round(float(ours.t_c[i]), 2) for i in model.returns],
        "substation_return_max_abs_diff_k": round(float(np.nanmax(np.abs(theirs - mine))), 3),
        "pipe_loss_share": round((pump - ours.consumers_w) / pump, 4),
        "our_pipe_loss_share": round(ours.losses_w / ours.plant_w, 4),
    }
