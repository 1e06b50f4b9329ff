"""Canonical JSON (RFC 8785, JCS) so that a signature over a document (an accessory manifest, a
campaign, a command) is the same bytes in every language: keys sorted by UTF-16 code units, no
whitespace, ECMAScript number formatting.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any


class CanonicalError(ValueError):
    """A value that has no canonical JSON form (NaN, infinity, non-string keys, other types)."""


def canonical_json(value: Any) -> bytes:
    try:
        return _encode(value, "$").encode("utf-8")
    except UnicodeEncodeError as exc:  # "\ud800": a lone surrogate is not text, so has no UTF-8
        raise CanonicalError(
            f"a string holds a lone surrogate (\\u{ord(exc.object[exc.start]):04x})"
        ) from None
    except RecursionError:
        raise CanonicalError("the value nests too deeply") from None


def _encode(value: Any, where: str) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _number(value, where)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_encode(v, f"{where}[{i}]") for i, v in enumerate(value)) + "]"
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise CanonicalError(f"{where}: key {key!r} is not a string")
        items = sorted(value.items(), key=lambda kv: kv[0].encode("utf-16-be"))
        return (
            "{"
            + ",".join(json.dumps(k, ensure_ascii=False) + ":" + _encode(v, f"{where}.{k}") for k, v in items)
            + "}"
        )
    raise CanonicalError(f"{where}: {type(value).__name__} has no JSON form")


def _number(value: float, where: str) -> str:
    """ECMAScript Number.prototype.toString for finite doubles (what JCS requires)."""
    if math.isnan(value) or math.isinf(value):
        raise CanonicalError(f"{where}: {value} has no JSON form")
    if value == 0:
        return "0"
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" not in text:
        return text
    mantissa, exp = text.split("e")
    exponent = int(exp)
    if -7 < exponent < 21:
        # Python uses exponents from 1e16 / below 1e-4; ECMAScript writes these out in full
        return format(Decimal(text), "f")
    if mantissa.endswith(".0"):
        mantissa = mantissa[:-2]
    return f"{mantissa}e{'+' if exponent > 0 else '-'}{abs(exponent)}"
