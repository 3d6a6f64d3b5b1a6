"""Physics-based district-heating simulator: pandapipes hydraulics of supply/return circuits with a
plant (heating curve, constant-differential pump, pressure-holding make-up) and flow-controlled
substations; leaks as orifices that the make-up replaces; temperatures from our own thermal model.

    from simulators.heat_pandapipes import generate
    result = generate("simulators/scenarios/heat-week.yaml")   # a SimResult: write_replay(result, "out/")

Scenario files say `engine: pandapipes-heat`. pandapipes is imported on first use.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from simulators.heat_pandapipes.scenario import HEAT_KINDS, HeatScenario
from simulators.pipes_common import load_yaml_scenario

if TYPE_CHECKING:
    from simulators.heat_pandapipes.engine import HeatSimResult

ENGINE = "pandapipes-heat"

__all__ = ["ENGINE", "HEAT_KINDS", "HeatScenario", "generate", "load_scenario"]


def load_scenario(path: str | Path) -> HeatScenario:
    return load_yaml_scenario(path, HeatScenario)


def generate(source: str | Path | HeatScenario | dict, *, show_progress: bool = True) -> HeatSimResult:
    """Simulate a district-heating scenario given as a YAML path, a mapping or a HeatScenario."""
    from simulators.heat_pandapipes.engine import generate as run

    return run(source, show_progress=show_progress)
