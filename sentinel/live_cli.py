"""Live commands (demo, run, simulate) are registered here; filled in as their adapters land."""

from __future__ import annotations

import argparse


def add_live_commands(sub: argparse._SubParsersAction) -> None:
    return None
