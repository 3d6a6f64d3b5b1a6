"""One entry for every scenario file: its `engine:` picks WNTR, pandapipes gas or heat, or the synthetic
generator, so the CLI and the detection benchmark simulate a file the same way."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from simulators.synthetic import SimResult


def engine_of(path: str | Path) -> str:
    """The scenario's `engine:` ("synthetic" when it names none or the file cannot be read)."""
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return "synthetic"
    engine = doc.get("engine") if isinstance(doc, dict) else None
    return str(engine) if engine else "synthetic"


def _pipes_module(engine: str) -> ModuleType | None:
    """The pandapipes simulator package whose ENGINE the scenario names (its generator loads lazily)."""
    import simulators.gas_pandapipes as gas
    import simulators.heat_pandapipes as heat

    return {gas.ENGINE: gas, heat.ENGINE: heat}.get(engine)


def load_file(path: str | Path) -> tuple[str, Any]:
    """(engine, validated scenario) of a scenario file; raises the loader's own errors (pydantic
    ValidationError, ValueError naming the field) on a bad file."""
    engine = engine_of(path)
    pipes = _pipes_module(engine)
    if pipes is not None:
        return engine, pipes.load_scenario(str(path))
    if engine == "wntr":
        from simulators.water_wntr import load_wntr_scenario

        return engine, load_wntr_scenario(str(path))
    from simulators.scenario import load_scenario

    return "synthetic", load_scenario(path)


def simulate(engine: str, scenario: Any, *, show_progress: bool = True) -> SimResult:
    """Simulate a scenario that load_file validated."""
    pipes = _pipes_module(engine)
    if pipes is not None:
        return pipes.generate(scenario, show_progress=show_progress)
    if engine == "wntr":
        from simulators.water_wntr import generate_wntr

        return generate_wntr(scenario, show_progress=show_progress)
    from simulators.synthetic import generate

    return generate(scenario)


def simulate_file(path: str | Path, *, seed: int | None = None, show_progress: bool = True) -> SimResult:
    """Simulate a scenario file, with its seed replaced by `seed` when one is given."""
    engine, scenario = load_file(path)
    if seed is not None:
        scenario = scenario.model_copy(update={"seed": seed})
    return simulate(engine, scenario, show_progress=show_progress)


def write_result(result: SimResult, directory: str | Path, *, wide: bool = False) -> dict[str, Path]:
    """The replay set (catalog, readings, events, scenario) plus anomalies.csv when the result has any."""
    from simulators.files import write_replay

    paths = write_replay(result, directory, wide=wide)
    if getattr(result, "anomalies", None) is not None:  # only WNTR results: importing it costs seconds
        from simulators.water_wntr import write_anomalies

        paths.update(write_anomalies(result, directory))
    return paths
