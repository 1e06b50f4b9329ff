"""Transforms of the KUKSA mapping format: ``math`` formulas and ``mapping`` tables.

Formulas are parsed with py-expression-eval, the library the KUKSA CAN provider uses, so that
a KUKSA formula means the same here. Nothing is ever passed to ``eval``: the parser's own
tables are trimmed of what has no place in a signal conversion (random numbers, factorials,
dice rolls, string concatenation), and powers are computed on floats with a size limit, so a
formula can fail (the value is then dropped and counted) but cannot hang the adapter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from py_expression_eval import Parser

from anycar.errors import ConfigError

Transform = Callable[[Any], Any]

_REMOVED_FUNCTIONS = ("random", "fac", "concat")
_REMOVED_OPS2 = ("D", "||")
MAX_EXPRESSION_LENGTH = 500
MAX_POWER = 1e300


class TransformFailed(ValueError):
    """A transform could not produce a value for this input (counted, value dropped)."""


class NoMappingEntry(TransformFailed):
    """A ``mapping`` table has no entry for this value (KUKSA ignores the value; so do we)."""


def _safe_pow(a: Any, b: Any) -> float:
    result = math.pow(float(a), float(b))
    if not math.isfinite(result) or abs(result) > MAX_POWER:
        raise OverflowError("power too large")
    return result


def _parser() -> Parser:
    parser = Parser()
    for name in _REMOVED_FUNCTIONS:
        parser.functions.pop(name, None)
    for op in _REMOVED_OPS2:
        parser.ops2.pop(op, None)
    parser.ops2["^"] = _safe_pow
    parser.ops2["**"] = _safe_pow
    parser.functions["pow"] = _safe_pow
    return parser


_PARSER = _parser()


def parse_expression(expr: Any, where: str = "", what: str = "expression") -> Any:
    """An expression parsed by the trimmed parser (bounded length, no removed functions); raises
    ``ConfigError`` naming ``where``; the caller checks its variables. CAN transforms, automation
    templates and the uplink's campaign conditions all use it."""
    prefix = f"{where}: " if where else ""
    if not isinstance(expr, str) or not expr.strip():
        raise ConfigError(f"{prefix}{what} must be a non-empty formula string")
    if len(expr) > MAX_EXPRESSION_LENGTH:
        raise ConfigError(f"{prefix}{what} is longer than {MAX_EXPRESSION_LENGTH} characters")
    try:
        parsed = _PARSER.parse(expr)
    except Exception as exc:
        raise ConfigError(f"{prefix}{what} {expr!r} does not parse: {exc}") from None
    for token in parsed.tokens:
        name = getattr(token, "index_", None)
        if isinstance(name, str) and name in _REMOVED_FUNCTIONS:
            raise ConfigError(f"{prefix}{what} {expr!r}: function {name} is not allowed")
    return parsed


def compile_math(expr: Any, where: str = "") -> Transform:
    """A formula in ``x`` (the DBC value, or the VSS value for vss2dbc) as a function."""
    prefix = f"{where}: " if where else ""
    parsed = parse_expression(expr, where, "transform 'math'")
    unknown = [v for v in parsed.variables() if v != "x"]
    if unknown:
        raise ConfigError(
            f"{prefix}transform 'math' {expr!r} uses {', '.join(unknown)}: not a known function, "
            f"and the only variable is x (the value)"
        )
    evaluate = _closure(parsed) or (lambda x: parsed.evaluate({"x": x}))

    def run(x: Any) -> Any:
        if isinstance(x, bool):
            x = int(x)
        elif not isinstance(x, (int, float)):
            raise TransformFailed(f"math needs a number, got {type(x).__name__}")
        try:
            result = evaluate(x)
        except Exception as exc:  # the library raises bare Exception too; a formula must not crash us
            raise TransformFailed(f"{expr!r} failed for x={x!r}: {exc}") from None
        if isinstance(result, bool):
            return result
        if not isinstance(result, (int, float)) or (isinstance(result, float) and not math.isfinite(result)):
            raise TransformFailed(f"{expr!r} gave {result!r} for x={x!r}")
        return result

    run.expression = expr  # type: ignore[attr-defined]
    return run


class _Func:
    """A function name on the formula's stack, waiting for its arguments."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn


def _closure(parsed: Any) -> Callable[[Any], Any] | None:
    """The parsed formula as nested closures: the same operations as the library's stack machine,
    without walking the token list on every value. ``None`` if a token is not understood."""
    stack: list[Any] = []
    try:
        for tok in parsed.tokens:
            kind, name = tok.type_, tok.index_
            if kind == 0:  # number
                const = tok.number_
                stack.append(lambda x, c=const: c)
            elif kind == 3:  # variable or function name
                if name == "x":
                    stack.append(lambda x: x)
                elif name in parsed.functions:
                    stack.append(_Func(parsed.functions[name]))
                else:
                    return None
            elif kind == 1:  # unary operator
                arg = stack.pop()
                if isinstance(arg, _Func):
                    return None
                stack.append(lambda x, f=parsed.ops1[name], a=arg: f(a(x)))
            elif kind == 2:  # binary operator (',' builds argument lists)
                b, a = stack.pop(), stack.pop()
                if isinstance(a, _Func) or isinstance(b, _Func):
                    return None
                stack.append(lambda x, f=parsed.ops2[name], a=a, b=b: f(a(x), b(x)))
            elif kind == 4:  # function call
                args, fn = stack.pop(), stack.pop()
                if not isinstance(fn, _Func) or isinstance(args, _Func):
                    return None
                stack.append(lambda x, f=fn.fn, a=args: _call(f, a(x)))
            else:
                return None
    except (IndexError, KeyError, AttributeError):
        return None
    if len(stack) != 1 or isinstance(stack[0], _Func):
        return None
    result: Callable[[Any], Any] = stack[0]
    return result


def _call(f: Callable[..., Any], args: Any) -> Any:
    return f(*args) if type(args) is list else f(args)


def compile_table(pairs: Any, from_key: Callable[[Any], Any], where: str = "") -> Transform:
    """A ``mapping`` list of ``{from, to}`` pairs as a look-up; no match fails the value."""
    prefix = f"{where}: " if where else ""
    if not isinstance(pairs, list) or not pairs:
        raise ConfigError(f"{prefix}transform 'mapping' must be a non-empty list of {{from, to}} pairs")
    table: dict[Any, Any] = {}
    for i, item in enumerate(pairs):
        if not isinstance(item, Mapping) or "from" not in item or "to" not in item:
            raise ConfigError(f"{prefix}transform 'mapping' item {i + 1} needs 'from' and 'to'")
        extra = set(item) - {"from", "to"}
        if extra:
            raise ConfigError(f"{prefix}transform 'mapping' item {i + 1}: unknown key {sorted(extra)[0]!r}")
        key = from_key(item["from"])
        table.setdefault(_hashable(key), item["to"])
    get = table.get
    missing = object()

    def run(x: Any) -> Any:
        out = get(_hashable(x), missing)
        if out is missing:
            raise NoMappingEntry(f"no mapping entry for {x!r}")
        return out

    run.table = table  # type: ignore[attr-defined]
    return run


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def compile_serial(spec: Any, where: str = "") -> Transform:
    """``serial: {prefix: KYB, digits: 8}`` (an anycar extension of KUKSA's format): a pack's or
    part's serial number carried on CAN as an integer and in VSS as the string the rest of the
    world uses (``KYB00001234``). Both ways in one rule: a number becomes the string, the string
    becomes the number, so the same block serves ``dbc2vss`` and ``vss2dbc``; a string of another
    shape, a negative or fractional number or one with more digits fails the value."""
    prefix = f"{where}: " if where else ""
    if not isinstance(spec, Mapping) or set(spec) - {"prefix", "digits"} or "digits" not in spec:
        raise ConfigError(f"{prefix}transform 'serial' needs {{prefix: TEXT, digits: N}}")
    head, digits = spec.get("prefix", ""), spec["digits"]
    if not isinstance(head, str) or len(head) > 16 or not all(c.isalnum() or c in "-_" for c in head):
        raise ConfigError(f"{prefix}transform 'serial': prefix is up to 16 of A-Z a-z 0-9 - _")
    if isinstance(digits, bool) or not isinstance(digits, int) or not 1 <= digits <= 18:
        raise ConfigError(f"{prefix}transform 'serial': digits is a whole number 1..18")
    top = 10**digits
    shape = re.compile(re.escape(head) + "([0-9]{" + str(digits) + "})")

    def run(x: Any) -> Any:
        if isinstance(x, str):
            m = shape.fullmatch(x)
            if m is None:
                raise TransformFailed(f"serial {x[:60]!r} is not {head} and {digits} digits")
            return int(m.group(1))
        if isinstance(x, bool) or not isinstance(x, (int, float)) or x != int(x) or not 0 <= x < top:
            raise TransformFailed(f"serial number {x!r} is not a whole number of at most {digits} digits")
        return f"{head}{int(x):0{digits}d}"

    return run


def compile_transform(
    spec: Any, from_key: Callable[[Any], Any] = lambda v: v, where: str = ""
) -> Transform | None:
    """``None`` (no transform) or the function a ``transform:`` block describes."""
    if spec is None:
        return None
    prefix = f"{where}: " if where else ""
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{prefix}'transform' must be a mapping with 'math' or 'mapping'")
    keys = set(spec)
    if keys == {"math"}:
        return compile_math(spec["math"], where)
    if keys == {"mapping"}:
        return compile_table(spec["mapping"], from_key, where)
    if keys == {"serial"}:
        return compile_serial(spec["serial"], where)
    raise ConfigError(
        f"{prefix}'transform' needs exactly one of 'math', 'mapping' or 'serial', got {sorted(keys)}"
    )
