"""A provider stream parses its requests as ``lean_request``'s type (datapoints as bytes) and decodes
them itself: for any request, and any corruption of one, the broker ends up exactly as a simple
reading of the real kuksa.val.v2 message would leave it, with the same refusals, and a request the
real type refuses is refused whole, with the real type's error."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from google.protobuf.message import DecodeError
from hypothesis import given, settings
from hypothesis import strategies as st
from kuksa.val.v2 import types_pb2 as t2
from kuksa.val.v2 import val_pb2 as v2

from anycar.api.auth import Action, Grants
from anycar.api.grpc.common import InvalidRequest, error_v2
from anycar.api.grpc.convert import value_from_v2
from anycar.api.grpc.provider_stream import ProviderStream, parse_request
from anycar.api.grpc.val_v2 import ValV2Service
from anycar.api.grpc.wire import varint
from anycar.broker import SignalBroker
from anycar.errors import AnycarError
from anycar.model import Catalog

CATALOG = Catalog.load_default()
PATHS = [
    "Vehicle.Acceleration.Lateral",  # float
    "Vehicle.CurrentLocation.Altitude",  # double
    "Vehicle.ADAS.ABS.IsEngaged",  # boolean
    "Vehicle.Diagnostics.DTCCount",  # uint16
    "Vehicle.Chassis.SteeringWheel.Angle",  # int16
    "Vehicle.Cabin.Infotainment.HMI.CurrentLanguage",  # string
    "Vehicle.Diagnostics.DTCList",  # string[]
    "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",  # float, bounded 0-100
]
IDS = [CATALOG.get(p).id for p in PATHS] + [-1, -7, len(CATALOG._by_id), 2**31 - 1]
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "float": st.floats(width=32),
    "double": st.floats(),
    "bool": st.booleans(),
    "int32": st.integers(-(2**31), 2**31 - 1),
    "int64": st.integers(-(2**63), 2**63 - 1),
    "uint32": st.integers(0, 2**32 - 1),
    "uint64": st.integers(0, 2**64 - 1),
    "string": st.text(max_size=8),
}
STAMPS = st.sampled_from([None, (0, 0), (1_700_000_000, 1000), (1_700_000_000, 2000), (5, 999_999_999)])


@st.composite
def _datapoint(draw: st.DrawFn) -> tuple[Any, Any, Any]:
    kind = draw(st.sampled_from([*VALUES, "string_array", "float_array", None]))
    if kind is None:
        value = None
    elif kind.endswith("_array"):
        base = kind.removesuffix("_array")
        value = draw(st.lists(VALUES[base], max_size=3))
    else:
        value = draw(VALUES[kind])
    return kind, value, draw(STAMPS)


@st.composite
def _request(draw: st.DrawFn) -> bytes:
    request = v2.PublishValuesRequest(request_id=draw(st.integers(0, 2**32 - 1)))
    for sid in draw(st.lists(st.sampled_from(IDS), max_size=8, unique=True)):
        kind, value, stamp = draw(_datapoint())
        dp = request.data_points[sid]
        if stamp is not None:
            dp.timestamp.seconds, dp.timestamp.nanos = stamp
        if kind is not None:
            if kind.endswith("_array"):
                getattr(dp.value, kind).values.extend(value)
            else:
                setattr(dp.value, kind, value)
        elif draw(st.booleans()):
            dp.value.SetInParent()  # a Value with nothing set
    return v2.OpenProviderStreamRequest(publish_values_request=request).SerializeToString()


def _simple(broker: SignalBroker, service: ValV2Service, request: v2.PublishValuesRequest) -> dict[int, Any]:
    """The plain reading of the real message: each datapoint on its own, values of one moment
    published together, the refusals by id."""
    provider = broker.register_provider("simple")
    errors: dict[int, Any] = {}
    groups: dict[tuple[int, int], list[Any]] = {}
    for sid in request.data_points:
        dp = request.data_points[sid]
        try:
            if sid < 0 or sid >= len(CATALOG._by_id):
                raise service.access.by_id_error(Grants(open=True), sid, Action.PROVIDE)
            sig = CATALOG.by_id(sid)
            provider.claim([sig.path])
            value = value_from_v2(sig, dp.value)
        except AnycarError as exc:
            errors[sid] = error_v2(exc)
            continue
        groups.setdefault((dp.timestamp.seconds, dp.timestamp.nanos), []).append((sig, value))
    for (seconds, nanos), batch in groups.items():
        stamp = seconds + nanos * 1e-9 if seconds or nanos else None
        for path, refusal in provider.publish_signals(batch, stamp).items():
            errors[CATALOG.get(path).id] = error_v2(refusal)
    return {k: (e.code, e.message) for k, e in errors.items()}


def _state(broker: SignalBroker) -> dict[str, Any]:
    out = {}
    for path in PATHS:
        dp = broker.get(path)
        if dp is not None:
            # a missing timestamp is the time of receipt (the stamps given are all before 1.75e9)
            out[path] = (repr(dp.value), "now" if dp.timestamp > 1.75e9 else dp.timestamp)
    return out


def _run(raw: bytes) -> tuple[Any, Any]:
    """(the lean path's outcome, the simple path's): the broker's state and the refusals, or the
    error that refused the whole request."""
    try:
        real = v2.OpenProviderStreamRequest.FromString(raw)
    except DecodeError as exc:
        expected: Any = (
            "refused",
            f"/kuksa.val.v2.VAL/OpenProviderStream: the request is not a valid message: {exc}",
        )
    else:
        if real.WhichOneof("action") != "publish_values_request":
            return "another action", "another action"  # parsed alike by both types: not this test's
        broker = SignalBroker(CATALOG)
        service = ValV2Service(broker, None)  # type: ignore[arg-type] # open grants: no token checks
        refusals = _simple(broker, service, real.publish_values_request)
        expected = (_state(broker), refusals)
    broker = SignalBroker(CATALOG)
    service = ValV2Service(broker, None)  # type: ignore[arg-type] # open grants: no token checks
    stream = ProviderStream(broker, service.access, Grants(open=True), "lean")
    try:
        lean = parse_request(raw)
    except DecodeError:
        return "refused by the parse", expected  # the interceptor answers with the real type's error
    try:
        asyncio.run(stream.handle(lean))
    except InvalidRequest as exc:
        return ("refused", str(exc)), expected
    refusals: dict[int, Any] = {}
    if not stream.outgoing.empty():
        response = stream.outgoing.get_nowait().publish_values_response
        refusals = {k: (response.status[k].code, response.status[k].message) for k in response.status}
    return (_state(broker), refusals), expected


@settings(max_examples=150, deadline=None)
@given(_request())
def test_a_request_leaves_the_broker_as_the_real_message_would(raw: bytes) -> None:
    ours, expected = _run(raw)
    assert ours == expected


@settings(max_examples=300, deadline=None)
@given(_request(), st.data())
def test_a_corrupted_request_is_refused_or_read_as_the_real_type_reads_it(
    raw: bytes, data: st.DataObject
) -> None:
    if not raw:
        return
    at = data.draw(st.integers(0, len(raw) - 1))
    how = data.draw(st.sampled_from(["flip", "cut", "byte"]))
    if how == "flip":
        raw = raw[:at] + bytes([raw[at] ^ data.draw(st.integers(1, 255))]) + raw[at + 1 :]
    elif how == "cut":
        raw = raw[:at]
    else:
        raw = raw[:at] + bytes([data.draw(st.integers(0, 255))]) + raw[at:]
    ours, expected = _run(raw)
    if ours == "refused by the parse":
        with pytest.raises(DecodeError):
            v2.OpenProviderStreamRequest.FromString(raw)
        return
    assert ours == expected


def test_bad_utf8_in_a_string_value_refuses_the_whole_request() -> None:
    """Found nowhere but in the value's bytes: the lean type does not look inside them."""
    request = v2.PublishValuesRequest(request_id=1)
    request.data_points[CATALOG.get(PATHS[0]).id].value.float = 1.5
    request.data_points[CATALOG.get(PATHS[5]).id].value.string = "a"
    good = v2.OpenProviderStreamRequest(publish_values_request=request).SerializeToString()
    raw = good.replace(b"\x5a\x01a", b"\x5a\x01\xff")  # Value.string = 11: one byte, not UTF-8
    assert raw != good
    with pytest.raises(DecodeError, match="UTF-8"):
        v2.OpenProviderStreamRequest.FromString(raw)
    ours, expected = _run(raw)
    assert ours == expected and ours[0] == "refused" and "UTF-8" in ours[1]


def test_a_negative_id_is_unknown_not_the_catalogs_last_signal() -> None:
    last = CATALOG.by_id(len(CATALOG._by_id) - 1)
    request = v2.PublishValuesRequest(request_id=1)
    request.data_points[-1].value.uint32 = 7
    ours, expected = _run(v2.OpenProviderStreamRequest(publish_values_request=request).SerializeToString())
    assert ours == expected
    state, refusals = ours
    assert last.path not in state and list(refusals) == [-1]
    assert refusals[-1][0] == t2.ERROR_CODE_NOT_FOUND


@pytest.mark.parametrize(
    ("path", "kind", "value"),
    [
        (PATHS[0], "uint32", 2**31),  # a float signal: a value field as long as a float's, not one
        (PATHS[1], "uint64", 2**60),  # a double signal: the same length as a double's
        (PATHS[0], "int64", -(2**30)),
        (PATHS[3], "uint32", 7),  # a uint16 signal given the canonical uint32 of 7, then a float
        (PATHS[3], "float", 7.0),
    ],
)
def test_a_value_field_of_the_quick_length_but_another_type_is_read_as_its_type(
    path: str, kind: str, value: Any
) -> None:
    request = v2.PublishValuesRequest(request_id=1)
    # id 0 is read first (a small int key: protobuf's map keeps those in order), the slow way,
    # and its timestamp field is then known: the signal under test takes the quick way's checks
    dp = request.data_points[0]
    assert CATALOG.by_id(0).datatype == "boolean"
    dp.timestamp.seconds, dp.timestamp.nanos = 1_700_000_000, 1000
    dp.value.bool = True
    dp = request.data_points[CATALOG.get(path).id]
    dp.timestamp.seconds, dp.timestamp.nanos = 1_700_000_000, 1000
    setattr(dp.value, kind, value)
    ours, expected = _run(v2.OpenProviderStreamRequest(publish_values_request=request).SerializeToString())
    assert ours == expected


def _entry(sid: int, datapoint: bytes, extra: bytes = b"") -> bytes:
    body = b"\x08" + varint(sid) + b"\x12" + varint(len(datapoint)) + datapoint + extra
    return b"\x12" + varint(len(body)) + body


@pytest.mark.parametrize(
    "entries",
    [
        # a map entry with an unknown field (17, fixed32) holding a corrupt datapoint: protobuf puts
        # the entry among the unknown fields, where the lean type never reads it
        [_entry(CATALOG.get(PATHS[1]).id, b"\x12\x06", b"\x8d\x01\x00\x00\x00\x00")],
        # the same after a good entry
        [
            _entry(CATALOG.get(PATHS[0]).id, b""),
            _entry(CATALOG.get(PATHS[0]).id + 1, b"\x0a\x03", b"\x18\x01"),
        ],
    ],
)
def test_a_corrupt_datapoint_the_map_drops_still_refuses_the_request(entries: list[bytes]) -> None:
    inner = b"\x08\x01" + b"".join(entries)
    raw = b"\x12" + varint(len(inner)) + inner
    with pytest.raises(DecodeError):
        v2.OpenProviderStreamRequest.FromString(raw)
    with pytest.raises(DecodeError):
        parse_request(raw)


def test_an_entry_with_an_unknown_field_is_dropped_by_both_types_alike() -> None:
    sig = CATALOG.get(PATHS[0])
    dp = t2.Datapoint()
    dp.value.float = 1.5
    raw_inner = b"\x08\x01" + _entry(sig.id, dp.SerializeToString(), b"\x8d\x01\x00\x00\x00\x00")
    raw = b"\x12" + varint(len(raw_inner)) + raw_inner
    assert len(v2.OpenProviderStreamRequest.FromString(raw).publish_values_request.data_points) == 0
    ours, expected = _run(raw)
    assert ours == expected
