"""Rights as sets of signals: the one way anycar compares what two parties may do.

A token's scopes, an app's grant and an accessory's grant are all written as VSS paths and
patterns, but patterns are never compared as text (``Vehicle.*`` and ``Vehicle.**`` look alike
and cover very different signals). Every comparison goes through the live catalog instead:
a pattern stands for the set of signals it matches there, and "A holds no more than B" means
every signal in A's set is allowed to B, for each action, and A's privilege is at most B's.

The privilege ladder is Matter's: View < Operate < Manage < Administer.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum, StrEnum
from typing import Protocol

from anycar.errors import ConfigError, UnknownPath
from anycar.model.catalog import Catalog
from anycar.model.signal import Signal


class Action(StrEnum):
    """What a party does to a signal (the KUKSA scope words)."""

    READ = "read"
    ACTUATE = "actuate"
    PROVIDE = "provide"


class Privilege(IntEnum):
    VIEW = 1
    OPERATE = 2
    MANAGE = 3
    ADMINISTER = 4

    @classmethod
    def parse(cls, text: str | int | Privilege) -> Privilege:
        if isinstance(text, Privilege):
            return text
        if isinstance(text, int) and not isinstance(text, bool):
            try:
                return cls(text)
            except ValueError:
                pass
        elif isinstance(text, str) and text.upper() in cls.__members__:
            return cls[text.upper()]
        raise ConfigError(f"privilege {text!r} is not one of View, Operate, Manage, Administer")

    @property
    def label(self) -> str:
        return self.name.capitalize()


class Rights(Protocol):
    """What one party may do, asked per concrete signal path (never per pattern)."""

    @property
    def subject(self) -> str: ...

    def allows(self, action: Action, path: str) -> bool:
        """May the party do ``action`` on the signal at ``path`` (a leaf path, not a pattern)?"""
        ...

    def unlimited(self, action: Action) -> bool:
        """True when ``action`` is allowed on every signal, also those fitted later."""
        ...


def signals_of(catalog: Catalog, patterns: Iterable[str]) -> list[Signal]:
    """The set of signals the patterns match in the live catalog, in tree order, each once.

    A pattern that matches nothing is an ``UnknownPath``: a right over nothing is a typo.
    """
    seen: set[int] = set()
    out: list[Signal] = []
    for pattern in patterns:
        found = catalog.match(pattern)
        if not found:
            raise UnknownPath(pattern, "it matches no signal of this vehicle")
        for sig in found:
            if sig.id not in seen:
                seen.add(sig.id)
                out.append(sig)
    out.sort(key=lambda s: s.id)
    return out


def first_outside(rights: Rights, action: Action, signals: Iterable[Signal]) -> Signal | None:
    """The first signal ``rights`` does not allow ``action`` on, or ``None`` if it holds them all."""
    if rights.unlimited(action):
        return None
    return next((s for s in signals if not rights.allows(action, s.path)), None)


def bounded_patterns(rights: Rights, action: Action, patterns: list[str], catalog: Catalog) -> list[str]:
    """What a grant ``rights`` gives may store for ``patterns`` so that it never outgrows them.

    A party that holds ``action`` on everything passes its patterns on as written (they may
    cover signals fitted later). Anyone narrower passes on the signals the patterns match now,
    which it was checked to hold: a pattern would otherwise also cover the next accessory fitted.
    """
    if not patterns or rights.unlimited(action):
        return list(patterns)
    return [s.path for s in signals_of(catalog, patterns)]


__all__ = ["Action", "Privilege", "Rights", "bounded_patterns", "first_outside", "signals_of"]
