"""The nodes of the VSS tree: branches and signals (sensor, actuator, attribute leaves)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from anycar.model.datatypes import Validator, compile_validator


class NodeType(StrEnum):
    BRANCH = "branch"
    SENSOR = "sensor"
    ACTUATOR = "actuator"
    ATTRIBUTE = "attribute"


LEAF_TYPES = frozenset({NodeType.SENSOR, NodeType.ACTUATOR, NodeType.ATTRIBUTE})


@dataclass(slots=True)
class Branch:
    path: str
    description: str = ""
    comment: str | None = None


@dataclass(slots=True, eq=False)
class Signal:
    """A VSS leaf with its metadata and the compiled check its values go through.

    ``id`` is stable for the life of a catalog: signals added by overlays get new ids, changed
    signals keep theirs (KUKSA's SubscribeById relies on that).
    """

    path: str
    id: int
    type: NodeType
    datatype: str
    description: str = ""
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    allowed: tuple[Any, ...] | None = None
    pattern: str | None = None
    arraysize: int | None = None
    default: Any = None
    comment: str | None = None
    deprecation: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    validate: Validator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.compile()

    def compile(self) -> None:
        """(Re)build the validator after a change of metadata."""
        self.validate = compile_validator(
            self.datatype,
            minimum=self.min,
            maximum=self.max,
            allowed=self.allowed,
            pattern=self.pattern,
            arraysize=self.arraysize,
        )

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[-1]

    def metadata(self) -> dict[str, Any]:
        """The signal's metadata as VSS spells it (the shape VISS static-metadata returns)."""
        out: dict[str, Any] = {
            "type": str(self.type),
            "datatype": self.datatype,
            "description": self.description,
        }
        for key in ("unit", "min", "max", "pattern", "arraysize", "comment", "deprecation"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.allowed is not None:
            out["allowed"] = list(self.allowed)
        if self.default is not None:
            out["default"] = self.default
        out.update(self.extra)
        return out
