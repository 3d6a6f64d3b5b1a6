"""Errors that point at the place in an input file a person has to fix."""

from __future__ import annotations

import sys


class InputError(ValueError):
    """Bad input, located: `file:line: field: message`."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.source, self.line, self.field, self.detail = source, line, field, message
        where = source or ""
        if line is not None:
            where = f"{where}:{line}"
        parts = [p for p in (where, field) if p]
        super().__init__(": ".join([*parts, message]))


class InputErrors(ValueError):
    """Several located errors at once, so an engineer fixes a file in one pass."""

    def __init__(self, errors: list[InputError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


def fail(exc: Exception) -> int:
    """Print an input or file error for a person on stderr (several located ones one per line) and return
    the command's exit status for it, 2."""
    print(f"error:\n{exc}" if isinstance(exc, InputErrors) else f"error: {exc}", file=sys.stderr)
    return 2
