"""Seeded synthetic water / district-heating / gas streams with labelled events, for CI and rule tuning.

    from simulators import default_scenario, generate, write_replay
    result = generate(default_scenario(seed=1, days=7))
    write_replay(result, "out/replay")
"""

from sentinel.events import LabelledEvent
from simulators.events import EVENT_COLUMNS
from simulators.files import read_events, write_replay
from simulators.scenario import (
    EVENT_KINDS,
    EventSpec,
    GasSpec,
    HeatSpec,
    Intervals,
    RandomEvents,
    Scenario,
    WaterSpec,
    default_scenario,
    demo_scenario,
    dump_scenario,
    load_scenario,
    preset,
)
from simulators.synthetic import Readings, SimResult, generate

__all__ = [
    "EVENT_COLUMNS",
    "EVENT_KINDS",
    "EventSpec",
    "GasSpec",
    "HeatSpec",
    "Intervals",
    "LabelledEvent",
    "RandomEvents",
    "Readings",
    "Scenario",
    "SimResult",
    "WaterSpec",
    "default_scenario",
    "demo_scenario",
    "dump_scenario",
    "generate",
    "load_scenario",
    "preset",
    "read_events",
    "write_replay",
]
