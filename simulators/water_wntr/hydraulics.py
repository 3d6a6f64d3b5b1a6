"""Hydraulics with EPANET 2.2 (through WNTR's toolkit binding), stepped so settings can change mid-run.

The .inp carries the network and its time grid; demand patterns (one per node, thousands of values
each) are handed to the toolkit after loading, which is several times faster than printing them into
the .inp. Everything that switches on and off (leak emitters, pump speeds, valve settings, throttling,
source heads) is applied through the toolkit at its time step, so one run covers a whole scenario
instead of one run per event. Results come from EPANET's binary output (all nodes and links, float32),
converted to m, m3/h.

EPANET holds each state for a whole hydraulic step (patterns are stepwise), so a reading between two
states sees the earlier one. Once an emitter is switched off, EPANET 2.2 keeps reporting its last flow
in the node's demand (the hydraulics are right, the report is stale), so the demand of every node that
had a leak is recomputed from continuity: what its links bring in minus what they take away.
"""

from __future__ import annotations

import ctypes
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import wntr
from wntr.epanet.io import BinFile
from wntr.epanet.toolkit import ENepanet
from wntr.epanet.util import EN

from sentinel.progress import Progress

OFF = 0.0  # an emitter coefficient that is off
EN_EMITTER, EN_ELEVATION = int(EN.EMITTER), int(EN.ELEVATION)
EN_MINORLOSS, EN_SETTING = int(EN.MINORLOSS), int(EN.SETTING)


@dataclass(frozen=True)
class Action:
    """Set a toolkit value (EN code, .inp units: m3/h, m) from hydraulic step `step` on."""

    step: int
    element: Literal["node", "link"]
    name: str
    code: int
    value: float


@dataclass(frozen=True)
class Hydraulics:
    """One state per hydraulic step: pressure (m; tanks: level), demand incl. leaks and flow (m3/h)."""

    step_s: float
    nodes: tuple[str, ...]
    links: tuple[str, ...]
    pressure: np.ndarray  # (steps, nodes)
    demand: np.ndarray  # (steps, nodes)
    flow: np.ndarray  # (steps, links), positive from start to end node

    def node(self, name: str) -> int:
        return self.nodes.index(name)

    def link(self, name: str) -> int:
        return self.links.index(name)

    def node_cols(self, names: Sequence[str]) -> np.ndarray:
        pos = {n: i for i, n in enumerate(self.nodes)}
        return np.array([pos[n] for n in names], dtype=np.int64)

    @property
    def steps(self) -> int:
        return self.pressure.shape[0]

    def fix_demands(self, wn: wntr.network.WaterNetworkModel, nodes: Sequence[str]) -> None:
        """Replace the reported demand of `nodes` by their net inflow (see the module docstring)."""
        for node in set(nodes):
            net = np.zeros(self.steps)
            for name in wn.get_links_for_node(node):
                link = wn.get_link(name)
                net += self.flow[:, self.link(name)] * (1.0 if link.end_node_name == node else -1.0)
            self.demand[:, self.node(node)] = net


def configure(wn: wntr.network.WaterNetworkModel, steps: int, step_s: float, required_m: float,
              minimum_m: float) -> None:
    """Time grid (one report per step) and pressure-dependent demand, so a big leak cannot drive
    demands through negative pressures."""
    t = wn.options.time
    t.duration = int((steps - 1) * step_s)
    t.hydraulic_timestep = t.pattern_timestep = t.report_timestep = int(step_s)
    t.report_start = t.pattern_start = 0
    t.start_clocktime = 0
    wn.options.quality.parameter = "NONE"
    h = wn.options.hydraulic
    h.demand_model = "PDD"
    h.required_pressure = required_m
    h.minimum_pressure = minimum_m
    h.pressure_exponent = 0.5
    h.emitter_exponent = 0.5


def write_inp(wn: wntr.network.WaterNetworkModel, path: Path) -> None:
    """Always in m3/h and metres, the units the toolkit then takes settings in."""
    wntr.network.write_inpfile(wn, str(path), units="CMH", version=2.2)


def set_patterns(en: ENepanet, patterns: Mapping[str, np.ndarray]) -> None:
    """Replace the multipliers of patterns the .inp declares (placeholders there) in one call each."""
    lib, project = en.ENlib, en._project
    index = ctypes.c_int()
    for name, values in patterns.items():
        en.errcode = lib.EN_getpatternindex(project, name.encode("latin-1"), ctypes.byref(index))
        en._error()
        arr = np.ascontiguousarray(values, dtype=np.float64)
        en.errcode = lib.EN_setpattern(project, index.value, arr.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
                                       len(arr))
        en._error()


def _solve(en: ENepanet, acts: Sequence[Action], patterns: Mapping[str, np.ndarray], progress: Progress
           ) -> tuple[int, int]:
    """Step the opened project through its period; results go to its binary output. (step, duration)."""
    set_patterns(en, patterns)
    step = en.ENgettimeparam(int(EN.HYDSTEP))
    duration = en.ENgettimeparam(int(EN.DURATION))
    nodes: dict[str, int] = {}
    links: dict[str, int] = {}
    en.ENopenH()
    en.ENinitH(11)
    t, i = 0, 0
    while True:
        while i < len(acts) and acts[i].step * step <= t:
            a = acts[i]
            if a.element == "node":
                idx = nodes.setdefault(a.name, en.ENgetnodeindex(a.name))
                en.ENsetnodevalue(idx, a.code, a.value)
            else:
                idx = links.setdefault(a.name, en.ENgetlinkindex(a.name))
                en.ENsetlinkvalue(idx, a.code, a.value)
            i += 1
        en.ENrunH()
        dt = en.ENnextH()
        t += dt
        progress.update(min(t, duration) // step + 1, duration // step + 1, f"steps, {t / 86400:.2f} d simulated")
        if dt <= 0:
            break
    en.ENcloseH()
    en.ENsaveH()
    progress.done(f"{(duration + step) / 86400:.2f} days of hydraulics")
    return step, duration


def run(inp: Path, actions: Sequence[Action] = (), *, patterns: Mapping[str, np.ndarray] | None = None,
        label: str = "hydraulics", show_progress: bool = False) -> Hydraulics:
    """Run EPANET over the .inp's period with these patterns, applying each action before its step."""
    acts = sorted(actions, key=lambda a: a.step)
    with tempfile.TemporaryDirectory(prefix="sentinel-wntr-") as tmp:
        rpt, out = str(Path(tmp) / "run.rpt"), str(Path(tmp) / "run.bin")
        en = ENepanet(version=2.2)
        en.ENopen(str(inp), rpt, out)
        try:
            step, duration = _solve(en, acts, patterns or {}, Progress(label, enabled=show_progress))
        except BaseException:
            en.ENclose()
            raise
        en.ENclose()
        res = BinFile().read(out)
    pressure = res.node["pressure"]
    flow = res.link["flowrate"]
    if len(pressure) != duration // step + 1:
        raise RuntimeError(f"EPANET stopped after {len(pressure)} of {duration // step + 1} hydraulic steps "
                           "(see its warnings above)")
    return Hydraulics(float(step), tuple(pressure.columns), tuple(flow.columns),
                      pressure.to_numpy(np.float64), res.node["demand"].to_numpy(np.float64) * 3600.0,
                      flow.to_numpy(np.float64) * 3600.0)
