"""Alarm grades as Chinese lifeline platforms use them: 三级 yellow < 二级 orange < 一级 red."""

from __future__ import annotations

from enum import IntEnum


class Severity(IntEnum):
    """Ordered so that max() picks the worst; 0 is reserved for "no alarm" in engine state arrays."""

    YELLOW = 1
    ORANGE = 2
    RED = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @property
    def grade_zh(self) -> str:
        return {1: "三级", 2: "二级", 3: "一级"}[self.value]

    @classmethod
    def parse(cls, text: str) -> Severity:
        key = text.strip().lower()
        aliases = {
            "yellow": cls.YELLOW, "三级": cls.YELLOW, "iii": cls.YELLOW, "warning": cls.YELLOW,
            "orange": cls.ORANGE, "二级": cls.ORANGE, "ii": cls.ORANGE, "major": cls.ORANGE,
            "red": cls.RED, "一级": cls.RED, "i": cls.RED, "critical": cls.RED,
        }
        try:
            return aliases[key]
        except KeyError:
            raise ValueError(f"unknown severity {text!r}; use yellow, orange or red (三级/二级/一级)") from None
