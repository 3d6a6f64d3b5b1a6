"""Labels that say what actually happened, measured against the same run without events.

Descriptions carry the achieved numbers (leak flow, pressure change at the nearest logger), and an
operation that moves pressures in several DMAs (a source head raised upstream of all of them) is
labelled in every DMA whose loggers see a change of 2 m or more (and a tenth of the target's), so
alarms there are not counted as false ones.
"""

from __future__ import annotations

import numpy as np

from sentinel.events import LabelledEvent
from simulators.water_wntr.events import Plan
from simulators.water_wntr.hydraulics import Hydraulics
from simulators.water_wntr.operations import leak_flow
from simulators.water_wntr.site import Site

NS = 1_000_000_000


def window(p: Plan, h: Hydraulics) -> slice:
    return slice(int(p.start_s // h.step_s), max(int(p.start_s // h.step_s) + 1, min(int(p.end_s // h.step_s),
                                                                                     h.steps)))


def leak_coefficients(p: Plan, h: Hydraulics) -> np.ndarray:
    """The emitter coefficient in force at each step of the window."""
    w = window(p, h)
    n = w.stop - w.start
    if p.kind == "slow_leak":
        return p.emitter * np.arange(1, n + 1) / max(1, int(p.duration_s // h.step_s))
    return np.full(n, p.emitter)


def leak_series(p: Plan, h: Hydraulics) -> np.ndarray:
    """Leak outflow (m3/h) per step over the event's window."""
    return leak_flow(h.pressure[window(p, h), h.node(p.node or "")], leak_coefficients(p, h))


def zone_change(site: Site, zone: str, p: Plan, h: Hydraulics, quiet: Hydraulics) -> float:
    """Median over the DMA's junctions of the mean pressure change (m) during the event."""
    cols = h.node_cols(site.district(zone).nodes)
    w = window(p, h)
    return float(np.median((h.pressure[w][:, cols] - quiet.pressure[w][:, cols]).mean(axis=0)))


def _logger_change(site: Site, p: Plan, h: Hydraulics, quiet: Hydraulics, at_end: bool) -> tuple[str, float]:
    """(logger, change in m) for the zone's logger that moved most."""
    w = window(p, h)
    if at_end:
        w = slice(w.stop - 1, w.stop)
    best = ("", 0.0)
    for s, c in zip(site.sensors, site.channels, strict=True):
        if s.zone == p.zone and c.kind == "pressure":
            i = h.node(c.element)
            d = float((h.pressure[w, i] - quiet.pressure[w, i]).mean())
            if abs(d) > abs(best[1]):
                best = (s.sensor_id, d)
    return best


def describe(site: Site, p: Plan, h: Hydraulics, quiet: Hydraulics) -> str:
    if p.kind in ("burst", "slow_leak"):
        flow = leak_series(p, h)
        share = f"{p.magnitude:.0%} of {p.zone}'s mean demand" if p.magnitude is not None else ""
        if p.kind == "burst":
            logger, dp = _logger_change(site, p, h, quiet, at_end=False)
            return (f"{p.size or 'custom'} burst at junction {p.node}: leak {flow.mean():.1f} m3/h ({share}), "
                    f"{logger} {dp:+.1f} m")
        logger, dp = _logger_change(site, p, h, quiet, at_end=True)
        return (f"{p.size or 'custom'} incipient leak at junction {p.node} growing to {flow[-1]:.1f} m3/h "
                f"({share}) over {p.duration_s / 86400:.1f} d; {logger} {dp:+.1f} m at the end")
    if p.kind in ("low_pressure", "pressure_surge"):
        what = "; ".join(s.what for s in p.settings)
        return f"{what}: {p.zone} pressures {zone_change(site, p.zone, p, h, quiet):+.1f} m"
    if p.kind == "sensor_stuck":
        return f"{p.sensor_id} repeats {p.magnitude:g} (frozen transmitter)"
    if p.kind == "sensor_dropout":
        return f"{p.sensor_id} sends nothing (battery / comms failure)"
    quantity = next(s for s in site.sensors if s.sensor_id == p.sensor_id).quantity
    unit = {"pressure": "kPa", "flow": "m3/h"}.get(quantity, "m")
    if p.kind == "sensor_drift":
        return f"{p.sensor_id} drifts linearly to {p.magnitude:+g} {unit} (calibration drift)"
    return f"{p.sensor_id} reads {p.magnitude:+g} {unit} off (offset after maintenance)"


def logger_change(site: Site, zone: str, p: Plan, h: Hydraulics, quiet: Hydraulics) -> float:
    """Largest mean pressure change (m, absolute) the zone's loggers see during the event."""
    w = window(p, h)
    cols = h.node_cols([c.element for s, c in zip(site.sensors, site.channels, strict=True)
                        if s.zone == zone and c.kind == "pressure"])
    if not len(cols):
        return 0.0
    return float(np.abs((h.pressure[w][:, cols] - quiet.pressure[w][:, cols]).mean(axis=0)).max())


def affected_zones(site: Site, p: Plan, h: Hydraulics, quiet: Hydraulics) -> list[str]:
    """The target DMA, plus others whose loggers an operation moves by 2 m (and a tenth as much) or more."""
    if p.kind not in ("low_pressure", "pressure_surge"):
        return [p.zone]
    own = logger_change(site, p.zone, p, h, quiet)
    others = [d.name for d in site.districts if d.name != p.zone
              and logger_change(site, d.name, p, h, quiet) >= max(0.1 * own, 2.0)]
    return [p.zone, *others]


def label(event_id: str, zone: str, p: Plan, start_epoch_s: int, description: str) -> LabelledEvent:
    return LabelledEvent(event_id, "water", zone, p.kind, (start_epoch_s + int(p.start_s)) * NS,
                         (start_epoch_s + int(p.end_s)) * NS, p.sensor_id,
                         None if p.magnitude is None else round(float(p.magnitude), 4), description)


def event_labels(site: Site, plans: list[Plan], h: Hydraulics, quiet: Hydraulics,
                 start_epoch_s: int) -> list[LabelledEvent]:
    out: list[LabelledEvent] = []
    for n, p in enumerate(plans, start=1):
        text = describe(site, p, h, quiet)
        for zone in affected_zones(site, p, h, quiet):
            eid = f"EV{n:03d}" if zone == p.zone else f"EV{n:03d}-{zone}"
            out.append(label(eid, zone, p, start_epoch_s, text if zone == p.zone else f"{text} (felt in {zone})"))
    return out


def anomaly_labels(plans: list[Plan], start_epoch_s: int) -> list[LabelledEvent]:
    out = []
    for n, p in enumerate(plans, start=1):
        text = p.description or f"fire hydrant at junction {p.node} draws {p.flow_m3h:g} m3/h (benign, not a leak)"
        out.append(label(f"AN{n:03d}", p.zone, p, start_epoch_s, text))
    return out
