"""The provider stream checks each value in its own loop (session 7): it skips a signal's
``validate`` for values inside ``accepted_range`` and hands the checked values to
``Provider.publish_checked``. These tests pin that both shortcuts change nothing: the range is one
where ``validate`` returns the value as it is, and the counters (published, refused, the broker's
updates) move as ``publish_signals`` moves them, for any request."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from kuksa.val.v2 import val_pb2 as v2

from anycar.api.auth import Grants
from anycar.api.grpc.provider_stream import ProviderStream, accepted_range, parse_request
from anycar.api.grpc.val_v2 import ValV2Service
from anycar.broker import SignalBroker
from anycar.model import Catalog, NodeType, Signal
from anycar.model.datatypes import FLOAT_TYPES, INTEGER_RANGES, ValueRejected
from test_api_grpc_lean_request import _request, _simple

CATALOG = Catalog.load_default()
NUMERIC = sorted([*FLOAT_TYPES, *INTEGER_RANGES])
BOUND = st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False), st.integers(-(2**65), 2**65))


@st.composite
def _signal(draw: st.DrawFn) -> Signal:
    low, high = draw(BOUND), draw(BOUND)
    if low is not None and high is not None and low > high:
        low, high = high, low
    allowed = draw(st.one_of(st.none(), st.just((1, 2.5))))
    return Signal(
        "Vehicle.Probe",
        0,
        NodeType.SENSOR,
        draw(st.sampled_from(NUMERIC)),
        min=low,
        max=high,
        allowed=allowed,
    )


def _value_for(datatype: str) -> st.SearchStrategy[Any]:
    if datatype in FLOAT_TYPES:  # what a float or double Value field decodes to
        return st.floats(width=32) if datatype == "float" else st.floats()
    return st.integers(-(2**64), 2**65)  # an integer Value field's int


@settings(max_examples=400, deadline=None)
@given(st.one_of(_signal(), st.sampled_from([s for s in CATALOG if s.datatype in NUMERIC])), st.data())
def test_a_value_inside_the_accepted_range_is_one_validate_returns_as_it_is(
    sig: Signal, data: st.DataObject
) -> None:
    lo, hi = accepted_range(sig)
    if lo is None:
        assert sig.allowed  # the shortcut is off only where a list of allowed values applies
        return
    if sig.datatype in INTEGER_RANGES and sig.min is not None:  # the validator's bound, never below
        assert lo >= math.ceil(sig.min)
    near = [b for b in (lo, hi) if math.isfinite(b)]  # the edges, where a rounding slip shows
    if near and sig.datatype in INTEGER_RANGES:
        edge = st.sampled_from(near).flatmap(lambda b: st.integers(math.floor(b) - 2, math.ceil(b) + 2))
    elif near:
        edge = st.sampled_from(near).flatmap(
            lambda b: st.sampled_from([b, math.nextafter(b, -math.inf), math.nextafter(b, math.inf)])
        )
    else:
        edge = _value_for(sig.datatype)
    value = data.draw(st.one_of(_value_for(sig.datatype), edge))
    if lo <= value <= hi:
        out = sig.validate(value)
        assert out is value or (out == value and type(out) is type(value))
    else:  # outside: validate decides, and it refuses (the range is the validators' own)
        try:
            sig.validate(value)
        except ValueRejected:
            return
        raise AssertionError(
            f"{value!r} outside [{lo}, {hi}] was accepted by {sig.datatype} {sig.min} {sig.max}"
        )


def test_bounds_at_the_edges() -> None:
    battery = CATALOG.get("Vehicle.Powertrain.TractionBattery.StateOfCharge.Current")
    assert accepted_range(battery) == (0.0, 100.0)
    assert accepted_range(CATALOG.get("Vehicle.Chassis.SteeringWheel.Angle"))[0] >= -(2**15)
    lo, hi = accepted_range(CATALOG.get("Vehicle.CurrentLocation.Altitude"))  # a double
    assert lo <= 0.0 <= hi
    assert not lo <= math.nan <= hi  # NaN takes validate's way, which refuses it
    assert accepted_range(CATALOG.get("Vehicle.ADAS.ABS.IsEngaged")) == (None, None)  # boolean


def _counters(broker: SignalBroker, provider_name: str) -> tuple[int, int, int, int]:
    provider = next(p for p in broker.providers() if p.name.startswith(provider_name))
    return provider.published, provider.rejected, broker.updates, broker.rejected


@settings(max_examples=200, deadline=None)
@given(_request())
def test_counters_move_as_publish_signals_moves_them(raw: bytes) -> None:
    real = v2.OpenProviderStreamRequest.FromString(raw)
    broker = SignalBroker(CATALOG)
    service = ValV2Service(broker, None)  # type: ignore[arg-type] # open grants: no token checks
    _simple(broker, service, real.publish_values_request)
    expected = _counters(broker, "simple")
    broker = SignalBroker(CATALOG)
    service = ValV2Service(broker, None)  # type: ignore[arg-type] # open grants: no token checks
    stream = ProviderStream(broker, service.access, Grants(open=True), "lean")
    asyncio.run(stream.handle(parse_request(raw)))
    assert _counters(broker, "grpc:anonymous@lean") == expected
    stream.close()


def test_a_closed_provider_is_refused_before_anything_is_stored() -> None:
    broker = SignalBroker(CATALOG)
    service = ValV2Service(broker, None)  # type: ignore[arg-type] # open grants: no token checks
    stream = ProviderStream(broker, service.access, Grants(open=True), "lean")
    sig = CATALOG.get("Vehicle.Acceleration.Lateral")
    request = v2.PublishValuesRequest(request_id=1)
    dp = request.data_points[sig.id]
    dp.timestamp.seconds, dp.value.float = 1_700_000_000, 1.5
    stream.provider.closed = True
    raw = v2.OpenProviderStreamRequest(publish_values_request=request).SerializeToString()
    try:
        asyncio.run(stream.handle(parse_request(raw)))
    except Exception as exc:
        assert "closed" in str(exc)
    else:
        raise AssertionError("a closed provider published")
    assert broker.get(sig.path) is None
