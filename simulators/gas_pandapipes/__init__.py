"""Physics-based gas simulator: pandapipes steady-state hydraulics on a distribution grid, districts fed
through regulator stations, leaks as orifices, methane accumulating in nearby underground spaces.

    from simulators.gas_pandapipes import generate
    result = generate("simulators/scenarios/gas-week.yaml")   # a SimResult: write_replay(result, "out/")

Scenario files say `engine: pandapipes-gas`. Importing pandapipes takes about 1.5 s, so the generator
is loaded on first use and checking a file's engine stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from simulators.gas_pandapipes.scenario import GAS_KINDS, GasScenario
from simulators.pipes_common import load_yaml_scenario

if TYPE_CHECKING:
    from simulators.gas_pandapipes.engine import GasSimResult

ENGINE = "pandapipes-gas"

__all__ = ["ENGINE", "GAS_KINDS", "GasScenario", "generate", "load_scenario"]


def load_scenario(path: str | Path) -> GasScenario:
    return load_yaml_scenario(path, GasScenario)


def generate(source: str | Path | GasScenario | dict, *, show_progress: bool = True) -> GasSimResult:
    """Simulate a gas scenario given as a YAML path, a mapping or a GasScenario."""
    from simulators.gas_pandapipes.engine import generate as run

    return run(source, show_progress=show_progress)
