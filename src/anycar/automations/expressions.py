"""Templates: the safe expression language of the CAN mappings (py-expression-eval, trimmed and
size-limited in ``anycar.can.transform``), with VSS paths and the automation's variables as
names. Nothing reaches ``eval``; an expression that fails at run time is a traced failure.

``Vehicle.Speed > 10 and door_open == true`` - ``true``/``false`` are names too;
``value`` and ``previous`` are the trigger's values and ``trigger`` its id.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from anycar.can.transform import parse_expression
from anycar.errors import ConfigError

BUILTIN_NAMES = frozenset({"true", "false", "value", "previous", "trigger", "E", "PI"})
Lookup = Callable[[str], Any]


class ExpressionFailed(ValueError):
    """An expression could not be evaluated for these values (traced, never a crash)."""


class Expression:
    """A parsed expression and the names it reads."""

    def __init__(self, text: str, parsed: Any, signals: tuple[str, ...], variables: tuple[str, ...]) -> None:
        self.text = text
        self._parsed = parsed
        self.signals = signals
        self.variables = variables

    def evaluate(self, lookup: Lookup) -> Any:
        names: dict[str, Any] = {"true": True, "false": False}
        for name in (*self.signals, *self.variables):
            value = lookup(name)
            if value is None:
                raise ExpressionFailed(f"{name} has no value")
            names[name] = value
        try:
            result = self._parsed.evaluate(names)
        except Exception as exc:  # the library raises bare Exception; an expression must not crash us
            raise ExpressionFailed(f"{self.text!r}: {exc}") from None
        if isinstance(result, float) and not math.isfinite(result):
            raise ExpressionFailed(f"{self.text!r} gave {result}")
        return result


def compile_expression(
    text: str, *, is_signal: Callable[[str], bool], variables: Mapping[str, Any], where: str
) -> Expression:
    """Parse ``text``; every name must be a VSS signal, a declared variable or a built-in."""
    try:
        parsed = parse_expression(text, where, "template")
    except ConfigError as exc:
        raise ConfigError(str(exc)) from None
    signals: list[str] = []
    names: list[str] = []
    for name in parsed.variables():
        if name in ("true", "false"):
            continue
        if name in variables or name in BUILTIN_NAMES:
            names.append(name)
        elif "." in name and is_signal(name):
            signals.append(name)
        else:
            raise ConfigError(
                f"{where}: template {text!r} uses {name!r}: not a VSS signal, a variable of this "
                "automation, or one of value, previous, trigger, true, false"
            )
    return Expression(text, parsed, tuple(signals), tuple(names))


def template_text(value: Any) -> str | None:
    """The expression inside ``"{{ ... }}"``, or ``None`` for a plain value."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("{{") and stripped.endswith("}}"):
            return stripped[2:-2].strip()
    return None
