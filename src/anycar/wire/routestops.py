"""The stops of a ``route`` command, as both sides name them (demo-route).

A route's stop is a delivery's (``drop``, ``pickup``: keyed by its order) or a planned battery
swap (``swap``: no order; keyed by its station and reservation). Hub and fleet key what is done
and what is next by ``stop_key``, so a swap stop is tracked like any other without an order id.
"""

from __future__ import annotations

from typing import Any

SWAP = "swap"
ORDER_KINDS = ("drop", "pickup")


def is_swap(stop: dict[str, Any]) -> bool:
    return stop.get("kind") == SWAP


def stop_key(stop: dict[str, Any]) -> str:
    """``D-17`` for an order's stop; ``swap:STATION:RESERVATION`` (or ``swap:STATION``) for a swap."""
    if is_swap(stop):
        rid = stop.get("reservation")
        return f"swap:{stop.get('station')}" + (f":{rid}" if rid is not None else "")
    return str(stop["order"])
