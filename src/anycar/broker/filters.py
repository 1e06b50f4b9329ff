"""Subscription filters: by change, by range, by minimum period (VISS v2's filter family).

A filter decides per signal whether a new value is worth delivering; the minimum period is
handled by the subscription itself, because it has to hold a value back and send it later.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from anycar.errors import AnycarError

OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}


class InvalidFilter(AnycarError):
    code = 400
    reason = "bad_request"


def _op(name: str) -> Callable[[Any, Any], bool]:
    try:
        return OPERATORS[name]
    except (KeyError, TypeError):
        raise InvalidFilter(f"logic-op {name!r} is not one of {sorted(OPERATORS)}") from None


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidFilter(f"{what} must be a number, got {value!r:.40}")
    try:
        number = float(value)
    except ValueError:
        raise InvalidFilter(f"{what} must be a number, got {value!r:.40}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise InvalidFilter(f"{what} must be finite")
    return number


@dataclass(frozen=True, slots=True)
class ChangeCondition:
    """Deliver when ``new - last_delivered <logic_op> diff`` (``ne 0``: on any change).

    For values that are not numbers only ``eq``/``ne`` make sense: changed or not.
    """

    logic_op: str = "ne"
    diff: float = 0.0

    def __post_init__(self) -> None:
        _op(self.logic_op)
        _number(self.diff, "change diff")

    def passes(self, new: Any, last: Any) -> bool:
        if last is None:
            return True
        fn = OPERATORS[self.logic_op]
        if isinstance(new, (int, float)) and isinstance(last, (int, float)) and not isinstance(new, bool):
            delta = new - last
            if self.logic_op == "ne" and self.diff == 0:
                return bool(delta != 0)
            if self.logic_op in ("gt", "ge"):
                return fn(abs(delta), self.diff)
            return fn(delta, self.diff)
        changed = new != last
        return changed if self.logic_op in ("ne", "gt", "ge") else not changed


@dataclass(frozen=True, slots=True)
class RangeCondition:
    """Deliver when ``value <logic_op> boundary``."""

    logic_op: str
    boundary: float

    def __post_init__(self) -> None:
        _op(self.logic_op)
        _number(self.boundary, "range boundary")

    def passes(self, value: Any) -> bool:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return False
        return OPERATORS[self.logic_op](value, self.boundary)


@dataclass(frozen=True, slots=True)
class SubscriptionFilter:
    """What a subscriber wants delivered. Empty means every update.

    ``min_period_s``: at most one value per signal per period; the newest held-back value is
    delivered when the period ends, so the subscriber never misses the final state.
    ``ranges`` are combined with AND (``range_combine="and"``) or OR.
    """

    min_period_s: float | None = None
    change: ChangeCondition | None = None
    ranges: tuple[RangeCondition, ...] = field(default_factory=tuple)
    range_combine: str = "and"

    def __post_init__(self) -> None:
        if self.min_period_s is not None:
            period = _number(self.min_period_s, "min period")
            if period < 0 or period > 86_400:
                raise InvalidFilter("min period must be between 0 and 86400 s")
        if self.range_combine not in ("and", "or"):
            raise InvalidFilter("range_combine must be 'and' or 'or'")

    @property
    def has_value_conditions(self) -> bool:
        return self.change is not None or bool(self.ranges)

    def passes(self, new: Any, last_delivered: Any) -> bool:
        if self.ranges:
            results = (r.passes(new) for r in self.ranges)
            if not (all(results) if self.range_combine == "and" else any(results)):
                return False
        return self.change is None or self.change.passes(new, last_delivered)
