"""The Subscribe stream's fast message build (wire bytes: cached entry heads, a shared timestamp)
gives, byte for byte, the messages of filling each datapoint on its own through protobuf, for any
mix of types, values and stamps, by path and by id."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from kuksa.val.v2 import val_pb2 as v2

from anycar.api.auth import Grants
from anycar.api.grpc.convert import fill_datapoint_v2
from anycar.api.grpc.val_v2 import ValV2Service
from anycar.broker import SignalBroker
from anycar.model import Catalog

CATALOG = Catalog.load_default()
INT8 = st.integers(-128, 127)
FLOATS = st.floats(-1e6, 1e6, width=32)
# sensors without bounds, one per datatype, and values each accepts
SIGNALS: dict[str, st.SearchStrategy[Any]] = {
    "Vehicle.ADAS.ABS.IsEngaged": st.booleans(),
    "Vehicle.ADAS.ObstacleDetection.Front.Center.TimeGap": st.integers(0, 2**32 - 1),
    "Vehicle.Acceleration.Lateral": FLOATS,
    "Vehicle.Cabin.Infotainment.HMI.CurrentLanguage": st.text(max_size=5),
    "Vehicle.Chassis.SteeringWheel.Angle": st.integers(-(2**15), 2**15 - 1),
    "Vehicle.CurrentLocation.Altitude": st.floats(-1e9, 1e9),
    "Vehicle.Diagnostics.DTCCount": st.integers(0, 255),
    "Vehicle.Diagnostics.DTCList": st.lists(st.text(max_size=3), max_size=3),
    "Vehicle.Powertrain.CombustionEngine.EngineCoolant.LifeRemaining": st.integers(-(2**31), 2**31 - 1),
    "Vehicle.Powertrain.TractionBattery.CellVoltage.CellVoltages": st.lists(FLOATS, max_size=3),
    "Vehicle.Powertrain.Transmission.CurrentGear": INT8,
}
PATHS = list(SIGNALS)
STAMPS = [1_700_000_000.000001, 1_700_000_000.5, 1_700_000_001.25]


@st.composite
def _update(draw: st.DrawFn) -> tuple[str, Any, float]:
    path = draw(st.sampled_from(PATHS))
    value = draw(st.none() | SIGNALS[path])
    return path, value, draw(st.sampled_from(STAMPS))


def _reference(updates: list[tuple[str, Any, float]], by_id: bool = False) -> list[bytes]:
    """One datapoint filled per update through protobuf; a new message when a path repeats (a map
    per message). A message's bytes are its entries' in order, each as protobuf writes it."""
    make = v2.SubscribeByIdResponse if by_id else v2.SubscribeResponse
    messages: list[list[bytes]] = [[]]
    seen: set[str] = set()
    for path, value, stamp in updates:
        if path in seen:
            messages.append([])
            seen.clear()
        seen.add(path)
        one = make()
        sig = CATALOG.get(path)
        fill_datapoint_v2(one.entries[sig.id if by_id else path], sig, value, stamp)
        messages[-1].append(one.SerializeToString())
    return [b"".join(m) for m in messages]


async def _built(batches: list[list[tuple[str, Any, float]]], by_id: bool = False) -> list[list[bytes]]:
    broker = SignalBroker(CATALOG)
    service = ValV2Service(broker, None)  # type: ignore[arg-type] # open grants: no token checks
    provider = broker.register_provider("p", PATHS)
    signals = [CATALOG.get(p) for p in PATHS]
    stream = service._stream(service._subscribe(Grants(open=True), signals, 1000, None), signals, by_id=by_id)
    make = v2.SubscribeByIdResponse if by_id else v2.SubscribeResponse
    await stream.__anext__()  # the initial state
    out = []
    for batch in batches:
        for path, value, stamp in batch:  # queued one at a time: the subscriber takes them as one batch
            assert provider.publish_many([(path, value)], stamp) == {}
        messages: list[bytes] = []
        while sum(len(make.FromString(m).entries) for m in messages) < len(batch):
            messages.append(await asyncio.wait_for(stream.__anext__(), 5))
        out.append(messages)
    await stream.aclose()  # type: ignore[attr-defined] # an async generator
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(_update(), min_size=1, max_size=12), min_size=1, max_size=4))
def test_subscribe_messages_equal_datapoints_filled_one_by_one(
    batches: list[list[tuple[str, Any, float]]],
) -> None:
    assert asyncio.run(_built(batches)) == [_reference(b) for b in batches]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.lists(_update(), min_size=1, max_size=12), min_size=1, max_size=3))
def test_subscribe_by_id_messages_equal_datapoints_filled_one_by_one(
    batches: list[list[tuple[str, Any, float]]],
) -> None:
    assert asyncio.run(_built(batches, by_id=True)) == [_reference(b, by_id=True) for b in batches]


async def test_the_first_message_and_long_strings_are_protobufs_own() -> None:
    """A string past the cached heads' 128 bytes, and a value of a type the fast encoder leaves
    (an int for a float signal) come out as protobuf writes them."""
    path, other = "Vehicle.Cabin.Infotainment.HMI.CurrentLanguage", "Vehicle.Acceleration.Lateral"
    updates = [(path, "x" * 300, 5.0), (other, 3, 5.0), (path, "é" * 70, 6.0), (other, 1.5, 6.0)]
    assert await _built([updates]) == [_reference(updates)]


async def test_a_signal_whose_datatype_an_overlay_changed_is_sent_with_its_new_type() -> None:
    from anycar.model import parse_overlay

    catalog = Catalog.load_default()
    broker = SignalBroker(catalog)
    service = ValV2Service(broker, None)  # type: ignore[arg-type] # open grants: no token checks
    path, other = "Vehicle.Acceleration.Lateral", "Vehicle.CurrentLocation.Altitude"
    provider = broker.register_provider("p", [path, other])
    signals = [catalog.get(path), catalog.get(other)]
    stream = service._stream(service._subscribe(Grants(open=True), signals, 1000, None), signals, by_id=False)
    await stream.__anext__()
    assert provider.publish_many([(path, 1.5), (other, 2.5)], 10.0) == {}
    first = v2.SubscribeResponse.FromString(await asyncio.wait_for(stream.__anext__(), 5))
    assert first.entries[path].value.float == 1.5 and first.entries[other].value.double == 2.5
    catalog.apply_overlay(
        parse_overlay(
            {
                path: {"type": "sensor", "datatype": "string", "description": "now text"},
                # the same Python type (float), another field: only the datatype tells
                other: {"type": "sensor", "datatype": "float", "description": "now float32"},
            }
        )
    )
    assert provider.publish_many([(path, "high"), (other, 3.5)], 11.0) == {}
    second = v2.SubscribeResponse.FromString(await asyncio.wait_for(stream.__anext__(), 5))
    assert second.entries[path].value.string == "high"
    assert second.entries[path].timestamp.seconds == 11
    assert second.entries[other].value.WhichOneof("typed_value") == "float"
    assert second.entries[other].value.float == 3.5
    await stream.aclose()  # type: ignore[attr-defined] # an async generator
