"""What the hub says about one definition: active, disabled, refused (and why), or not for this car."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from anycar.automations.source import Problem


@dataclass
class Status:
    """One definition's state, where it came from, and its problems."""

    id: str
    state: str
    source: str
    problems: list[Problem] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "source": self.source,
            "problems": [p.to_dict() for p in self.problems],
        }
