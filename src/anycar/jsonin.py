"""Decoding JSON that comes from outside (VISS, REST, accessories): bounded and strict.

``json.loads`` alone is not enough for bytes an attacker chooses: a value nested 5,000 deep
raises ``RecursionError`` (or worse, later, in whatever walks the value), invalid UTF-8 raises
``UnicodeDecodeError``, ``"\\ud800"`` decodes to a lone surrogate that no encoder can write back,
``NaN`` and ``1e999`` are not JSON numbers, and a 5,000-digit integer raises ``ValueError``.
``loads`` checks size and depth *before* parsing and turns every one of these into
``BadJson``, a 400 with a one-line message, so every API answers the same clear error.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

from anycar.errors import AnycarError

MAX_DEPTH = 32
MAX_BYTES = 1 << 20
_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class BadJson(AnycarError):
    """Input that is not acceptable JSON; the message says why and where."""

    code = 400
    reason = "bad_request"


def _constant(name: str) -> Any:
    raise BadJson(f"{name} is not valid JSON")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadJson(f"number {text[:20]} is out of range")
    return value


def depth_of(text: str) -> int:
    """How deep arrays and objects nest in ``text`` (strings skipped), in linear time."""
    if text.count("[") + text.count("{") == 0:
        return 0
    steps = (
        1 if tok in "[{" else -1
        for tok in _STRING_OR_BRACKET.findall(text)
        if len(tok) == 1 and tok in "[]{}"
    )
    return max(accumulate(steps, initial=0))


def loads(
    data: str | bytes, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH, what: str = "input"
) -> Any:
    """The JSON value in ``data``, or ``BadJson`` naming ``what`` and the problem."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
        if len(raw) > max_bytes:
            raise BadJson(f"{what} of {len(raw)} bytes exceeds the limit of {max_bytes} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadJson(f"{what} is not UTF-8: {exc.reason} at byte {exc.start}") from None
    elif isinstance(data, str):
        if len(data) > max_bytes:
            raise BadJson(f"{what} of {len(data)} characters exceeds the limit of {max_bytes} bytes")
        try:
            size = len(data.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise BadJson(f"{what} holds a lone surrogate at character {exc.start}") from None
        if size > max_bytes:
            raise BadJson(f"{what} of {size} bytes exceeds the limit of {max_bytes} bytes")
        text = data
    else:
        raise BadJson(f"{what} must be text, got {type(data).__name__}")
    if len(text) > max_depth and depth_of(text) > max_depth:
        raise BadJson(f"{what} nests deeper than {max_depth} levels")
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_float)
    except json.JSONDecodeError as exc:
        raise BadJson(f"{what} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:  # only if the depth check above was bypassed by a very low limit
        raise BadJson(f"{what} nests too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise BadJson(f"{what} is not acceptable JSON: {str(exc)[:120]}") from None
    if _SURROGATE_ESCAPE.search(text):
        _refuse_surrogates(value, what)
    return value


def _refuse_surrogates(value: Any, what: str) -> None:
    """A ``\\ud800`` escape without its pair is valid JSON but not text: refuse it."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            _check_text(item, what)
        elif isinstance(item, dict):
            for key, sub in item.items():
                _check_text(key, what)
                stack.append(sub)
        elif isinstance(item, list):
            stack.extend(item)


def _check_text(text: str, what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadJson(f"{what} holds a lone surrogate (\\u{ord(text[exc.start]):04x}) in a string") from None
