"""VSS datatypes and the coercion rules every write goes through.

Rules (also in docs/signals.md):
- boolean: only ``True``/``False``; 0 and 1 are refused, they are too easy to send by mistake.
- integers (int8..uint64): an ``int``, or a ``float`` with no fractional part (3.0 -> 3);
  the datatype's own range and the signal's min/max both apply.
- float/double: an ``int`` or ``float``; NaN and infinities are refused; ``float`` must fit
  an IEEE single.
- string: a ``str`` of at most ``MAX_STRING_LENGTH`` characters; ``pattern`` must match whole.
- arrays (``T[]``): a list or tuple of at most ``arraysize`` (or ``MAX_ARRAY_LENGTH``)
  elements, each checked as ``T``; min, max and allowed apply to each element.
- ``allowed`` lists the only values accepted.
Validators are compiled once per signal into closures, because they run on every write.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

MAX_STRING_LENGTH = 4096
MAX_ARRAY_LENGTH = 1024
FLOAT32_MAX = 3.4028234663852886e38

INTEGER_RANGES: dict[str, tuple[int, int]] = {
    "int8": (-(2**7), 2**7 - 1),
    "uint8": (0, 2**8 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}
FLOAT_TYPES = frozenset({"float", "double"})
SCALAR_TYPES = frozenset({*INTEGER_RANGES, *FLOAT_TYPES, "boolean", "string"})
DATATYPES = frozenset({*SCALAR_TYPES, *(t + "[]" for t in SCALAR_TYPES)})

Validator = Callable[[Any], Any]


class ValueRejected(ValueError):
    """Raised by a validator; the broker adds the path."""


def element_type(datatype: str) -> str:
    return datatype[:-2] if datatype.endswith("[]") else datatype


def is_array(datatype: str) -> bool:
    return datatype.endswith("[]")


def is_numeric(datatype: str) -> bool:
    base = element_type(datatype)
    return base in INTEGER_RANGES or base in FLOAT_TYPES


def _scalar_validator(
    datatype: str,
    minimum: float | None,
    maximum: float | None,
    allowed: frozenset[Any] | None,
    pattern: re.Pattern[str] | None,
    max_string: int,
) -> Validator:
    if datatype == "boolean":

        def check_bool(v: Any) -> Any:
            if type(v) is not bool:
                raise ValueRejected(f"expected boolean, got {type(v).__name__} {v!r:.40}")
            return v

        return _with_allowed(check_bool, allowed)

    if datatype == "string":

        def check_str(v: Any) -> Any:
            if type(v) is not str:
                raise ValueRejected(f"expected string, got {type(v).__name__} {v!r:.40}")
            if len(v) > max_string:
                raise ValueRejected(f"string of {len(v)} characters exceeds {max_string}")
            if pattern is not None and pattern.fullmatch(v) is None:
                raise ValueRejected(f"{v!r:.60} does not match pattern {pattern.pattern!r}")
            return v

        return _with_allowed(check_str, allowed)

    if datatype in INTEGER_RANGES:
        lo, hi = INTEGER_RANGES[datatype]
        if minimum is not None:
            lo = max(lo, math.ceil(minimum))
        if maximum is not None:
            hi = min(hi, math.floor(maximum))

        def check_int(v: Any) -> Any:
            t = type(v)
            if t is not int:
                if t is float and math.isfinite(v) and v.is_integer():
                    v = int(v)
                else:
                    raise ValueRejected(f"expected {datatype}, got {t.__name__} {v!r:.40}")
            if v < lo or v > hi:
                raise ValueRejected(f"{v} is outside [{lo}, {hi}]")
            return v

        return _with_allowed(check_int, allowed)

    if datatype in FLOAT_TYPES:
        limit = FLOAT32_MAX if datatype == "float" else math.inf
        flo = -limit if minimum is None else float(minimum)
        fhi = limit if maximum is None else float(maximum)

        def check_float(v: Any) -> Any:
            t = type(v)
            if t is not float:
                if t is int:
                    v = float(v)
                else:
                    raise ValueRejected(f"expected {datatype}, got {t.__name__} {v!r:.40}")
            if not (flo <= v <= fhi):  # also refuses NaN
                if v != v or v in (math.inf, -math.inf):
                    raise ValueRejected(f"{v} is not a finite number")
                raise ValueRejected(f"{v} is outside [{flo:g}, {fhi:g}]")
            return v

        return _with_allowed(check_float, allowed)

    raise ValueError(f"unknown datatype {datatype!r}")


def _with_allowed(check: Validator, allowed: frozenset[Any] | None) -> Validator:
    if not allowed:
        return check

    def check_allowed(v: Any) -> Any:
        v = check(v)
        if v not in allowed:
            shown = sorted(map(str, allowed))[:8]
            raise ValueRejected(f"{v!r:.40} is not one of the allowed values {shown}")
        return v

    return check_allowed


def compile_validator(
    datatype: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    allowed: Sequence[Any] | None = None,
    pattern: str | None = None,
    arraysize: int | None = None,
    max_string: int = MAX_STRING_LENGTH,
    max_array: int = MAX_ARRAY_LENGTH,
) -> Validator:
    """Build the function that checks and coerces one signal's values."""
    if datatype not in DATATYPES:
        raise ValueError(f"unknown datatype {datatype!r}; expected one of {sorted(DATATYPES)}")
    compiled = re.compile(pattern) if pattern else None
    allowed_set = frozenset(allowed) if allowed else None
    scalar = _scalar_validator(element_type(datatype), minimum, maximum, allowed_set, compiled, max_string)
    if not is_array(datatype):
        return scalar
    limit = arraysize if arraysize is not None else max_array

    def check_array(v: Any) -> Any:
        if type(v) not in (list, tuple):
            raise ValueRejected(f"expected {datatype} (a list), got {type(v).__name__}")
        if len(v) > limit:
            raise ValueRejected(f"array of {len(v)} elements exceeds {limit}")
        out = []
        for i, item in enumerate(v):
            try:
                out.append(scalar(item))
            except ValueRejected as exc:
                raise ValueRejected(f"element [{i}]: {exc}") from None
        return out

    return check_array


def parse_text(datatype: str, text: str) -> Any:
    """Turn the text form of a value (VISS wire format, command line) into a Python value.

    The result still has to pass the signal's validator.
    """
    if not isinstance(text, str):
        return text
    if is_array(datatype):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueRejected(f"expected a JSON array for {datatype}: {exc.msg}") from None
        if not isinstance(items, list):
            raise ValueRejected(f"expected a JSON array for {datatype}")
        base = element_type(datatype)
        return [parse_text(base, x) if isinstance(x, str) and base != "string" else x for x in items]
    if datatype == "string":
        return text
    if datatype == "boolean":
        low = text.strip().lower()
        if low in ("true", "false"):
            return low == "true"
        raise ValueRejected(f"expected 'true' or 'false', got {text!r:.40}")
    try:
        if datatype in INTEGER_RANGES:
            return int(text.strip())
        return float(text.strip())
    except ValueError:
        raise ValueRejected(f"expected {datatype}, got {text!r:.40}") from None


def to_text(value: Any) -> str:
    """The VISS text form of a value (booleans lower-case, arrays as JSON)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value))
    return str(value)
