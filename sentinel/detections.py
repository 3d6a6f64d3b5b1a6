"""What the engine says: a rule's condition on a subject was raised, changed grade, or cleared."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from sentinel.readings import iso
from sentinel.severity import Severity

Transition = Literal["raised", "escalated", "deescalated", "cleared"]


@dataclass(frozen=True, slots=True)
class Detection:
    """One state change of (rule, subject). `subject` is a sensor id or a zone name."""

    rule_id: str
    kind: str
    network: str
    zone: str
    subject: str
    sensor_id: str | None
    time_ns: int
    transition: Transition
    severity: Severity | None  # None once cleared
    value: float
    score: float
    message: str

    @property
    def key(self) -> tuple[str, str]:
        """Alerts are deduplicated per rule and subject."""
        return self.rule_id, self.subject

    def sort_key(self) -> tuple[int, str, str]:
        return self.time_ns, self.rule_id, self.subject

    def to_dict(self) -> dict:
        d = asdict(self)
        d["severity"] = self.severity.label if self.severity else None
        d["time"] = iso(self.time_ns)
        return d
