"""What an event physically does to the network, as toolkit settings held over its window.

- burst / slow leak: an emitter at the leaking junction, q = C * sqrt(p); a burst switches C on
  at once, an incipient leak ramps C up step by step (BattLeDIM's incipient leaks grow the same way);
  C is sized so the leak reaches its target flow at the node's design-day pressure.
- low pressure: the DMA's inlet valves partly closed (a minor loss on inlet pipes giving the
  target head loss at design flow), PRV set-points lowered, pumps slowed.
- pressure surge: what feeds the DMA pushes harder: PRV set-points raised, pump speeds raised,
  reservoir (source) heads raised. EPANET is quasi-steady: this is the over-pressure that an
  operation holds for minutes, not the seconds-long water hammer of a pump trip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simulators.water_wntr.hydraulics import EN_ELEVATION, EN_EMITTER, EN_MINORLOSS, EN_SETTING, OFF, Action
from simulators.water_wntr.site import Site

G = 9.81
NO_LOSS = 1e-6  # EPANET 2.2 refuses a minor loss of exactly 0 through the toolkit
_PRESSURE_VALVES = ("PRV", "PSV", "PBV")


@dataclass(frozen=True)
class Setting:
    """A toolkit value held from the event's first step to its end, then restored."""

    element: str  # node | link
    name: str
    code: int
    during: float
    after: float
    what: str  # for the label's description


def emitter_for(site: Site, node: str, flow_m3h: float) -> float:
    """Emitter coefficient (m3/h per sqrt(m)) giving `flow_m3h` at the node's design-day pressure."""
    p = float(site.design.pressure[:, site.design.node(node)].mean())
    return flow_m3h / math.sqrt(max(p, 1.0))


def leak_actions(node: str, coeff: float, k0: int, k1: int, steps: int, ramp: bool) -> list[Action]:
    """Emitter on at k0 (or growing linearly to `coeff` by the last step of the window), off at k1."""
    if ramp:
        acts = [Action(k, "node", node, EN_EMITTER, coeff * (k - k0 + 1) / (k1 - k0))
                for k in range(k0, min(k1, steps))]
    else:
        acts = [Action(k0, "node", node, EN_EMITTER, coeff)]
    if k1 < steps:
        acts.append(Action(k1, "node", node, EN_EMITTER, OFF))
    return acts


def setting_actions(settings: list[Setting], k0: int, k1: int, steps: int) -> list[Action]:
    acts = [Action(k0, s.element, s.name, s.code, s.during) for s in settings]  # type: ignore[arg-type]
    if k1 < steps:
        acts += [Action(k1, s.element, s.name, s.code, s.after) for s in settings]  # type: ignore[arg-type]
    return acts


def throttle(site: Site, zone: str, fraction: float) -> list[Setting]:
    """Settings that cut the zone's pressure by about `fraction` at its inlets."""
    d = site.district(zone)
    head = fraction * site.mean_pressure(d.nodes)
    out: list[Setting] = []
    for m in d.inlets():
        link = site.wn.get_link(m.link)
        kind = link.link_type
        if kind == "Pipe":
            q = abs(float(site.design.flow[:, site.design.link(m.link)].mean())) / 3600.0
            v = q / (math.pi * link.diameter**2 / 4)
            if v < 0.02:
                continue  # a pipe that carries (almost) nothing cannot throttle anything
            k = 2 * G * head / v**2
            out.append(Setting("link", m.link, EN_MINORLOSS, k, max(link.minor_loss, NO_LOSS),
                               f"valve on {m.link} partly closed (minor loss {k:.0f})"))
        elif kind == "Valve" and link.valve_type in _PRESSURE_VALVES:
            new = max(link.initial_setting - head, 0.0)
            out.append(Setting("link", m.link, EN_SETTING, new, link.initial_setting,
                               f"{m.link} set-point {link.initial_setting:g} -> {new:.1f} m"))
        elif kind == "Pump":
            speed = math.sqrt(max(1.0 - fraction, 0.1))
            out.append(Setting("link", m.link, EN_SETTING, speed, link.base_speed,
                               f"{m.link} slowed to {speed:.2f} of its speed"))
    return out


def feeders(site: Site, zone: str) -> tuple[list[str], list[str], list[str]]:
    """(reservoirs, pressure valves, pumps) that set the zone's pressure: reached from its junctions
    through pipes only, so anything behind a PRV or a tank does not count."""
    wn = site.wn
    seen = set(site.district(zone).nodes)
    todo = list(seen)
    reservoirs: set[str] = set()
    while todo:
        node = todo.pop()
        for name in wn.get_links_for_node(node):
            link = wn.get_link(name)
            if link.link_type != "Pipe" or str(link.initial_status).lower() == "closed":
                continue
            other = link.end_node_name if link.start_node_name == node else link.start_node_name
            kind = wn.get_node(other).node_type
            if kind == "Reservoir":
                reservoirs.add(other)
            elif kind == "Junction" and other not in seen:
                seen.add(other)
                todo.append(other)
    valves = [v for v in wn.valve_name_list if wn.get_link(v).valve_type in _PRESSURE_VALVES
              and wn.get_link(v).end_node_name in seen]
    pumps = [p for p in wn.pump_name_list if wn.get_link(p).end_node_name in seen]
    return sorted(reservoirs), valves, pumps


def boost(site: Site, zone: str, fraction: float) -> list[Setting]:
    """Settings that raise the zone's pressure by about `fraction`, at whatever feeds it."""
    head = fraction * site.mean_pressure(site.district(zone).nodes)
    reservoirs, valves, pumps = feeders(site, zone)
    out: list[Setting] = []
    for r in reservoirs:
        h0 = site.wn.get_node(r).base_head
        out.append(Setting("node", r, EN_ELEVATION, h0 + head, h0, f"source {r} head {h0:g} -> {h0 + head:.1f} m"))
    for v in valves:
        s0 = site.wn.get_link(v).initial_setting
        out.append(Setting("link", v, EN_SETTING, s0 + head, s0, f"{v} set-point {s0:g} -> {s0 + head:.1f} m"))
    for p in pumps:
        speed = math.sqrt(1.0 + fraction)
        out.append(Setting("link", p, EN_SETTING, speed, site.wn.get_link(p).base_speed,
                           f"{p} speed raised to {speed:.2f}"))
    return out


def leak_flow(pressure: np.ndarray, coeff: np.ndarray) -> np.ndarray:
    """Emitter outflow (m3/h) for per-step coefficients and node pressures (m)."""
    return coeff * np.sqrt(np.clip(pressure, 0.0, None))
