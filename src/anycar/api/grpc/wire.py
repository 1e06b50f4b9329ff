"""kuksa.val.v2 ``SubscribeResponse`` / ``SubscribeByIdResponse`` written straight as wire bytes.

Why: through protobuf's Python API an entry costs a map insert, a field write and a copy, each a
descriptor look-up and a wrapper object (about 4,500 instructions an entry, then the serialization;
docs/performance.md), and the message is only ever serialized. The entries of a batch share one
timestamp and a signal's key never changes, so an entry here is a cached head, the batch's
timestamp bytes and the value's few bytes.

The bytes are exactly what protobuf writes for the same entries in the same order: canonical field
order, shortest varints, the map entry's key and value always present (tests check it byte for
byte). A value this module does not encode itself (arrays, a Python type the field does not expect,
a float beyond float32's range) is written by protobuf for that one entry, so every odd case is
protobuf's own answer, including its errors.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from functools import partial
from operator import itemgetter
from typing import Any, cast

from google.protobuf.timestamp_pb2 import Timestamp
from kuksa.val.v2 import val_pb2 as v2

from anycar.api.grpc.convert import fill_datapoint_v2, value_spec
from anycar.model import Catalog, Signal

_ONE = [bytes((i,)) for i in range(128)]
_U64 = (1 << 64) - 1


def varint(n: int) -> bytes:
    """The base-128 varint of ``0 <= n < 2**64``."""
    if n < 0x80:
        return _ONE[n]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: its tag, the payload's length, the payload."""
    return tag + varint(len(payload)) + payload


def timestamp_field(stamp: float) -> bytes:
    """``Datapoint.timestamp`` (field 1) of a broker time, split as the protobuf path splits it."""
    seconds = int(stamp)
    ts = Timestamp(seconds=seconds, nanos=int((stamp - seconds) * 1e9))
    return field(b"\x0a", ts.SerializeToString())


class Unencodable(Exception):
    """This value is not one the fast encoders write; protobuf writes the entry instead."""


# A value encoder gives ``Datapoint.value`` (field 2, length-delimited) holding the ``Value`` with
# its one oneof field set; it raises (Unencodable, struct.error, OverflowError, TypeError) for a
# value it does not write, and the caller hands that entry to protobuf.
ValueEncoder = Callable[[Any], bytes]

# fixed-size values: the whole field is one struct call (a C call, no Python frame)
_float = partial(struct.Struct("<4sf").pack, b"\x12\x06\x8d\x01")  # Value.float = 17, fixed32
_double = partial(struct.Struct("<4sd").pack, b"\x12\x0a\x91\x01")  # Value.double = 18, fixed64
_BOOL = {True: b"\x12\x02\x60\x01", False: b"\x12\x02\x60\x00"}  # Value.bool = 12, varint


def _strict_float(pack: Callable[[Any], bytes]) -> ValueEncoder:
    def encode(value: Any) -> bytes:
        if value.__class__ is not float:
            raise Unencodable  # an int or bool: protobuf converts it (rare; not worth a second path)
        return pack(value)

    return encode


def _bool(value: Any) -> bytes:
    if value.__class__ is not bool:
        raise Unencodable
    return _BOOL[value]


def _integer(tag: bytes, low: int, high: int, zigzag: bool) -> ValueEncoder:
    def encode(value: Any) -> bytes:
        if value.__class__ is not int or not low <= value <= high:
            raise Unencodable  # protobuf's range and type errors stay protobuf's
        inner = tag + varint((value << 1) ^ (value >> 63) if zigzag else value)
        return b"\x12" + _ONE[len(inner)] + inner  # at most 13 bytes

    return encode


def _string(value: Any) -> bytes:
    if value.__class__ is not str:
        raise Unencodable
    inner = field(b"\x5a", value.encode())  # Value.string = 11; a lone surrogate raises: protobuf's error
    return b"\x12" + varint(len(inner)) + inner


ENCODERS: dict[str, ValueEncoder] = {
    "float": _strict_float(_float),
    "double": _strict_float(_double),
    "bool": _bool,
    # kuksa.val.v2's Value.int32 and int64 are sint32/sint64 on the wire (zigzag: small negative
    # numbers stay short); uint32 and uint64 plain varints
    "int32": _integer(b"\x68", -(2**31), 2**31 - 1, zigzag=True),
    "int64": _integer(b"\x70", -(2**63), 2**63 - 1, zigzag=True),
    "uint32": _integer(b"\x78", 0, 2**32 - 1, zigzag=False),
    "uint64": _integer(b"\x80\x01", 0, 2**64 - 1, zigzag=False),
    "string": _string,
}


def key_field(key: str | int) -> bytes:
    """The map entry's key field: a path (``SubscribeResponse``) or a signal id (``SubscribeByIdResponse``)."""
    if isinstance(key, str):
        return field(b"\x0a", key.encode())
    return b"\x08" + varint(key & _U64)


def entry_head(key: bytes, datapoint_length: int) -> bytes:
    """What comes before a map entry's ``Datapoint`` bytes: the entry's tag and length, its key
    field, the value field's tag and length."""
    body_length = len(key) + 1 + len(varint(datapoint_length)) + datapoint_length
    return b"\x0a" + varint(body_length) + key + b"\x12" + varint(datapoint_length)


# A value field's C-level encoder for the hot loop: (the Python type it takes, value -> field bytes).
# Integers go through a cache of field bytes per value (a dict look-up in C), filled as values
# come, up to INT_CACHE values per field: counters and enumerations repeat, and a miss is only
# the slower, exact path.
INT_CACHE = 4096
_INT_TAILS: dict[str, dict[int, bytes]] = {name: {} for name in ("int32", "int64", "uint32", "uint64")}
_FAST: dict[str, tuple[type, Callable[[Any], bytes]]] = {
    "float": (float, _float),
    "double": (float, _double),
    "bool": (bool, _BOOL.__getitem__),
}
_FAST.update({name: (int, tails.__getitem__) for name, tails in _INT_TAILS.items()})
_Known = tuple[type, Callable[[Any], bytes], dict[int, bytes]]
_LEFT = (Unencodable, struct.error, OverflowError, TypeError, KeyError)
_path_of = itemgetter(0)


class SubscribeEncoder:
    """Batches of broker ``Datapoint``s -> ``SubscribeResponse`` (or, ``by_id``,
    ``SubscribeByIdResponse``) wire bytes, one message per run of the batch without a repeated
    signal (a map holds a signal once), oldest first.

    The hot loop is C calls only (dict look-ups, a struct pack or a cached field, ``len``): per
    signal and timestamp length it keeps the entry heads by value length; anything else (the first
    value of a signal, a value of an odd type, a new length) takes ``_entry``, which fills the caches.
    """

    def __init__(self, catalog: Catalog, *, by_id: bool) -> None:
        self.catalog = catalog
        self.find = catalog.find
        self.generation = catalog.generation
        self.by_id = by_id
        self.make = v2.SubscribeByIdResponse if by_id else v2.SubscribeResponse
        self.stamped_at: float | None = None
        self.ts_field = b""
        # timestamp field length -> path -> (the Python type, value -> field bytes, value field
        # length -> entry head); entries for short Datapoints only (< 128 bytes), so this stays
        # bounded by the signals times 128
        self.fast_by_length: dict[int, dict[str, _Known]] = {}
        self.fast: dict[str, _Known] = {}

    def messages(self, batch: list[Any]) -> list[bytes]:
        if self.catalog.generation != self.generation:  # an overlay may have changed a datatype
            self.generation = self.catalog.generation
            self.fast_by_length.clear()
            self.fast = self.fast_by_length[len(self.ts_field)] = {}
        if len(set(map(_path_of, batch))) == len(batch):
            return [self._message(batch)]
        runs: list[list[Any]] = [[]]
        seen: set[str] = set()
        for dp in batch:
            if dp[0] in seen:
                runs.append([])
                seen.clear()
            seen.add(dp[0])
            runs[-1].append(dp)
        return [self._message(run) for run in runs]

    def _message(self, run: list[Any]) -> bytes:
        parts: list[bytes] = []
        append = parts.append
        stamped_at, ts_field, fast = self.stamped_at, self.ts_field, self.fast
        left = _LEFT
        for path, value, ts in run:
            if ts != stamped_at:
                stamped_at = self.stamped_at = ts
                ts_field = self.ts_field = timestamp_field(ts)
                known_here = self.fast_by_length.get(len(ts_field))
                if known_here is None:
                    known_here = self.fast_by_length[len(ts_field)] = {}
                fast = known_here
                self.fast = fast
            known = fast.get(path)
            if known is not None and value.__class__ is known[0]:
                try:
                    tail = known[1](value)
                    head = known[2][len(tail)]
                except left:
                    pass
                else:
                    append(head)
                    append(ts_field)
                    append(tail)
                    continue
            append(self._entry(path, value, ts))
        return b"".join(parts)

    def _entry(self, path: str, value: Any, ts: float) -> bytes:
        """One entry the slow way, exact for every value; fills the hot loop's caches."""
        sig = self.find(path)
        if sig is None:
            return b""  # removed from the catalog meanwhile: nothing to say about it
        name, array = value_spec(sig.datatype)
        if value is not None and not array:
            try:
                tail = ENCODERS[name](value)
            except (Unencodable, struct.error, OverflowError, TypeError):
                return self._by_protobuf(sig, value, ts)
        elif value is None:
            tail = b""
        else:
            return self._by_protobuf(sig, value, ts)
        key = key_field(sig.id if self.by_id else path)
        length = len(self.ts_field) + len(tail)
        head = entry_head(key, length)
        if length < 128 and value is not None:
            fast_type, encode = _FAST.get(name, (type(None), None))
            if encode is not None and value.__class__ is fast_type:
                tails = _INT_TAILS.get(name)
                if tails is not None and len(tails) < INT_CACHE:
                    tails[cast(int, value)] = tail  # an int: its class was checked
                known = self.fast.get(path)
                if known is None or known[0] is not fast_type or known[1] is not encode:
                    known = self.fast[path] = (fast_type, encode, {})  # a new type: old heads go
                known[2][len(tail)] = head
        return head + self.ts_field + tail

    def _by_protobuf(self, sig: Signal, value: Any, ts: float) -> bytes:
        """Arrays, and values the encoders leave (an odd type, a float past float32): protobuf's
        bytes, or its error."""
        self.fast.pop(sig.path, None)
        one = self.make()
        fill_datapoint_v2(one.entries[sig.id if self.by_id else sig.path], sig, value, ts)
        return one.SerializeToString()
