"""Finding network models and reference data: a path, or a name of a benchmark network.

Names resolve to the reference data shipped with the simulators (BattLeDIM's L-Town, LeakDB's Hanoi and
its demand model, copied byte for byte: simulators/data/README.md; $SENTINEL_REFERENCE_DATA points
elsewhere) or to the networks WNTR ships.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

import wntr

DEFAULT_REFERENCE_DATA: Final = Path(__file__).resolve().parents[1] / "data"

# lower-case name -> (where, file name): "ref" is the reference data's networks/, "wntr" WNTR's library
KNOWN_NETWORKS: Final[dict[str, tuple[str, str]]] = {
    "l-town": ("ref", "L-TOWN.inp"), "ltown": ("ref", "L-TOWN.inp"),
    "hanoi": ("ref", "Hanoi_CMH.inp"),
    "net1": ("wntr", "Net1.inp"), "net2": ("wntr", "Net2.inp"), "net3": ("wntr", "Net3.inp"),
    "net6": ("wntr", "Net6.inp"), "ky4": ("wntr", "ky4.inp"), "ky10": ("wntr", "ky10.inp"),
}


def reference_data() -> Path:
    """The directory with networks/ and leakdb/ (override with $SENTINEL_REFERENCE_DATA)."""
    return Path(os.environ.get("SENTINEL_REFERENCE_DATA", str(DEFAULT_REFERENCE_DATA)))


def resolve_network(network: str) -> Path:
    """An existing .inp for a path or a known name; FileNotFoundError says what was looked for."""
    known = KNOWN_NETWORKS.get(network.strip().lower())
    if known is None:
        path = Path(network)
        if path.is_file():
            return path
        names = sorted({k for k in KNOWN_NETWORKS if k != "ltown"})
        raise FileNotFoundError(f"network {network!r} is neither a file nor one of {', '.join(names)}")
    where, name = known
    base = reference_data() / "networks" if where == "ref" else Path(wntr.__file__).parent / "library" / "networks"
    path = base / name
    if not path.is_file():
        raise FileNotFoundError(f"network {network!r}: {path} not found (set SENTINEL_REFERENCE_DATA to the "
                                "directory holding networks/ and leakdb/)")
    return path


def load_network(network: str) -> wntr.network.WaterNetworkModel:
    return wntr.network.WaterNetworkModel(str(resolve_network(network)))
