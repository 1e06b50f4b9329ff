"""COPY ... (FORMAT binary) rows for the ingest's two time-series tables (pg-tail, session 7).

The text form made PostgreSQL parse every number of a row back from decimal (``float8in``, a
``strtod`` each: a ``signal_batches`` row holds 21 of them) and every array through
``array_in``'s quoting rules; session 6 measured 3.7-5.1 µs a row binary against 7.8-11.1 µs text
on a bare table. Binary rows carry each double as its 8 bytes (so every value, NaN, the
infinities and -0.0 included, is stored bit for bit, as ``repr`` did) and each array as its
element type, dimension and length-prefixed elements, which ``array_recv`` takes without a parse.

Text goes as UTF-8 and PostgreSQL checks it as it checked the text form's: a NUL or an invalid
byte is SQLSTATE 22021, a ``varchar(256)`` element over its length 22001, so a message the
database cannot hold is still refused for its data (``anycar.fleet.store.refused_for_its_data``).
A Python string that cannot be UTF-8 (a lone surrogate; the wire's decoders never make one)
raises ``UnicodeEncodeError`` here, as psycopg raised it encoding the text form.

The stream is written whole (``Copy.write``): the signature, the rows, the trailer.
"""

from __future__ import annotations

import struct
import weakref
from collections.abc import Callable, Sequence
from typing import Any

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"  # flags, extension
TRAILER = b"\xff\xff"
NULL = b"\xff\xff\xff\xff"  # a NULL field or array element: length -1
FLOAT8, TEXT, VARCHAR = 701, 25, 1043  # element type OIDs (pg_type), as array_recv checks them
_CACHE_MAX = 100_000

_int4 = struct.Struct(">i").pack
_float8_field = struct.Struct(">id").pack  # length 8, the double
_head = struct.Struct(">iiiiii").pack  # field length, ndim, has-null flag, element OID, n, lower bound
_EIGHT = b"\x00\x00\x00\x08"  # an element's length: 8 bytes
# n -> (the field's head, the packer of n (length, double) pairs, the pairs' argument list with
# the lengths in place): the values go in by one slice assignment and are packed at once, all at
# C level (pg-worker: packing the doubles alone, then cutting them into n slices to join with
# their lengths, cost 2.6 times the instructions)
_FLOAT8_ARRAYS: dict[int, tuple[bytes, Callable[..., bytes], list[Any]]] = {}


def _float8_parts(n: int) -> tuple[bytes, Callable[..., bytes], list[Any]]:
    found = _FLOAT8_ARRAYS.get(n)
    if found is None:
        head = _head(20 + 12 * n, 1, 0, FLOAT8, n, 1)
        found = _FLOAT8_ARRAYS[n] = (head, struct.Struct(">" + "id" * n).pack, [8, 0.0] * n)
    return found


def float8_array(values: Sequence[float | None]) -> bytes:
    """A ``float8[]`` field (its length first): one dimension, NULL for ``None``."""
    n = len(values)
    if None not in values and n > 1:
        head, pack, pairs = _float8_parts(n)
        args = pairs.copy()
        args[1::2] = values
        return head + pack(*args)
    parts = [NULL if v is None else _float8_field(8, v) for v in values]
    body = b"".join(parts)
    return _head(20 + len(body), 1, int(None in values), FLOAT8, n, 1) + body


def float8_repeat(value: float, n: int) -> bytes:
    """A ``float8[]`` field of ``n`` times ``value`` (a message's values sampled at one time:
    the usual ``tss``), the same bytes ``float8_array`` writes for them."""
    return _head(20 + 12 * n, 1, 0, FLOAT8, n, 1) + _float8_field(8, value) * n


class _JsonFloats(dict[float, bytes]):
    """A float -> its element of a ``vals`` array: ``repr`` (what ``json.dumps`` writes for a
    finite float, PostgreSQL's ``NaN``/``Infinity`` aside) as a length-prefixed text, computed on
    a miss (pg-worker: ``repr`` and the encoding of ten values were ~40 % of a message's row).
    Zeros are never kept (``0.0 == -0.0`` would give one the other's text); NaN, never equal to
    itself, is kept only under the one object. Cleared when full: what repeats is recent."""

    def __missing__(self, value: float) -> bytes:
        text = repr(value).encode()
        found = _int4(len(text)) + text
        if value != 0:
            if len(self) >= _CACHE_MAX:
                self.clear()
            self[value] = found
        return found


JSON_FLOATS = _JsonFloats()


def json_float_array(values: Sequence[float]) -> bytes:
    """A ``text[]`` field of floats as JSON text (no NULL; every value a ``float``): the bytes
    ``fresh_text_array(list(map(repr, values)))`` writes."""
    body = b"".join(map(JSON_FLOATS.__getitem__, values))
    return _head(20 + len(body), 1, 0, TEXT, len(values), 1) + body


class _Elements(dict[str, bytes]):
    """text -> its array element (length-prefixed UTF-8), computed on a miss (bounded)."""

    def __missing__(self, text: str) -> bytes:
        raw = text.encode()
        found = _int4(len(raw)) + raw
        if len(self) < _CACHE_MAX:
            self[text] = found
        return found


ELEMENTS = _Elements()


def text_array(values: Sequence[str | None], oid: int = TEXT) -> bytes:
    """A ``text[]`` (``oid`` TEXT) or ``varchar[]`` (VARCHAR) field: NULL for ``None``."""
    get = ELEMENTS.__getitem__
    if None in values:
        body = b"".join([NULL if v is None else get(v) for v in values])
        flag = 1
    else:
        body = b"".join(map(get, values))  # type: ignore[arg-type]
        flag = 0
    return _head(20 + len(body), 1, flag, oid, len(values), 1) + body


def fresh_text_array(texts: Sequence[str]) -> bytes:
    """A ``text[]`` field of texts that seldom repeat (a message's values as JSON), no NULL:
    built by C-level maps, nothing cached."""
    raw = list(map(str.encode, texts))
    body = b"".join(map(bytes.__add__, map(_int4, map(len, raw)), raw))
    return _head(20 + len(body), 1, 0, TEXT, len(raw), 1) + body


def empty_array(oid: int) -> bytes:
    """An empty array field of element type ``oid`` (no dimensions, as PostgreSQL keeps ``{}``)."""
    return _int4(12) + struct.pack(">iii", 0, 0, oid)


def text_field(text: str) -> bytes:
    """A ``text`` or ``varchar`` field."""
    return ELEMENTS[text]


def float8_field(value: float | None) -> bytes:
    """A ``float8`` field, NULL for ``None`` (an int or a bool as the float it equals)."""
    return NULL if value is None else _float8_field(8, value)


def int4_field(value: int) -> bytes:
    return b"\x00\x00\x00\x04" + _int4(value)


def stream(rows: Sequence[bytes]) -> bytes:
    """A whole COPY binary stream of ``rows`` (each a tuple as ``row`` makes it)."""
    return SIGNATURE + b"".join(rows) + TRAILER


def row(*fields: bytes) -> bytes:
    """One tuple: its field count, then its fields (each already length-prefixed)."""
    return len(fields).to_bytes(2, "big") + b"".join(fields)


# ---- the same arrays as binary statement parameters (pg-worker, session 8) -------------------
# The per-batch statements (the dedup, the vehicles UPDATE, the rollup upsert) took their unnest
# arrays as text literals: the worker joined each value's text (a dict look-up of each float's
# ``repr``, ``str`` of each int: ~14 % of a commit's instructions) and PostgreSQL parsed them
# back (``array_in``, ``float8in``). As binary parameters each array is the bytes above (without
# the COPY field's length), packed at C level, and PostgreSQL reads them with ``array_recv``.
# Each kind is a ``bytes`` of its own type, sent with its array type's OID by the dumper below.


class Float8Param(bytes):
    """A ``float8[]`` statement parameter in binary form."""


class Int4Param(bytes):
    """An ``integer[]`` statement parameter in binary form."""


class Int8Param(bytes):
    """A ``bigint[]`` statement parameter in binary form."""


class BoolParam(bytes):
    """A ``boolean[]`` statement parameter in binary form."""


class TextParam(bytes):
    """A ``text[]`` statement parameter in binary form."""


_ARRAY_OIDS: dict[type, int] = {
    Float8Param: 1022,
    Int4Param: 1007,
    Int8Param: 1016,
    BoolParam: 1000,
    TextParam: 1009,
}
INT4, INT8, BOOL = 23, 20, 16
_INT_PARTS: dict[tuple[int, int], tuple[bytes, Callable[..., bytes], list[int]]] = {}
_BOOLS = {True: b"\x00\x00\x00\x01\x01", False: b"\x00\x00\x00\x01\x00", None: NULL}


def float8_param(values: Sequence[float | None]) -> Float8Param:
    """``values`` as a ``float8[]`` parameter (NULL for None); an int goes as the float it equals."""
    return Float8Param(float8_array(values)[4:])


def _int_parts(n: int, oid: int) -> tuple[bytes, Callable[..., bytes], list[int]]:
    found = _INT_PARTS.get((n, oid))
    if found is None:
        size, code = (4, "i") if oid == INT4 else (8, "q")
        head = _head(20 + (4 + size) * n, 1, 0, oid, n, 1)[4:]
        found = _INT_PARTS[(n, oid)] = (head, struct.Struct(">" + f"i{code}" * n).pack, [size, 0] * n)
    return found


def int_param(values: Sequence[int], oid: int = INT4) -> Int4Param | Int8Param:
    """``values`` (no None) as an ``integer[]`` (``oid`` INT4) or ``bigint[]`` (INT8) parameter.
    Raises ``struct.error`` for an int out of the type's range (the caller sends the text form
    then, which PostgreSQL refuses for its data, as it did)."""
    kind = Int4Param if oid == INT4 else Int8Param
    if not values:
        return kind(empty_array(oid)[4:])
    head, pack, pairs = _int_parts(len(values), oid)
    args = pairs.copy()
    args[1::2] = values
    return kind(head + pack(*args))


def bool_param(values: Sequence[bool | None]) -> BoolParam:
    """``values`` as a ``boolean[]`` parameter (NULL for None)."""
    body = b"".join(map(_BOOLS.__getitem__, values))
    return BoolParam(_head(0, 1, int(None in values), BOOL, len(values), 1)[4:] + body)


def text_param(values: Sequence[str | None]) -> TextParam:
    """``values`` as a ``text[]`` parameter (NULL for None), elements cached as for COPY."""
    return TextParam(text_array(values)[4:])


def param(
    make: Callable[[Sequence[Any]], bytes], values: Sequence[Any], text: Callable[[Any], str]
) -> bytes | str:
    """``make(values)``, or the text literal ``text(values)`` when a value does not fit the binary
    form (an int past the column's range, a number past a double's): PostgreSQL then refuses
    that text for its data, as it did when every array went as text."""
    try:
        return make(values)
    except (struct.error, OverflowError, TypeError):
        return text(values)


def _dumpers() -> dict[type, type]:
    """A psycopg dumper for each kind: binary, with its array type's OID. The OID is the
    instance's, not the class's, so registering one does not replace psycopg's own dumper of
    that array type looked up by OID (COPY's ``set_types``)."""
    from psycopg.adapt import Dumper
    from psycopg.pq import Format

    def init(self: Any, cls: type, context: Any = None) -> None:
        Dumper.__init__(self, cls, context)
        self.oid = _ARRAY_OIDS[cls]

    return {
        kind: type(
            f"{kind.__name__}Dumper",
            (Dumper,),
            {"format": Format.BINARY, "__init__": init, "dump": lambda self, obj: obj},
        )
        for kind in _ARRAY_OIDS
    }


_DUMPERS = _dumpers()
_READY: weakref.WeakSet[Any] = weakref.WeakSet()  # the connections that have them


def binary_params(conn: Any) -> None:
    """Let ``conn`` (psycopg's own connection) send these as binary arrays; once a connection,
    so whatever made the connection (before this module was imported or not), it has them."""
    if conn not in _READY:
        for kind, dumper in _DUMPERS.items():
            conn.adapters.register_dumper(kind, dumper)
        _READY.add(conn)
