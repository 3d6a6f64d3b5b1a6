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
    if engine == "pandapipes-gas":
        import simulators.gas_pandapipes as module
    elif engine == "pandapipes-heat":
        import simulators.heat_pandapipes as module
    else:
        return None
    return module


def simulate_file(path: str | Path, *, seed: int | None = None, show_progress: bool = True) -> SimResult:
    """Simulate a scenario file, with its seed replaced by `seed` when one is given.

    Raises the loaders' own errors (pydantic ValidationError, ValueError naming the field) on a bad file.
    """
    engine = engine_of(path)
    update: dict[str, Any] = {} if seed is None else {"seed": seed}
    pipes = _pipes_module(engine)
    if pipes is not None:
        return pipes.generate(pipes.load_scenario(str(path)).model_copy(update=update), show_progress=show_progress)
    if engine == "wntr":
        from simulators.water_wntr import generate_wntr, load_wntr_scenario

        return generate_wntr(load_wntr_scenario(str(path)).model_copy(update=update), show_progress=show_progress)
    from simulators.scenario import load_scenario
    from simulators.synthetic import generate

    return generate(load_scenario(path).model_copy(update=update))


def write_result(result: SimResult, directory: str | Path, *, wide: bool = False) -> dict[str, Path]:
    """The replay set (catalog, readings, events, scenario) plus anomalies.csv when the result has any."""
    from simulators.files import write_replay

    paths = write_replay(result, directory, wide=wide)
    if getattr(result, "anomalies", None) is not None:  # only WNTR results: importing it costs seconds
        from simulators.water_wntr import write_anomalies

        paths.update(write_anomalies(result, directory))
    return paths
