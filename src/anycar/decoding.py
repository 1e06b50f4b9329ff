"""Decoding JSON and YAML that come from outside (VISS, REST, accessories, data files): bounded
and strict.

``json.loads`` alone is not enough for bytes an attacker chooses: a value nested 5,000 deep
raises ``RecursionError`` (or worse, later, in whatever walks the value), invalid UTF-8 raises
``UnicodeDecodeError``, ``"\\ud800"`` decodes to a lone surrogate that no encoder can write back,
``NaN`` and ``1e999`` are not JSON numbers, and a 5,000-digit integer raises ``ValueError``.
``loads`` checks size and depth *before* parsing and turns every one of these into
``DecodingError``, a 400 with a one-line message, so every API answers the same clear error.
``load_document`` does the same for data files (manifests, overlays, mappings, profiles,
mounts), JSON or YAML, with ``file:line`` in the message; ``yaml_errors`` guards other YAML uses.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

import yaml

from anycar.errors import AnycarError

MAX_DEPTH = 32
MAX_BYTES = 1 << 20
_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class DecodingError(AnycarError):
    """Input that is not acceptable JSON or YAML; the message says why and where."""

    code = 400
    reason = "bad_request"

    def __init__(self, message: str, *, detail: str = "", line: int | None = None) -> None:
        super().__init__(message)
        self.detail = detail or message
        self.line = line


def _constant(name: str) -> Any:
    raise DecodingError(f"{name} is not valid JSON")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise DecodingError(f"number {text[:20]} is out of range")
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
    """The JSON value in ``data``, or ``DecodingError`` naming ``what`` and the problem."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
        if len(raw) > max_bytes:
            raise DecodingError(f"{what} of {len(raw)} bytes exceeds the limit of {max_bytes} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodingError(f"{what} is not UTF-8: {exc.reason} at byte {exc.start}") from None
    elif isinstance(data, str):
        if len(data) > max_bytes:
            raise DecodingError(f"{what} of {len(data)} characters exceeds the limit of {max_bytes} bytes")
        try:
            size = len(data.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise DecodingError(f"{what} holds a lone surrogate at character {exc.start}") from None
        if size > max_bytes:
            raise DecodingError(f"{what} of {size} bytes exceeds the limit of {max_bytes} bytes")
        text = data
    else:
        raise DecodingError(f"{what} must be text, got {type(data).__name__}")
    if len(text) > max_depth and depth_of(text) > max_depth:
        raise DecodingError(f"{what} nests deeper than {max_depth} levels")
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_float)
    except json.JSONDecodeError as exc:
        raise DecodingError(
            f"{what} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            detail=exc.msg,
            line=exc.lineno,
        ) from None
    except RecursionError:  # only if the depth check above was bypassed by a very low limit
        raise DecodingError(f"{what} nests too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise DecodingError(f"{what} is not acceptable JSON: {str(exc)[:120]}") from None
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
        raise DecodingError(
            f"{what} holds a lone surrogate (\\u{ord(text[exc.start]):04x}) in a string"
        ) from None


def load_document(text: str, source: str, *, max_depth: int = 64) -> Any:
    """A data file's content: JSON if ``source`` ends in ``.json``, else YAML (safe loader).
    Errors read ``source:line: invalid JSON|YAML: problem``."""
    if source.endswith(".json"):
        try:
            return loads(text, max_bytes=max(len(text) * 4, 1), max_depth=max_depth, what="the document")
        except DecodingError as exc:
            line = exc.line
            raise DecodingError(f"{source}{f':{line}' if line else ''}: invalid JSON: {exc.detail}") from None
    with yaml_errors(text, source, max_depth=max_depth):
        return yaml.safe_load(text)


@contextlib.contextmanager
def yaml_errors(text: str, source: str, *, max_depth: int = 64) -> Iterator[None]:
    """Check ``text``'s flow nesting first, then turn whatever PyYAML raises while the block
    runs (its errors, deep block nesting, huge integers) into one ``DecodingError``."""
    if len(text) > max_depth and depth_of(text) > max_depth:
        deep = f"nests deeper than {max_depth} levels"
        raise DecodingError(f"{source}: invalid YAML: {deep}", detail=deep)
    try:
        yield
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        position = getattr(exc, "position", None)  # a ReaderError: a character YAML refuses
        line = (
            mark.line + 1
            if mark
            else text.count("\n", 0, position) + 1
            if isinstance(position, int)
            else None
        )
        where = f"{source}:{line}" if line else source
        problem = " ".join(str(getattr(exc, "problem", None) or getattr(exc, "reason", None) or exc).split())
        raise DecodingError(f"{where}: invalid YAML: {problem}", detail=problem) from None
    except RecursionError:
        raise DecodingError(f"{source}: invalid YAML: nests too deeply", detail="nests too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise DecodingError(f"{source}: invalid YAML: {str(exc)[:120]}", detail=str(exc)[:120]) from None
