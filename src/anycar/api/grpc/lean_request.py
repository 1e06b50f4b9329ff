"""``OpenProviderStreamRequest`` as the hub parses it: the same wire format, datapoints kept as bytes.

Why: a provider's ``PublishValuesRequest`` carries ~100 datapoints, and reading each one's
``timestamp`` and ``value`` through protobuf's Python API makes a wrapper object per sub-message and
costs ~1,000 instructions an attribute (docs/performance.md). Declared here as ``bytes``, the same
fields (same numbers, wire type 2) parse to the bytes of the sub-messages: the values of one message
share one timestamp, compared as bytes and parsed once; a value's bytes are decoded straight (a
float or double: one struct call) or looked up among values seen before.

Nothing is accepted that the kuksa.val.v2 types would refuse: anything that is not exactly the
expected shape is parsed with the real ``Timestamp`` / ``Value`` type, and a sub-message that does
not parse refuses the whole request, as the strict decoding of the whole message would (tests check
both against the real types).
"""

from __future__ import annotations

import struct
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp
from kuksa.val.v2 import types_pb2 as t2
from kuksa.val.v2 import val_pb2 as v2

from anycar.api.grpc.convert import VALUE_SPEC

_PACKAGE = "anycar.lean"
_BYTES = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES


def _message_types() -> tuple[Any, Any]:
    """(OpenProviderStreamRequest, PublishValuesRequest) classes: kuksa's descriptors copied, the
    datapoint's two sub-messages retyped as bytes, everything else (numbers, other actions) kept."""
    pool = descriptor_pool.Default()
    try:
        return (
            message_factory.GetMessageClass(
                pool.FindMessageTypeByName(f"{_PACKAGE}.OpenProviderStreamRequest")
            ),
            message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.PublishValuesRequest")),
        )
    except KeyError:
        pass  # not built yet in this process
    fd = descriptor_pb2.FileDescriptorProto(name="anycar/lean_provider_stream.proto", package=_PACKAGE)
    fd.syntax = "proto3"
    fd.dependency.append(v2.DESCRIPTOR.name)
    datapoint = fd.message_type.add()
    t2.Datapoint.DESCRIPTOR.CopyToProto(datapoint)
    for f in datapoint.field:  # timestamp = 1, value = 2
        f.type = _BYTES
        f.ClearField("type_name")
    publish = fd.message_type.add()
    v2.PublishValuesRequest.DESCRIPTOR.CopyToProto(publish)
    for f in publish.nested_type[0].field:  # the map entry: key, value
        if f.name == "value":
            f.type_name = f".{_PACKAGE}.Datapoint"
    for f in publish.field:
        if f.name == "data_points":
            f.type_name = f".{_PACKAGE}.PublishValuesRequest.DataPointsEntry"
    stream = fd.message_type.add()
    v2.OpenProviderStreamRequest.DESCRIPTOR.CopyToProto(stream)
    for f in stream.field:
        if f.name == "publish_values_request":
            f.type_name = f".{_PACKAGE}.PublishValuesRequest"
    pool.Add(fd)
    return _message_types()


OpenProviderStreamRequest, PublishValuesRequest = _message_types()


class CorruptRequest(Exception):
    """A datapoint's timestamp or value is not a valid message: the request is refused whole."""

    def __init__(self, error: DecodeError) -> None:
        super().__init__(str(error))


def timestamp_key(raw: bytes) -> tuple[int, int]:
    """(seconds, nanos) of a datapoint's timestamp bytes."""
    try:
        ts = Timestamp.FromString(raw)
    except DecodeError as exc:
        raise CorruptRequest(exc) from None
    return ts.seconds, ts.nanos


def parse_value(raw: bytes) -> t2.Value:
    """The real ``Value`` of a datapoint's value bytes (refusing what protobuf refuses)."""
    try:
        return t2.Value.FromString(raw)
    except DecodeError as exc:
        raise CorruptRequest(exc) from None


# Value bytes -> (oneof field, Python value), for short scalar values parsed before (integers,
# booleans, enumeration strings repeat): a pure function of the bytes, shared, and bounded
VALUE_CACHE_SIZE = 4096
VALUE_CACHE_BYTES = 40
_seen: dict[bytes, tuple[str, Any]] = {}

# per VSS datatype: (Value field, is an array, the bytes' struct for a float or double and their
# tag, or None: the cache)
_FLOAT = struct.Struct("<2sf").unpack
_DOUBLE = struct.Struct("<2sd").unpack
DECODE_SPEC: dict[str, tuple[str, bool, Any, bytes]] = {
    dt: (name, array, _FLOAT if name == "float" else _DOUBLE if name == "double" else None, tag)
    for dt, (name, array) in VALUE_SPEC.items()
    for tag in [b"\x8d\x01" if name == "float" else b"\x91\x01" if name == "double" else b""]
}


def scalar_of(raw: bytes) -> tuple[str | None, Any, t2.Value]:
    """(oneof field, its Python value, the message) of value bytes that are not a float or double
    in their one canonical form; fills the cache with short scalars."""
    value = parse_value(raw)
    which = value.WhichOneof("typed_value")
    got = getattr(value, which) if which is not None else None
    short_scalar = which is not None and not which.endswith("_array") and len(raw) <= VALUE_CACHE_BYTES
    if short_scalar and len(_seen) < VALUE_CACHE_SIZE:
        _seen[raw] = (which, got)
    return which, got, value


seen_values = _seen
