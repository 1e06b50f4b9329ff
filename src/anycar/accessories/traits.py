"""The trait catalog (``data/traits.yaml``): the kinds of accessory and the signals each offers."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from anycar.policy.power import Priority


@dataclass(frozen=True, slots=True)
class TraitSignal:
    name: str
    type: str
    datatype: str
    unit: str | None = None

    def describe(self) -> str:
        return f"{self.name} ({self.type} {self.datatype}{' ' + self.unit if self.unit else ''})"


@dataclass(frozen=True, slots=True)
class Trait:
    id: str
    family: str
    description: str
    priority: Priority
    requires: tuple[TraitSignal, ...]
    optional: tuple[TraitSignal, ...]
    standard: str | None = None
    driver_restricted: bool = False
    working: str | None = None  # the signal that says it draws typical_w (true / above 0)


def _signals(data: dict[str, Any] | None) -> tuple[TraitSignal, ...]:
    return tuple(
        TraitSignal(name, spec["type"], spec["datatype"], spec.get("unit"))
        for name, spec in (data or {}).items()
    )


@cache
def trait_catalog() -> dict[str, Trait]:
    text = resources.files("anycar.accessories").joinpath("data/traits.yaml").read_text("utf-8")
    raw = yaml.safe_load(text)["traits"]
    return {
        tid: Trait(
            id=tid,
            family=spec["family"],
            description=spec["description"],
            priority=Priority.parse(spec["priority"]),
            requires=_signals(spec.get("requires")),
            optional=_signals(spec.get("optional")),
            standard=spec.get("standard"),
            driver_restricted=bool(spec.get("driver_restricted", False)),
            working=spec.get("working"),
        )
        for tid, spec in raw.items()
    }


def families() -> dict[str, list[str]]:
    """Trait ids by family (light, fan, display, ...)."""
    out: dict[str, list[str]] = {}
    for trait in trait_catalog().values():
        out.setdefault(trait.family, []).append(trait.id)
    return out
