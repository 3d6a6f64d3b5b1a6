"""The fixed scenario suite and its simulation cache.

Development seeds are the ones written in the scenario files plus a few more for the water files (rules
are tuned on those; one seed holds too few small bursts to choose a limit by); the benchmark's held-out
seeds below were never used while tuning. A seed changes demand, noise, where leaks open and
which junctions hydrants draw from, so the held-out runs are new data on the same networks.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = Path(__file__).resolve().parent / "scenarios"


@dataclass(frozen=True)
class Case:
    """One scenario file simulated with one seed."""

    name: str
    scenario: Path
    seed: int

    @property
    def label(self) -> str:
        return f"{self.name}@{self.seed}"


# scenario file -> held-out seeds
SUITE: dict[Path, tuple[int, ...]] = {
    SCENARIOS / "ltown-4w.yaml": (1101, 1102),
    SCENARIOS / "hanoi-4w.yaml": (1201, 1202),
    ROOT / "simulators" / "scenarios" / "gas-week.yaml": (1301, 1302),
    ROOT / "simulators" / "scenarios" / "heat-week.yaml": (1401, 1402),
}

# scenario file -> development seeds besides the file's own
MORE_DEVELOPMENT: dict[Path, tuple[int, ...]] = {
    SCENARIOS / "ltown-4w.yaml": (8, 9),
    SCENARIOS / "hanoi-4w.yaml": (12, 13),
}


def scenario_doc(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def dev_seed(path: Path) -> int:
    return int(scenario_doc(path).get("seed", 0))


def cases(*, dev: bool = False, only: str | None = None) -> list[Case]:
    """The suite's cases: held-out seeds, or each file's own (development) seed with `dev`."""
    out = []
    for path, seeds in SUITE.items():
        name = str(scenario_doc(path).get("name", path.stem))
        if only and only not in name:
            continue
        development = (dev_seed(path), *MORE_DEVELOPMENT.get(path, ()))
        if shared := sorted(set(development) & set(seeds)):
            raise ValueError(f"{path.name}: held-out seeds {seeds} include development seed(s) {shared}")
        for seed in development if dev else seeds:
            out.append(Case(name, path, seed))
    return out


def cache_root() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "lifeline-sentinel" / "bench-detection"


_ENGINES = ("wntr", "pandapipes", "pandapower", "numpy", "scipy", "pandas")


def _simulator_digest() -> str:
    """Hash of the simulators' sources and data and of the versions of the libraries that compute the
    hydraulics: a change to either invalidates every cached run (a new EPANET can move a result)."""
    h = hashlib.sha256()
    for name in _ENGINES:
        try:
            h.update(f"{name}=={importlib.metadata.version(name)}".encode())
        except importlib.metadata.PackageNotFoundError:
            h.update(f"{name} absent".encode())
    base = ROOT / "simulators"
    for p in sorted(base.rglob("*")):
        if p.is_file() and p.suffix in {".py", ".inp", ".mat", ".json", ".csv"}:
            h.update(str(p.relative_to(base)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def case_key(case: Case, simulators: str) -> str:
    h = hashlib.sha256(case.scenario.read_bytes())
    h.update(json.dumps({"seed": case.seed, "simulators": simulators}).encode())
    return h.hexdigest()[:12]


def simulated(case: Case, *, simulators: str | None = None, show_progress: bool = True) -> tuple[Path, bool]:
    """The case's replay directory (catalog.csv, readings.csv, events.csv, anomalies.csv), simulated on
    first use and cached; returns (directory, was_cached)."""
    from simulators.dispatch import simulate_file, write_result

    key = case_key(case, simulators or _simulator_digest())
    out = cache_root() / f"{case.name}-s{case.seed}-{key}"
    if (out / "done").exists():
        return out, True
    tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")  # concurrent runs each write their own
    shutil.rmtree(tmp, ignore_errors=True)
    result = simulate_file(case.scenario, seed=case.seed, show_progress=show_progress)
    write_result(result, tmp)
    (tmp / "done").write_text("ok\n")
    if (out / "done").exists():  # another run finished it meanwhile: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
        return out, False
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out, False


simulator_digest = _simulator_digest
