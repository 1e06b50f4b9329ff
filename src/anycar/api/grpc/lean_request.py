"""``OpenProviderStreamRequest`` as the hub parses it: the same wire format, datapoints kept as bytes.

Why: a provider's ``PublishValuesRequest`` carries ~100 datapoints, and reading each one's
``timestamp`` and ``value`` through protobuf's Python API makes a wrapper object per message and
costs ~1,000 instructions an attribute (docs/performance.md). Declared here as ``bytes``, the map's
values (same field numbers, wire type 2) parse to each ``Datapoint``'s bytes. In the usual form
(its timestamp field, then its value field) the values of one message share the timestamp field's
bytes, compared by prefix and parsed once; the value field is decoded straight (a float or double:
one struct call) or looked up among value fields seen before.

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
from kuksa.val.v2 import types_pb2 as t2
from kuksa.val.v2 import val_pb2 as v2

from anycar.api.grpc.convert import VALUE_SPEC
from anycar.api.grpc.wire import field

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
    publish = fd.message_type.add()
    v2.PublishValuesRequest.DESCRIPTOR.CopyToProto(publish)
    for f in publish.nested_type[0].field:  # the map entry: key, value (a Datapoint's bytes)
        if f.name == "value":
            f.type = _BYTES
            f.ClearField("type_name")
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


def parse_datapoint(raw: bytes) -> t2.Datapoint:
    """The real ``Datapoint`` of a datapoint's bytes (refusing what protobuf refuses)."""
    try:
        return t2.Datapoint.FromString(raw)
    except DecodeError as exc:
        raise CorruptRequest(exc) from None


# A value field's bytes (tag, length, the Value) -> (oneof field, Python value), for short scalar
# values parsed before (integers, booleans, enumeration strings repeat): a pure function of the
# bytes, shared, and bounded
VALUE_CACHE_SIZE = 4096
VALUE_CACHE_BYTES = 40
seen_values: dict[bytes, tuple[str, Any]] = {}

# per VSS datatype: (Value field, is an array, a struct for the value field of a float or double
# and that field's head, or None: the cache)
_FLOAT = struct.Struct("<4sf").unpack
_DOUBLE = struct.Struct("<4sd").unpack
DECODE_SPEC: dict[str, tuple[str, bool, Any, bytes]] = {
    dt: (name, array, _FLOAT if name == "float" else _DOUBLE if name == "double" else None, head)
    for dt, (name, array) in VALUE_SPEC.items()
    for head in [b"\x12\x06\x8d\x01" if name == "float" else b"\x12\x0a\x91\x01" if name == "double" else b""]
}


def read_datapoint(raw: bytes) -> tuple[t2.Datapoint, tuple[int, int], bytes | None]:
    """A datapoint the quick ways did not take: the real message, its (seconds, nanos), and its
    timestamp field's bytes if ``raw`` is in the usual form (then later datapoints with the same
    field take the quick way); fills the value cache with a short scalar."""
    dp = parse_datapoint(raw)
    ts = dp.timestamp
    stamp = ts.SerializeToString()
    prefix = field(b"\x0a", stamp) if dp.HasField("timestamp") else b""
    value = dp.value
    value_field = field(b"\x12", value.SerializeToString()) if dp.HasField("value") else b""
    if raw != prefix + value_field:
        return dp, (ts.seconds, ts.nanos), None  # another form (field order, unknown fields): no cache
    which = value.WhichOneof("typed_value")
    short_scalar = (
        which is not None and not which.endswith("_array") and len(value_field) <= VALUE_CACHE_BYTES
    )
    if short_scalar and len(seen_values) < VALUE_CACHE_SIZE:
        seen_values[value_field] = (which, getattr(value, which))
    return dp, (ts.seconds, ts.nanos), prefix
