"""Physics-based water simulator: EPANET hydraulics (through WNTR) on real network models.

    from simulators.water_wntr import generate_wntr, load_wntr_scenario, write_anomalies
    result = generate_wntr(load_wntr_scenario("simulators/scenarios/hanoi-week.yaml"))
    write_replay(result, "out/"); write_anomalies(result, "out/")

`sentinel simulate --scenario FILE` dispatches here (simulators/dispatch.py) when the file says
`engine: wntr`. Importing WNTR takes about two seconds, so the generator is loaded on first use:
checking a scenario file's engine stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simulators.water_wntr.scenario import WNTR_EVENT_KINDS, WntrScenario, load_wntr_scenario

if TYPE_CHECKING:
    from simulators.water_wntr.generate import WntrSimResult, generate_wntr, write_anomalies

_LAZY = ("WntrSimResult", "generate_wntr", "write_anomalies")

__all__ = [
    "WNTR_EVENT_KINDS",
    "WntrScenario",
    "WntrSimResult",
    "generate_wntr",
    "load_wntr_scenario",
    "write_anomalies",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from simulators.water_wntr import generate

        return getattr(generate, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
