"""kuksa.val.v2 as the KUKSA databroker answers it, checked with the real kuksa-client 0.6 and its stubs.

The expected status codes are the databroker's (eclipse-kuksa/kuksa-databroker,
``databroker/src/grpc/kuksa_val_v2/val.rs`` and ``broker.rs``): a SignalID with neither id nor
path and a path over ``MAX_REQUEST_PATH_LENGTH`` (1000) are INVALID_ARGUMENT, a ``buffer_size``
over ``MAX_SUBSCRIBE_BUFFER_SIZE`` (1000) is INVALID_ARGUMENT, ``BatchActuate`` aborts the whole
batch ("no single actuator value will be forwarded") and ``ActuateStream`` forwards each request
in turn, ending the call with the first failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from kuksa.val.v2 import types_pb2 as t2
from kuksa.val.v2 import val_pb2 as v2
from kuksa_client.grpc import VSSClientError
from kuksa_client.grpc.aio import VSSClient

from anycar.broker import ActuationRequest
from anycar.model import parse_overlay
from apis_support import Keys, hub_config, running_hub
from apis_support import grpc_stub as stub

SPEED = "Vehicle.Speed"
DOME = "Vehicle.Cabin.Light.IsDomeOn"
LOCK = "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked"
WINDOW = "Vehicle.Cabin.Door.Row1.DriverSide.Window.Position"


def actuate(path: str, **value: Any) -> v2.ActuateRequest:
    return v2.ActuateRequest(signal_id=t2.SignalID(path=path), value=t2.Value(**value))


def recording_provider(hub: Any, paths: list[str]) -> list[tuple[str, Any]]:
    got: list[tuple[str, Any]] = []

    def take(request: ActuationRequest) -> None:
        got.append((request.path, request.value))

    hub.broker.register_provider("recorder", paths, on_actuate=take)
    return got


async def code_of(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    code: grpc.StatusCode = err.value.code()
    return code


# -- item 6: BatchActuate is all or nothing ------------------------------------------------------
async def test_batch_actuate_forwards_nothing_unless_every_target_can_take_it(tmp_path) -> None:
    keys = Keys(tmp_path)
    async with running_hub(hub_config(keys.public_path)) as hub:
        got = recording_provider(hub, [DOME, WINDOW])  # LOCK has no provider
        token = keys.token(
            f"actuate:{DOME} actuate:{LOCK} actuate:Vehicle.Speed actuate:Vehicle.Cabin.NoSuchThing"
        )
        async with stub(hub, token) as (val, md):

            async def refused(*items: v2.ActuateRequest) -> grpc.StatusCode:
                return await code_of(
                    val.BatchActuate(v2.BatchActuateRequest(actuate_requests=items), metadata=md)
                )

            assert (
                await refused(actuate(DOME, bool=True), actuate(LOCK, bool=True))
                == grpc.StatusCode.UNAVAILABLE
            )
            assert got == []  # DOME was not actuated either
            # not granted, not an actuator, out of range, unknown: refused before anything moves
            denied = await refused(actuate(DOME, bool=True), actuate(WINDOW, uint32=40))
            assert denied == grpc.StatusCode.PERMISSION_DENIED
            assert (
                await refused(actuate(DOME, bool=True), actuate(SPEED, float=3.0))
                == grpc.StatusCode.INVALID_ARGUMENT
            )
            unknown = await refused(actuate(DOME, bool=True), actuate("Vehicle.Cabin.NoSuchThing", bool=True))
            assert unknown == grpc.StatusCode.NOT_FOUND
            assert got == []
            # every target served: all are forwarded
            await val.BatchActuate(
                v2.BatchActuateRequest(actuate_requests=[actuate(DOME, bool=True)]), metadata=md
            )
            assert got == [(DOME, True)]


# -- item 7: ActuateStream ------------------------------------------------------------------------
async def test_actuate_stream_forwards_each_request_in_order_and_stops_at_the_first_failure() -> None:
    async with running_hub() as hub, stub(hub) as (val, _):
        got = recording_provider(hub, [DOME, WINDOW])

        async def requests(*items: v2.ActuateRequest) -> AsyncIterator[v2.ActuateRequest]:
            for item in items:
                yield item

        reply = await val.ActuateStream(
            requests(actuate(DOME, bool=True), actuate(WINDOW, uint32=40), actuate(DOME, bool=False))
        )
        assert isinstance(reply, v2.ActuateResponse)
        assert got == [(DOME, True), (WINDOW, 40), (DOME, False)]
        got.clear()
        failing = val.ActuateStream(
            requests(actuate(DOME, bool=True), actuate(SPEED, float=1.0), actuate(DOME, bool=False))
        )
        assert await code_of(failing) == grpc.StatusCode.INVALID_ARGUMENT
        assert got == [(DOME, True)]
        no_provider = val.ActuateStream(requests(actuate(LOCK, bool=True)))
        assert await code_of(no_provider) == grpc.StatusCode.UNAVAILABLE


# -- item 8: error codes as the databroker gives them -----------------------------------------------
async def test_signal_ids_that_name_nothing_or_are_too_long_are_invalid_argument() -> None:
    async with running_hub() as hub, stub(hub) as (val, _):
        empty = v2.GetValueRequest(signal_id=t2.SignalID())
        assert await code_of(val.GetValue(empty)) == grpc.StatusCode.INVALID_ARGUMENT
        assert await code_of(val.GetValue(v2.GetValueRequest())) == grpc.StatusCode.INVALID_ARGUMENT
        long_path = "Vehicle." + "A" * 1000
        too_long = v2.GetValueRequest(signal_id=t2.SignalID(path=long_path))
        assert await code_of(val.GetValue(too_long)) == grpc.StatusCode.INVALID_ARGUMENT
        # a path of allowed length that names nothing is still NOT_FOUND
        unknown = v2.GetValueRequest(signal_id=t2.SignalID(path="Vehicle." + "A" * 900))
        assert await code_of(val.GetValue(unknown)) == grpc.StatusCode.NOT_FOUND
        subscribe = val.Subscribe(v2.SubscribeRequest(signal_paths=[long_path]))
        assert await code_of(subscribe.read()) == grpc.StatusCode.INVALID_ARGUMENT
        assert await code_of(val.GetValues(v2.GetValuesRequest())) == grpc.StatusCode.INVALID_ARGUMENT


async def test_subscribe_buffer_size_above_1000_is_refused() -> None:
    async with running_hub() as hub, stub(hub) as (val, _):
        refused = val.Subscribe(v2.SubscribeRequest(signal_paths=[SPEED], buffer_size=1001))
        assert await code_of(refused.read()) == grpc.StatusCode.INVALID_ARGUMENT
        refused_by_id = val.SubscribeById(
            v2.SubscribeByIdRequest(signal_ids=[hub.broker.catalog.get(SPEED).id], buffer_size=5000)
        )
        assert await code_of(refused_by_id.read()) == grpc.StatusCode.INVALID_ARGUMENT
        taken = val.Subscribe(v2.SubscribeRequest(signal_paths=[SPEED], buffer_size=1000))
        first = await taken.read()
        assert SPEED in first.entries
        taken.cancel()


async def test_provide_actuation_of_a_sensor_ends_the_stream_with_invalid_argument() -> None:
    async with running_hub() as hub, stub(hub) as (val, _):
        outgoing: asyncio.Queue[Any] = asyncio.Queue()

        async def requests() -> AsyncIterator[v2.OpenProviderStreamRequest]:
            while (item := await outgoing.get()) is not None:
                yield item

        call = val.OpenProviderStream(requests())
        await outgoing.put(
            v2.OpenProviderStreamRequest(
                provide_actuation_request=v2.ProvideActuationRequest(
                    actuator_identifiers=[t2.SignalID(path=SPEED)]
                )
            )
        )
        assert await code_of(call.read()) == grpc.StatusCode.INVALID_ARGUMENT
        assert hub.broker.provider_of(SPEED) is None
        await outgoing.put(None)


async def test_kuksa_client_subscribe_metadata_gets_metadata_then_overlay_changes() -> None:
    async with running_hub() as hub, VSSClient("127.0.0.1", hub.grpc.port) as client:
        updates = client.subscribe_metadata([SPEED, "Vehicle.Cabin.Light.Accessory7"])
        with pytest.raises(VSSClientError):  # one unknown path refuses the call, as for values
            await asyncio.wait_for(anext(updates), 10)
        updates = client.subscribe_metadata([SPEED, "Vehicle.Cabin.Light.**"])
        first = await asyncio.wait_for(anext(updates), 10)
        assert first[SPEED].unit == "km/h"
        assert first[DOME].data_type.name == "BOOLEAN"
        added = "Vehicle.Cabin.Light.Accessory7.IsOn"
        hub.broker.catalog.apply_overlay(
            parse_overlay(
                {
                    added: {"type": "actuator", "datatype": "boolean", "description": "fitted lamp"},
                    SPEED: {"type": "sensor", "datatype": "float", "unit": "km/h", "description": "tuned"},
                }
            )
        )
        second = await asyncio.wait_for(anext(updates), 10)
        assert set(second) == {added, SPEED}
        assert second[SPEED].description == "tuned" and second[added].description == "fitted lamp"
        await updates.aclose()
