"""kuksa.val.v2 (and the v1 part kuksa-client uses) against the REAL kuksa-client and raw stubs."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from kuksa.val.v2 import types_pb2 as t2
from kuksa.val.v2 import val_pb2 as v2
from kuksa_client.grpc import Datapoint, VSSClientError
from kuksa_client.grpc.aio import VSSClient

from apis_support import Keys, hub_config, running_hub
from apis_support import grpc_stub as stub

SPEED = "Vehicle.Speed"
DOME = "Vehicle.Cabin.Light.IsDomeOn"
WIPER_MODE = "Vehicle.Body.Windshield.Front.Wiping.Mode"


async def test_kuksa_client_publish_get_metadata_and_subscribe() -> None:
    async with running_hub() as hub, VSSClient("127.0.0.1", hub.grpc.port) as client:
        info = await client.get_server_info()
        assert info.name == "anycar-hub"
        await client.set_current_values({SPEED: Datapoint(42.5)})
        values = await client.get_current_values([SPEED])
        assert values[SPEED].value == 42.5
        md = (await client.get_metadata([SPEED]))[SPEED]
        assert md.unit == "km/h"
        updates = client.subscribe_current_values([SPEED])
        first = await anext(updates)
        assert first[SPEED].value == 42.5
        async with VSSClient("127.0.0.1", hub.grpc.port) as other:
            await other.set_current_values({SPEED: Datapoint(50.0)})
        second = await asyncio.wait_for(anext(updates), 5)
        assert second[SPEED].value == 50.0
        await updates.aclose()
        # a bad value and an unknown path come back as errors; the server keeps serving
        with pytest.raises(VSSClientError):
            await client.set_current_values({"Vehicle.NoSuchThing": Datapoint(1.0)})
        with pytest.raises(VSSClientError):
            await client.set_current_values(
                {"Vehicle.Powertrain.TractionBattery.StateOfCharge.Current": Datapoint(150.0)}
            )
        assert (await client.get_current_values([SPEED]))[SPEED].value == 50.0


async def test_kuksa_client_provider_serves_actuation_through_provider_stream() -> None:
    async with running_hub() as hub, VSSClient("127.0.0.1", hub.grpc.port) as provider:
        requests = provider.subscribe_target_values([DOME])
        waiting = asyncio.ensure_future(anext(requests))
        for _ in range(100):
            if hub.broker.provider_of(DOME):
                break
            await asyncio.sleep(0.02)
        assert hub.broker.provider_of(DOME).startswith("grpc:")
        async with VSSClient("127.0.0.1", hub.grpc.port) as app:
            await app.set_target_values({DOME: Datapoint(True)})
            got = await asyncio.wait_for(waiting, 5)
            assert got[DOME].value is True
            assert (await app.get_target_values([DOME]))[DOME].value is True
        await requests.aclose()


async def test_provider_stream_acknowledges_rejects_and_closing_means_no_provider() -> None:
    async with running_hub() as hub, stub(hub) as (val, _):
        sig = hub.broker.catalog.get(DOME)
        outgoing: asyncio.Queue = asyncio.Queue()

        async def requests():
            while True:
                item = await outgoing.get()
                if item is None:
                    return
                yield item

        call = val.OpenProviderStream(requests())
        await outgoing.put(
            v2.OpenProviderStreamRequest(
                provide_actuation_request=v2.ProvideActuationRequest(
                    actuator_identifiers=[t2.SignalID(path=DOME)]
                )
            )
        )
        ack = await call.read()
        assert ack.HasField("provide_actuation_response")

        async def serve(answer: t2.Error) -> None:
            msg = await call.read()
            req = msg.batch_actuate_stream_request.actuate_requests[0]
            assert req.signal_id.id == sig.id and req.value.bool is True
            await outgoing.put(
                v2.OpenProviderStreamRequest(
                    batch_actuate_stream_response=v2.BatchActuateStreamResponse(
                        signal_id=req.signal_id, error=answer
                    )
                )
            )

        actuate = v2.ActuateRequest(signal_id=t2.SignalID(path=DOME), value=t2.Value(bool=True))
        served = asyncio.create_task(serve(t2.Error(code=t2.ERROR_CODE_OK)))
        await val.Actuate(actuate)
        await served
        served = asyncio.create_task(
            serve(t2.Error(code=t2.ERROR_CODE_INVALID_ARGUMENT, message="door open"))
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await val.Actuate(actuate)
        assert err.value.code() == grpc.StatusCode.ABORTED and "door open" in err.value.details()
        await served
        # the provider publishes its actuator's new state; a refused value is reported back
        await outgoing.put(
            v2.OpenProviderStreamRequest(
                publish_values_request=v2.PublishValuesRequest(
                    request_id=7,
                    data_points={
                        sig.id: t2.Datapoint(value=t2.Value(bool=True)),
                        hub.broker.catalog.get(SPEED).id: t2.Datapoint(value=t2.Value(string="fast")),
                    },
                )
            )
        )
        report = await call.read()
        assert report.publish_values_response.request_id == 7
        assert list(report.publish_values_response.status) == [hub.broker.catalog.get(SPEED).id]
        assert hub.broker.get(DOME).value is True
        # a request in flight when the stream ends resolves as "no provider"
        pending = asyncio.ensure_future(val.Actuate(actuate))
        await call.read()  # the request reached the provider, which now disappears
        call.cancel()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await pending
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        for _ in range(100):
            if hub.broker.provider_of(DOME) is None:
                break
            await asyncio.sleep(0.02)
        assert hub.broker.provider_of(DOME) is None
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await val.Actuate(actuate)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_v2_reads_batches_metadata_and_status_codes() -> None:
    async with running_hub() as hub, stub(hub) as (val, _):
        provider = hub.broker.register_provider("test", [SPEED, "Vehicle.TraveledDistance"])
        provider.publish(SPEED, 12.0)
        got = await val.GetValue(v2.GetValueRequest(signal_id=t2.SignalID(path=SPEED)))
        assert got.data_point.value.float == 12.0
        many = await val.GetValues(
            v2.GetValuesRequest(
                signal_ids=[t2.SignalID(path=SPEED), t2.SignalID(path="Vehicle.TraveledDistance")]
            )
        )
        assert many.data_points[0].value.float == 12.0 and not many.data_points[1].HasField("value")
        md = await val.ListMetadata(v2.ListMetadataRequest(root="Vehicle.Cabin.Door.*.*.IsOpen"))
        assert len(md.metadata) == 4 and all(m.entry_type == t2.ENTRY_TYPE_ACTUATOR for m in md.metadata)
        info = await val.GetServerInfo(v2.GetServerInfoRequest())
        assert info.name == "anycar-hub"
        sub = val.SubscribeById(v2.SubscribeByIdRequest(signal_ids=[hub.broker.catalog.get(SPEED).id]))
        first = await sub.read()
        assert first.entries[hub.broker.catalog.get(SPEED).id].value.float == 12.0
        for value in (20.0, 21.0, 22.0):
            provider.publish(SPEED, value)
        seen = []
        while len(seen) < 3:
            msg = await asyncio.wait_for(sub.read(), 5)
            seen.extend(dp.value.float for dp in msg.entries.values())
        assert seen == [20.0, 21.0, 22.0]  # repeated updates of one signal are split, in order
        sub.cancel()
        for request, code in [
            (
                val.GetValue(v2.GetValueRequest(signal_id=t2.SignalID(path="Vehicle.Nope"))),
                grpc.StatusCode.NOT_FOUND,
            ),
            (val.GetValue(v2.GetValueRequest(signal_id=t2.SignalID(id=999_999))), grpc.StatusCode.NOT_FOUND),
            (
                val.Actuate(v2.ActuateRequest(signal_id=t2.SignalID(path=SPEED), value=t2.Value(float=1.0))),
                grpc.StatusCode.INVALID_ARGUMENT,
            ),
            (
                val.Actuate(v2.ActuateRequest(signal_id=t2.SignalID(path=DOME), value=t2.Value(string="on"))),
                grpc.StatusCode.INVALID_ARGUMENT,
            ),
            (
                val.BatchActuate(
                    v2.BatchActuateRequest(
                        actuate_requests=[
                            v2.ActuateRequest(signal_id=t2.SignalID(path=DOME), value=t2.Value(bool=True))
                        ]
                    )
                ),
                grpc.StatusCode.UNAVAILABLE,
            ),
            (
                val.PublishValue(
                    v2.PublishValueRequest(
                        signal_id=t2.SignalID(path=SPEED), data_point=t2.Datapoint(value=t2.Value(float=3.0))
                    )
                ),
                grpc.StatusCode.PERMISSION_DENIED,  # Vehicle.Speed belongs to provider "test"
            ),
            (
                val.PublishValue(
                    v2.PublishValueRequest(
                        signal_id=t2.SignalID(path=WIPER_MODE),
                        data_point=t2.Datapoint(value=t2.Value(string="NO_SUCH_MODE")),
                    )
                ),
                grpc.StatusCode.INVALID_ARGUMENT,
            ),
        ]:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await request
            assert err.value.code() == code, err.value.details()
        assert hub.broker.get(SPEED).value == 22.0


async def test_tokens_scope_every_call(tmp_path) -> None:
    keys = Keys(tmp_path)
    async with running_hub(hub_config(keys.public_path)) as hub:
        hub.broker.register_provider("test", [SPEED]).publish(SPEED, 5.0)
        async with stub(hub, keys.token(f"read:{SPEED}")) as (val, md):
            got = await val.GetValue(v2.GetValueRequest(signal_id=t2.SignalID(path=SPEED)), metadata=md)
            assert got.data_point.value.float == 5.0
            for call, code in [
                (
                    val.GetValue(v2.GetValueRequest(signal_id=t2.SignalID(path=SPEED))),
                    grpc.StatusCode.UNAUTHENTICATED,
                ),
                (
                    val.GetValue(
                        v2.GetValueRequest(signal_id=t2.SignalID(path="Vehicle.TraveledDistance")),
                        metadata=md,
                    ),
                    grpc.StatusCode.PERMISSION_DENIED,
                ),
                (
                    val.Actuate(
                        v2.ActuateRequest(signal_id=t2.SignalID(path=DOME), value=t2.Value(bool=True)),
                        metadata=md,
                    ),
                    grpc.StatusCode.PERMISSION_DENIED,
                ),
                (
                    val.GetValue(
                        v2.GetValueRequest(signal_id=t2.SignalID(path=SPEED)),
                        metadata=(("authorization", "Bearer " + keys.token("read", ttl_s=-120)),),
                    ),
                    grpc.StatusCode.UNAUTHENTICATED,
                ),
            ]:
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await call
                assert err.value.code() == code
        # kuksa-client with a token file's content: allowed reads work, others are refused
        async with VSSClient("127.0.0.1", hub.grpc.port, token=keys.token("read:Vehicle")) as client:
            assert (await client.get_current_values([SPEED]))[SPEED].value == 5.0
            with pytest.raises(VSSClientError):
                await client.set_current_values({"Vehicle.TraveledDistance": Datapoint(1900)})


async def test_provide_signal_claims_and_a_held_claim_ends_the_stream() -> None:
    async with running_hub() as hub, stub(hub) as (val, _):
        speed_id = hub.broker.catalog.get(SPEED).id
        first = val.OpenProviderStream()
        await first.write(
            v2.OpenProviderStreamRequest(
                provide_signal_request=v2.ProvideSignalRequest(
                    signals_sample_intervals={speed_id: t2.SampleInterval(interval_ms=10)}
                )
            )
        )
        assert (await first.read()).HasField("provide_signal_response")
        assert hub.broker.provider_of(SPEED).startswith("grpc:")
        second = val.OpenProviderStream()
        await second.write(
            v2.OpenProviderStreamRequest(
                provide_signal_request=v2.ProvideSignalRequest(
                    signals_sample_intervals={speed_id: t2.SampleInterval(interval_ms=10)}
                )
            )
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await second.read()
        assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
        # the first provider is untouched and keeps publishing
        await first.write(
            v2.OpenProviderStreamRequest(
                publish_values_request=v2.PublishValuesRequest(
                    request_id=1, data_points={speed_id: t2.Datapoint(value=t2.Value(float=77.0))}
                )
            )
        )
        for _ in range(100):
            if (dp := hub.broker.get(SPEED)) is not None and dp.value == 77.0:
                break
            await asyncio.sleep(0.01)
        assert hub.broker.get(SPEED).value == 77.0
        first.cancel()


async def test_a_flooding_client_does_not_starve_others() -> None:
    async with running_hub() as hub, stub(hub) as (flooder, _), stub(hub) as (calm, _):
        hub.broker.register_provider("test", [SPEED]).publish(SPEED, 9.0)
        request = v2.GetValueRequest(signal_id=t2.SignalID(path=SPEED))
        bad = v2.GetValueRequest(signal_id=t2.SignalID(path="Vehicle.Nope"))
        flood = [asyncio.ensure_future(flooder.GetValue(bad if i % 2 else request)) for i in range(2000)]
        started = asyncio.get_running_loop().time()
        got = await asyncio.wait_for(calm.GetValue(request), 10)
        assert got.data_point.value.float == 9.0
        assert asyncio.get_running_loop().time() - started < 10
        results = await asyncio.gather(*flood, return_exceptions=True)
        # each call gets its answer, or is refused while the flooder exceeds its stream limit
        codes = {r.code() for r in results if isinstance(r, grpc.aio.AioRpcError)}
        assert codes <= {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE}
        assert grpc.StatusCode.NOT_FOUND in codes
        assert any(isinstance(r, v2.GetValueResponse) and r.data_point.value.float == 9.0 for r in results)
        assert not any(
            isinstance(r, BaseException) and not isinstance(r, grpc.aio.AioRpcError) for r in results
        )
        assert (await calm.GetValue(request)).data_point.value.float == 9.0


async def test_v1_subscribe_and_get_for_older_clients() -> None:
    from kuksa.val.v1 import types_pb2 as t1
    from kuksa.val.v1 import val_pb2 as v1
    from kuksa.val.v1 import val_pb2_grpc as v1_grpc

    async with running_hub() as hub:
        provider = hub.broker.register_provider("test", [SPEED])
        provider.publish(SPEED, 1.0)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{hub.grpc.port}")
        val = v1_grpc.VALStub(channel)
        got = await val.Get(
            v1.GetRequest(
                entries=[
                    v1.EntryRequest(path=SPEED, view=t1.VIEW_CURRENT_VALUE, fields=[t1.FIELD_VALUE]),
                    v1.EntryRequest(path="Vehicle.Nope", view=t1.VIEW_CURRENT_VALUE, fields=[t1.FIELD_VALUE]),
                ]
            )
        )
        assert got.entries[0].value.float == 1.0
        assert got.errors[0].error.code == 404 and got.error.code == 404
        call = val.Subscribe(
            v1.SubscribeRequest(
                entries=[v1.SubscribeEntry(path=SPEED, view=t1.VIEW_CURRENT_VALUE, fields=[t1.FIELD_VALUE])]
            )
        )
        first = await call.read()
        assert first.updates[0].entry.value.float == 1.0
        provider.publish(SPEED, 2.0)
        second = await asyncio.wait_for(call.read(), 5)
        assert second.updates[0].entry.value.float == 2.0
        call.cancel()
        await channel.close()


async def test_a_subscription_ends_when_its_token_expires(tmp_path) -> None:
    keys = Keys(tmp_path)
    async with running_hub(hub_config(keys.public_path)) as hub:
        provider = hub.broker.register_provider("test", [SPEED])
        provider.publish(SPEED, 1.0)
        async with stub(hub, keys.token(f"read:{SPEED}")) as (val, long_md):
            # The connection is made (and the hub's call path warm) on a long-lived token first, so
            # the short one's lifetime is spent on the subscription alone, not on a loaded
            # machine's TCP + HTTP/2 set-up; then the test waits for the token's own expiry.
            await val.GetServerInfo(v2.GetServerInfoRequest(), metadata=long_md)
            ttl_s = 4.0  # exp is whole seconds (truncated): the token lives 3 to 4 s
            md = (("authorization", f"Bearer {keys.token(f'read:{SPEED}', ttl_s=ttl_s)}"),)
            expires = time.time() + ttl_s  # taken after minting: at or after the token's exp
            call = val.Subscribe(v2.SubscribeRequest(signal_paths=[SPEED]), metadata=md)
            first = await call.read()
            assert first is not grpc.aio.EOF and first.entries[SPEED].value.float == 1.0
            while time.time() < expires + 0.05:  # until the token is past its exp
                await asyncio.sleep(max(0.01, expires + 0.05 - time.time()))
            provider.publish(SPEED, 2.0)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                while True:
                    message = await call.read()
                    assert message is not grpc.aio.EOF, "the stream ended without an error"
            assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
            assert "expired" in (info.value.details() or "")
