"""Bytes on the wire: CBOR (RFC 8949) by default, JSON for people on request, optionally deflated.

The receiver tells the three apart by the first byte, so nothing outside the payload is needed
(MQTT 5's content type says the same for tools): ``{`` is JSON, a CBOR map starts with
0xA0-0xBB or 0xBF, zlib (RFC 1950) with 0x78. Decoding is bounded before it starts: at most
``max_bytes`` in, at most ``max_inflated`` after inflating, so a small bomb cannot grow.
"""

from __future__ import annotations

import json
import math
import zlib
from enum import StrEnum
from typing import Any

import cbor2

from anycar.wire import fastcheck
from anycar.wire.errors import WireError
from anycar.wire.schema import check_message

MAX_PAYLOAD = 256 * 1024
MAX_INFLATED = 2 * 1024 * 1024
COMPRESS_ABOVE = 256  # bytes: below this deflate costs more than it saves


class Format(StrEnum):
    CBOR = "cbor"
    JSON = "json"


_CBOR = Format.CBOR  # module constants: an enum member looked up on its class costs ~20x a global

CONTENT_TYPES = {Format.CBOR: "application/cbor", Format.JSON: "application/json"}


def encode(
    doc: dict[str, Any],
    fmt: Format | str = Format.CBOR,
    *,
    compress: bool = False,
    validate: bool = True,
) -> bytes:
    """The payload for ``doc``; with ``validate`` it must pass its kind's schema first."""
    if validate:
        check_message(doc)
    fmt = Format(fmt)
    try:
        if fmt is Format.CBOR:
            raw = cbor2.dumps(doc)
        else:
            raw = json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError, cbor2.CBOREncodeError) as exc:
        raise WireError(f"cannot encode as {fmt}: {exc}", reason="malformed") from None
    if compress and len(raw) > COMPRESS_ABOVE:
        return zlib.compress(raw, 6)
    return raw


def content_type(fmt: Format | str, deflated: bool) -> str:
    """What MQTT 5's content-type property says: ``application/cbor``, ``application/json+deflate`` ..."""
    return CONTENT_TYPES[Format(fmt)] + ("+deflate" if deflated else "")


def sniff(payload: bytes) -> tuple[Format, bool]:
    """(format, deflated) of a payload, from its first byte."""
    if not payload:
        raise WireError("empty payload", reason="malformed", where="payload")
    first = payload[0]
    if first == 0x78:
        return Format.CBOR, True  # the inner format is sniffed after inflating
    if first == 0x7B:
        return Format.JSON, False
    if 0xA0 <= first <= 0xBB or first == 0xBF:
        return Format.CBOR, False
    raise WireError(
        f"first byte 0x{first:02x} is neither JSON '{{', a CBOR map nor zlib",
        reason="malformed",
        where="payload",
    )


def _inflate(payload: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(payload, limit)
    except zlib.error as exc:
        raise WireError(f"not valid deflate data: {exc}", reason="malformed", where="payload") from None
    if inflater.unconsumed_tail or not inflater.eof:
        raise WireError(f"inflates past {limit} bytes (or is cut short)", reason="too_large", where="payload")
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def decode(
    payload: bytes,
    *,
    max_bytes: int = MAX_PAYLOAD,
    max_inflated: int = MAX_INFLATED,
    validate: bool = True,
) -> dict[str, Any]:
    """The message in ``payload``, checked against its kind's schema; ``WireError`` says why not."""
    if len(payload) > max_bytes:
        raise WireError(f"{len(payload)} bytes is more than {max_bytes}", reason="too_large", where="payload")
    first = payload[0] if payload else -1
    if 0xA0 <= first <= 0xBB or first == 0xBF:  # a CBOR map, not deflated: nearly every message
        fmt = _CBOR
    else:
        fmt, deflated = sniff(payload)
        if deflated:
            payload = _inflate(payload, max_inflated)
            fmt, inner_deflated = sniff(payload)
            if inner_deflated:
                raise WireError("deflated twice", reason="malformed", where="payload")
    try:
        if fmt is _CBOR:
            doc = cbor2.loads(payload)
        else:
            doc = json.loads(payload.decode("utf-8"), parse_constant=_reject_constant)
    except RecursionError:
        raise WireError("nested too deeply", reason="malformed", where="payload") from None
    except (ValueError, UnicodeDecodeError, cbor2.CBORDecodeError) as exc:
        raise WireError(f"not valid {fmt}: {exc}", reason="malformed", where="payload") from None
    if type(doc) is not dict and not isinstance(doc, dict):
        raise WireError(f"a message is a map, got {type(doc).__name__}", reason="malformed", where="payload")
    # the common message in one pass (ingest-worker); anything it is not sure of takes the
    # reference path below, which gives the error. CBOR only: its strings are valid UTF-8
    if fmt is _CBOR and doc.get("kind") == "telemetry" and (fastcheck._check or fastcheck.checker())(doc):
        return doc
    _check_plain(doc)
    if validate:
        check_message(doc)
    return doc


_PLAIN = (str, int, float, bool, type(None))


def _check_plain(doc: Any) -> None:
    """Only JSON's types (CBOR could carry tags, bytes, NaN): the two encodings mean the same.

    Iterative, so a deeply nested payload costs time linear in its size and no recursion. The
    exact built-in types are tested first by identity (ingest-speed: this walk was ~15 % of an
    ingest worker's CPU with ``isinstance`` chains); anything else takes the full checks."""
    stack = [doc]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            for key in item:
                if type(key) is not str and not isinstance(key, str):
                    raise WireError(f"map key {key!r} is not a string", reason="malformed", where="payload")
            children: Any = item.values()
        elif kind is list:
            children = item
        else:
            _check_leaf(item, stack)
            continue
        for value in children:
            kind = type(value)
            if kind is str or kind is int or kind is bool or value is None:
                continue
            if kind is float:
                if not math.isfinite(value):
                    raise WireError(f"{value} is not a finite number", reason="malformed", where="payload")
                continue
            if kind is dict or kind is list:
                stack.append(value)
            else:
                _check_leaf(value, stack)


def _check_leaf(item: Any, stack: list[Any]) -> None:
    """The slow path: subclasses of the JSON types (walked like them) and what is not JSON."""
    if isinstance(item, dict):
        for key, value in item.items():
            if not isinstance(key, str):
                raise WireError(f"map key {key!r} is not a string", reason="malformed", where="payload")
            stack.append(value)
    elif isinstance(item, list):
        stack.extend(item)
    elif isinstance(item, float):
        if not math.isfinite(item):
            raise WireError(f"{item} is not a finite number", reason="malformed", where="payload")
    elif not isinstance(item, _PLAIN):
        raise WireError(
            f"{type(item).__name__} is not a JSON type (string, number, bool, null, list, map)",
            reason="malformed",
            where="payload",
        )
