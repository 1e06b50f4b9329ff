"""A signal's value at a moment: what the broker stores and what subscribers receive."""

from __future__ import annotations

from typing import Any, NamedTuple


class Datapoint(NamedTuple):
    """``value`` is ``None`` when the signal has no value or its provider says it is unavailable.

    ``timestamp`` is seconds since the Unix epoch (``time.time()``) when the value was taken.
    One object is made per write and shared by the store and every subscriber, so it is
    immutable.
    """

    path: str
    value: Any
    timestamp: float
