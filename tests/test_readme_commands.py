"""Every `sentinel ...` command the README shows parses with the real command line: docs stay true."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from sentinel.cli import build_parser

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def readme_commands() -> list[str]:
    out = []
    for block in re.findall(r"```(?:sh)?\n(.*?)```", README, re.S):
        text = block.replace("\\\n", " ")
        for line in text.splitlines():
            for part in line.split(";"):
                part = part.split("  #", 1)[0].strip()
                part = re.sub(r"\s+#.*$", "", part)
                if part.startswith("sentinel "):
                    out.append(part)
    return out


COMMANDS = readme_commands()


def test_the_readme_shows_commands() -> None:
    assert len(COMMANDS) >= 10
    assert any(c.startswith("sentinel worker") for c in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_parses(command: str) -> None:
    # optional parts are shown in [...], alternatives as a|b, repeats as "...", seed ranges as 101..105
    args = [a.strip("[]").split("|")[0] for a in shlex.split(command)[1:] if a.strip("[]") != "..."]
    args = [re.sub(r"\.\.\d+$", "", a) for a in args]
    parsed = build_parser().parse_args(args)
    assert callable(parsed.func)
