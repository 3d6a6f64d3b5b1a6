"""Nothing is silently lost: input we cannot use is kept with the reason, where it came from and the field."""

from __future__ import annotations

from dataclasses import dataclass

MAX_PAYLOAD_CHARS = 4096


@dataclass(frozen=True, slots=True)
class DeadLetter:
    source: str  # e.g. "mqtt:sentinel/water/dma1/P1" or "readings.csv:12"
    reason: str  # e.g. "unknown sensor", "undecodable JSON", "out of range"
    field: str | None  # offending field, when one can be named
    payload: str  # the raw input (decoded leniently, truncated)
    received_ns: int

    @classmethod
    def of(cls, source: str, reason: str, payload: bytes | str, received_ns: int,
           field: str | None = None) -> DeadLetter:
        text = payload.decode("utf-8", errors="backslashreplace") if isinstance(payload, bytes) else payload
        if len(text) > MAX_PAYLOAD_CHARS:
            text = text[:MAX_PAYLOAD_CHARS] + f"...[{len(text) - MAX_PAYLOAD_CHARS} more chars]"
        return cls(source, reason, field, text, received_ns)

    def describe(self) -> str:
        where = f"{self.source}: {self.field}" if self.field else self.source
        return f"{where}: {self.reason}"
