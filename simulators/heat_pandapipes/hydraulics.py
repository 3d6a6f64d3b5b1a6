"""Steady-state heating hydraulics per step with pandapipes, then our thermal model on its flows.

Each step: substations pass their controlled flows, everyday seepage leaves spread over the circuit,
leaks leave through their orifice at the local pressure, the plant's supply header sits at (holding
pressure + pump lift) and its return header at the holding pressure. The holding pressure comes from a
pressure-controlled make-up system with a proportional band: p_hold = hold·(1 - sag) - band·q_mu/q_rated,
where q_mu is the make-up flow (seepage + leaks + thermal contraction). Leaks larger than the rated
make-up would empty the circuit, which no steady state describes, so scenarios refuse them.

Trusted from pandapipes: pressures and flows (incompressible steady state, friction, heights, the
mass the plant must replace = its headers' imbalance). Not used: its temperatures (thermal.py says why).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandapipes as pp
from pandapipes.pf.pipeflow_setup import PipeflowNotConverged

from simulators.heat_pandapipes.loads import Loads
from simulators.heat_pandapipes.network import HeatNetwork
from simulators.heat_pandapipes.scenario import HeatScenario
from simulators.heat_pandapipes.thermal import ThermalModel, ThermalState
from simulators.physics import SmoothNoise, rng_for
from simulators.pipes_common import Leak, Planned, run_steps, settle

CD = 0.61
COLD_DENSITY = 999.7  # kg/m3 at 10 degC: the make-up meter measures cold treated water


def orifice_m3h(p_gauge_kpa: np.ndarray, area_m2: np.ndarray, density: np.ndarray) -> np.ndarray:
    """Water through a hole in a buried pipe: Cd·A·sqrt(2·p/rho), p the gauge pressure inside."""
    return CD * area_m2 * np.sqrt(2 * np.maximum(p_gauge_kpa, 0.0) * 1e3 / density) * 3600.0


def rated_makeup_m3h(sc: HeatScenario, volume_m3: float) -> float:
    return max(sc.plant.makeup_rated_per_h * volume_m3, sc.plant.makeup_min_m3h)


@dataclass
class HeatHydraulics:
    """One steady state per step: pressures gauge kPa, flows m3/h, temperatures degC."""

    watch: list[int]
    p_kpa: np.ndarray  # (steps, watch)
    quiet_kpa: np.ndarray  # (steps, watch): the same step without its leaks
    t_c: np.ndarray  # (steps, watch)
    end_return_c: np.ndarray  # (steps, substations): each substation's return outlet
    hold_kpa: np.ndarray  # (steps, circuits)
    circulation_m3h: np.ndarray  # (steps, circuits): supply header flow at supply temperature
    makeup_m3h: np.ndarray  # (steps, circuits): cold water the make-up system feeds
    lost_kg_s: np.ndarray  # (steps, circuits): pandapipes' header imbalance (= seepage + leaks)
    leak_m3h: np.ndarray  # (steps, leaks): network water lost through each hole
    leak_cold_m3h: np.ndarray  # (steps, leaks): the same mass as cold make-up water
    energy_w: np.ndarray  # (steps, 4): plant output, substations, pipe losses, enthalpy lost with water
    runs: np.ndarray

    def at(self, junction: int, quiet: bool = False) -> np.ndarray:
        return (self.quiet_kpa if quiet else self.p_kpa)[:, self.watch.index(junction)]

    def temperature(self, junction: int) -> np.ndarray:
        return self.t_c[:, self.watch.index(junction)]


class _Stepper:
    def __init__(self, sc: HeatScenario, hn: HeatNetwork, loads: Loads, leaks: list[Leak], sags: list[Planned],
                 model: ThermalModel) -> None:
        self.sc, self.hn, self.loads, self.leaks, self.model = sc, hn, loads, leaks, model
        net = self.net = hn.net.deepcopy()
        self.fluid = net.fluid
        t = np.arange(sc.steps) * sc.step
        span = sc.span_s + sc.step
        seep_rows = []
        seep = []
        for c in hn.circuits:
            inner = [j for j in c.junctions if j not in (c.supply_plant, c.return_plant)]
            base = sc.plant.seepage_per_h * c.volume_m3 * COLD_DENSITY / 3600.0  # kg/s
            wobble = 1 + SmoothNoise.draw(rng_for(sc.seed, "seepage", c.name), span, 3600.0, 0.1)(t)
            seep.append(np.maximum(base * wobble, 0.0))
            seep_rows.append([pp.create_sink(net, j, 0.0, name="seepage", type="seepage") for j in inner])
        self.seep_kg_s, self.seep_rows = np.stack(seep, axis=1), seep_rows
        self.leak_rows = [pp.create_sink(net, leak.junction, 0.0, name="leak", type="leak") for leak in leaks]
        self.leak_rho = np.array([float(np.ravel(self.fluid.get_density(net.junction.tfluid_k[leak.junction]))[0])
                                  for leak in leaks])
        self.area = np.array([leak.area_m2 for leak in leaks])
        self.opening = np.array([leak.plan.opening(t, sc.step) for leak in leaks]).T.reshape(sc.steps, len(leaks))
        self.sag = np.zeros((sc.steps, len(hn.circuits)))
        names = [c.name for c in hn.circuits]
        for p in sags:
            assert p.magnitude is not None
            self.sag[:, names.index(p.zone)] += p.magnitude * p.active(t)
        self.rated = np.array([rated_makeup_m3h(sc, c.volume_m3) for c in hn.circuits])
        ends = [j for c in hn.circuits for i in c.ends for j in (int(net.heat_consumer.from_junction[i]),
                                                                  int(net.heat_consumer.to_junction[i]))]
        self.watch = sorted({*(c.supply_plant for c in hn.circuits), *(c.return_plant for c in hn.circuits),
                             *ends, *(leak.junction for leak in leaks)})
        self.leak_col = [self.watch.index(leak.junction) for leak in leaks]
        self.pos: np.ndarray | None = None
        self.sink_rows = np.concatenate([np.concatenate(seep_rows), self.leak_rows]).astype(int)

    def _makeup(self, k: int, q_leak: np.ndarray) -> np.ndarray:
        """Cold m3/h each circuit's make-up feeds: seepage + leaks (as mass) + thermal contraction."""
        lost = self.seep_kg_s[k].copy()
        for leak, q, rho in zip(self.leaks, q_leak, self.leak_rho, strict=True):
            lost[leak.zone] += q * rho / 3600.0
        return lost * 3600.0 / COLD_DENSITY + self.loads.contraction_m3h[k]

    def run(self, k: int, q_leak: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One pandapipes solve at step k with the given leak flows: (watched p, holding p per circuit)."""
        net, sc = self.net, self.sc
        hold = sc.plant.hold_kpa * (1 - self.sag[k]) - sc.plant.band_kpa * self._makeup(k, q_leak) / self.rated
        for c, h in zip(self.hn.circuits, hold, strict=True):
            net.ext_grid.loc[c.supply_ext, "p_bar"] = (h + c.lift_kpa) / 100.0
            net.ext_grid.loc[c.return_ext, "p_bar"] = h / 100.0
        seep = np.concatenate([np.full(len(rows), self.seep_kg_s[k, i] / max(len(rows), 1))
                               for i, rows in enumerate(self.seep_rows)])
        net.sink.loc[self.sink_rows, "mdot_kg_per_s"] = np.concatenate([seep, q_leak * self.leak_rho / 3600.0])
        try:
            pp.pipeflow(net, mode="hydraulics")
        except PipeflowNotConverged as exc:
            raise RuntimeError(f"pandapipes did not converge at step {k} "
                               f"(leaks {q_leak.round(2).tolist()} m3/h)") from exc
        if self.pos is None:
            self.pos = net.res_junction.index.get_indexer(self.watch)
        return net.res_junction.p_bar.to_numpy()[self.pos] * 100.0, hold

    def leak_flow(self, k: int, p: np.ndarray) -> np.ndarray:
        return orifice_m3h(p[self.leak_col], self.area * self.opening[k], self.leak_rho)

    def thermal(self, k: int) -> tuple[ThermalState, np.ndarray, np.ndarray]:
        net, hn = self.net, self.hn
        eg = net.res_ext_grid.mdot_kg_per_s
        m_sup = np.array([-float(eg[c.supply_ext]) for c in hn.circuits])
        m_ret = np.array([float(eg[c.return_ext]) for c in hn.circuits])
        sinks = [(int(j), float(m)) for j, m in zip(net.sink.junction.to_numpy(), net.sink.mdot_kg_per_s.to_numpy(),
                                                   strict=True) if m > 0]
        ld, m_pipe = self.loads, net.res_pipe.mdot_from_kg_per_s.to_numpy()
        m_valve = net.res_valve.mdot_from_kg_per_s.to_numpy()
        state = self.model.solve(m_pipe, m_valve, ld.mdot[k], ld.heat_w[k], ld.supply_c[k], sinks, m_sup, m_ret)
        return state, m_sup, m_sup - m_ret

    def step(self, k: int) -> dict[str, np.ndarray | int]:
        """Step k's state, keyed by the HeatHydraulics field it fills."""
        hc = self.net.heat_consumer
        hc["controlled_mdot_kg_per_s"] = self.loads.mdot[k]
        hc["qext_w"] = self.loads.heat_w[k]
        none = np.zeros(len(self.leaks))
        quiet, hold = self.run(k, none)
        q, runs, p = none, 1, quiet
        if self.leaks and self.opening[k].any():
            (p, hold), q, n = settle(lambda q: self.run(k, q), lambda s: self.leak_flow(k, s[0]),
                                     self.leak_flow(k, quiet))
            runs += n
        state, m_sup, lost = self.thermal(k)
        rho_s = np.array([float(np.ravel(self.fluid.get_density(273.15 + t))[0]) for t in self.loads.supply_c[k]])
        temps = np.array([self.model.at(state, j) for j in self.watch])
        energy = np.array([state.plant_w, state.consumers_w, state.losses_w, state.lost_water_w])
        return {"p_kpa": p, "quiet_kpa": quiet, "t_c": temps, "end_return_c": state.consumer_out_c,
                "hold_kpa": hold, "circulation_m3h": m_sup / rho_s * 3600.0, "makeup_m3h": self._makeup(k, q),
                "lost_kg_s": lost, "leak_m3h": q, "leak_cold_m3h": q * self.leak_rho / COLD_DENSITY,
                "energy_w": energy, "runs": runs}


def simulate(sc: HeatScenario, hn: HeatNetwork, loads: Loads, leaks: list[Leak], sags: list[Planned],
             show_progress: bool = False) -> tuple[HeatHydraulics, _Stepper]:
    """Every step's steady state, computed ahead, with our temperatures on pandapipes' flows."""
    stepper = _Stepper(sc, hn, loads, leaks, sags, ThermalModel(sc, hn))
    states = run_steps(sc.steps, stepper.step, "heat hydraulics (pandapipes)", show_progress)
    cols = {name: np.array([s[name] for s in states]) for name in states[0]}
    for name in ("leak_m3h", "leak_cold_m3h"):
        cols[name] = cols[name].reshape(sc.steps, len(leaks))
    return HeatHydraulics(stepper.watch, **cols), stepper
