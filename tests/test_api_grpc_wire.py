"""The wire encoders of the Subscribe stream write exactly protobuf's bytes, or leave the value to
protobuf: for any Python value in any scalar Value field, in range or not, of the right type or not."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kuksa.val.v2 import types_pb2 as t2
from kuksa.val.v2 import val_pb2 as v2

from anycar.api.grpc import wire

ANY_VALUE = (
    st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.floats(width=32)
    | st.text(max_size=200)
    | st.none()
)
LEFT_TO_PROTOBUF = (wire.Unencodable, struct.error, OverflowError, TypeError)


@given(st.sampled_from(sorted(wire.ENCODERS)), ANY_VALUE)
def test_a_value_is_protobufs_bytes_or_left_to_protobuf(name: str, value: Any) -> None:
    try:
        ours = wire.ENCODERS[name](value)
    except LEFT_TO_PROTOBUF:
        return
    dp = t2.Datapoint()
    setattr(dp.value, name, value)  # what we wrote, protobuf must take without complaint
    assert ours == dp.SerializeToString()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("float", 1.5),
        ("double", -0.0),
        ("bool", False),
        ("int32", -1),
        ("int64", -(2**63)),
        ("uint64", 2**64 - 1),
    ],
)
def test_the_usual_values_are_encoded_here(name: str, value: Any) -> None:
    """The cases the hub sends most are not quietly left to protobuf (that would be slow, not wrong)."""
    dp = t2.Datapoint()
    setattr(dp.value, name, value)
    assert wire.ENCODERS[name](value) == dp.SerializeToString()


@given(st.integers(0, 2**64 - 1))
def test_varint(n: int) -> None:
    message = t2.Value(uint64=n)
    assert b"\x80\x01" + wire.varint(n) == message.SerializeToString()


@given(
    st.text(min_size=1, max_size=300) | st.integers(0, 2**31 - 1),
    st.floats(0, 4e9),
    st.sampled_from(["float", "string", None]),
    st.data(),
)
def test_an_entry_is_protobufs_map_entry(
    key: Any, stamp: float, name: str | None, data: st.DataObject
) -> None:
    """Head, timestamp and value field joined are the entry protobuf writes, for keys and
    Datapoints of any length (varint lengths over one byte included)."""
    make = v2.SubscribeResponse if isinstance(key, str) else v2.SubscribeByIdResponse
    one = make()
    dp = one.entries[key]
    seconds = int(stamp)
    dp.timestamp.seconds, dp.timestamp.nanos = seconds, int((stamp - seconds) * 1e9)
    tail = b""
    if name == "float":
        value = data.draw(st.floats(width=32, allow_nan=False))
        dp.value.float = value
        tail = wire.ENCODERS["float"](value)
    elif name == "string":
        value = data.draw(st.text(max_size=300))
        dp.value.string = value
        tail = wire.ENCODERS["string"](value)
    ts = wire.timestamp_field(stamp)
    assert wire.entry_head(wire.key_field(key), len(ts) + len(tail)) + ts + tail == one.SerializeToString()
