"""What the demo reports: one :class:`StepResult` per checked step, in a :class:`DemoResult`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["HOST", "DemoResult", "StepResult"]

HOST = "api.pinset.test"


@dataclass(frozen=True, slots=True)
class StepResult:
    """One checked step: what pinning promises (``expected``) and what happened (``observed``)."""

    name: str
    title: str
    expected: str
    observed: str
    ok: bool
    details: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view: every field."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class DemoResult:
    """Every checked step, in order, and how long the demo took."""

    steps: tuple[StepResult, ...]
    seconds: float
    collector: str | None = None
    work_dir: str | None = None

    @property
    def ok(self) -> bool:
        """True when every step behaved as expected (and there was at least one)."""
        return bool(self.steps) and all(s.ok for s in self.steps)

    def step(self, name: str) -> StepResult:
        """The step called *name* (``KeyError`` if it did not run)."""
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "ok": self.ok,
            "seconds": round(self.seconds, 2),
            "host": HOST,
            "collector": self.collector,
            "work_dir": self.work_dir,
            "steps": [s.to_dict() for s in self.steps],
        }
