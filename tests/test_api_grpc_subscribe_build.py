"""The Subscribe stream's fast message build (per-field templates, a shared timestamp) gives the
same messages as filling each datapoint on its own, for any mix of types, values and stamps."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from kuksa.val.v2 import types_pb2 as t2
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


def _reference(updates: list[tuple[str, Any, float]]) -> list[bytes]:
    """One datapoint filled per update; a new message when a path repeats (a map per message)."""
    messages = [v2.SubscribeResponse()]
    for path, value, stamp in updates:
        if path in messages[-1].entries:
            messages.append(v2.SubscribeResponse())
        dp = t2.Datapoint()
        fill_datapoint_v2(dp, CATALOG.get(path), value, stamp)
        messages[-1].entries[path].CopyFrom(dp)
    return [m.SerializeToString(deterministic=True) for m in messages]


async def _built(batches: list[list[tuple[str, Any, float]]]) -> list[list[bytes]]:
    broker = SignalBroker(CATALOG)
    service = ValV2Service(broker, None)  # type: ignore[arg-type] # open grants: no token checks
    provider = broker.register_provider("p", PATHS)
    signals = [CATALOG.get(p) for p in PATHS]
    stream = service._stream(service._subscribe(Grants(open=True), signals, 1000, None), signals, by_id=False)
    await stream.__anext__()  # the initial state
    out = []
    for batch in batches:
        for path, value, stamp in batch:  # queued one at a time: the subscriber takes them as one batch
            assert provider.publish_many([(path, value)], stamp) == {}
        messages: list[Any] = []
        while sum(len(m) for m in messages) < len(batch):
            message = await asyncio.wait_for(stream.__anext__(), 5)
            messages.append(message.entries)
        out.append([_as_message(m) for m in messages])
    await stream.aclose()  # type: ignore[attr-defined] # an async generator
    return out


def _as_message(entries: Any) -> bytes:
    message = v2.SubscribeResponse()
    for key in entries:
        message.entries[key].CopyFrom(entries[key])
    return message.SerializeToString(deterministic=True)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(_update(), min_size=1, max_size=12), min_size=1, max_size=4))
def test_subscribe_messages_equal_datapoints_filled_one_by_one(
    batches: list[list[tuple[str, Any, float]]],
) -> None:
    assert asyncio.run(_built(batches)) == [_reference(b) for b in batches]


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
    first = await asyncio.wait_for(stream.__anext__(), 5)
    assert first.entries[path].value.float == 1.5 and first.entries[other].value.double == 2.5
    catalog.apply_overlay(
        parse_overlay({path: {"type": "sensor", "datatype": "string", "description": "now text"}})
    )
    assert provider.publish_many([(path, "high"), (other, 3.5)], 11.0) == {}
    second = await asyncio.wait_for(stream.__anext__(), 5)
    assert second.entries[path].value.string == "high"
    assert second.entries[path].timestamp.seconds == 11
    assert second.entries[other].value.double == 3.5
    await stream.aclose()  # type: ignore[attr-defined] # an async generator
