"""Issue 9, finding 10: authenticate first, everywhere. A caller without a token, or without the
right to a path, learns nothing about which signals exist: no 404, no "did you mean" hint, the
same answer for a fitted accessory's signal and for a path that does not exist."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
from kuksa.val.v1 import types_pb2 as t1
from kuksa.val.v1 import val_pb2 as v1
from kuksa.val.v1 import val_pb2_grpc as v1_grpc
from kuksa.val.v2 import types_pb2 as t2
from kuksa.val.v2 import val_pb2 as v2
from kuksa.val.v2 import val_pb2_grpc as v2_grpc
from sec_access_support import Secured, secured_hub
from websockets.asyncio.client import connect

from anycar.hub import Hub


def _rest_path(path: str) -> str:
    return "/api/v1/signals/" + path.replace(".", "/")


async def _fitted_signal(s: Secured) -> tuple[str, str]:
    """A signal of a freshly fitted accessory, and a path that exists nowhere, next to it."""
    _, instance = await s.fit("button_panel")
    assert s.cabin.manager is not None
    real = next(iter(s.cabin.manager.fitted[instance].binding.paths.values()))
    return real, f"Vehicle.Accessories.{instance}X.Nope"


async def test_rest_answers_401_or_403_before_saying_whether_a_path_exists(tmp_path: Path) -> None:
    async with secured_hub(tmp_path) as s:
        real, missing = await _fitted_signal(s)
        for path in (real, missing, "Vehicle.Accessories.Fan9.FanSpeed"):
            anonymous = await s.http.get(_rest_path(path))
            assert anonymous.status_code == 401, (path, anonymous.text)
            assert "did you mean" not in anonymous.text
        narrow = s.auth("read:Vehicle.Speed")
        answers = []
        for path in (real, missing):
            answer = await s.http.get(_rest_path(path), headers=narrow)
            assert answer.status_code == 403 and "did you mean" not in answer.text, answer.text
            answers.append(answer.json()["error"]["reason"])
        assert answers[0] == answers[1]  # a fitted accessory looks like no accessory at all
        for pattern in ("Vehicle.Accessories.**", "Vehicle.Accessories.Nope*"):
            listed = await s.http.get("/api/v1/signals", params={"pattern": pattern}, headers=narrow)
            assert listed.status_code == 403, (pattern, listed.text)
        # within its rights a caller still gets the helpful 404, hinting only at what it may read
        cabin = s.auth("read:Vehicle.Cabin")
        typo = await s.http.get(_rest_path("Vehicle.Cabin.Light.IsDomeOnn"), headers=cabin)
        assert typo.status_code == 404 and "Vehicle.Cabin.Light.IsDomeOn" in typo.text
        outside = s.auth(f"read:{missing}")
        near = await s.http.get(_rest_path(missing), headers=outside)
        assert near.status_code == 404 and "Vehicle.Accessories" not in near.json()["error"][
            "message"
        ].replace(missing, "")


async def test_viss_over_websocket_and_http_authenticates_first(tmp_path: Path) -> None:
    async with secured_hub(tmp_path) as s:
        real, missing = await _fitted_signal(s)
        narrow = s.auth("read:Vehicle.Speed")
        token = narrow["Authorization"]
        async with connect(s.hub.endpoints()["viss"], subprotocols=["VISSv2"]) as ws:  # type: ignore[list-item]
            numbers = []
            for i, path in enumerate((real, missing)):
                await ws.send(
                    json.dumps({"action": "get", "path": path, "requestId": str(i), "authorization": token})
                )
                answer = json.loads(await ws.recv())
                assert "did you mean" not in json.dumps(answer), answer
                numbers.append(answer["error"]["number"])
            await ws.send(json.dumps({"action": "get", "path": missing, "requestId": "9"}))
            anonymous = json.loads(await ws.recv())
            assert anonymous["error"]["number"] == 401
        assert numbers == [403, 403]
        for path in (real, missing):
            over_http = await s.http.get("/" + path.replace(".", "/"), headers=narrow)
            assert over_http.status_code == 403 and "did you mean" not in over_http.text
            assert (await s.http.get("/" + path.replace(".", "/"))).status_code == 401


@contextlib.asynccontextmanager
async def _channel(hub: Hub) -> AsyncIterator[grpc.aio.Channel]:
    assert hub.grpc is not None
    channel = grpc.aio.insecure_channel(
        f"127.0.0.1:{hub.grpc.port}", options=[("grpc.use_local_subchannel_pool", 1)]
    )
    try:
        yield channel
    finally:
        await channel.close()


async def _code(call: Any) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def test_grpc_v1_and_v2_authenticate_first(tmp_path: Path) -> None:
    async with secured_hub(tmp_path) as s:
        real, missing = await _fitted_signal(s)
        md = (("authorization", s.auth("read:Vehicle.Speed")["Authorization"]),)
        async with _channel(s.hub) as channel:
            val2 = v2_grpc.VALStub(channel)
            assert (
                await _code(val2.GetServerInfo(v2.GetServerInfoRequest())) is grpc.StatusCode.UNAUTHENTICATED
            )
            for path in (real, missing):
                request = v2.GetValueRequest(signal_id=t2.SignalID(path=path))
                assert await _code(val2.GetValue(request, metadata=md)) is grpc.StatusCode.PERMISSION_DENIED
                listing = v2.ListMetadataRequest(root=path)
                assert (
                    await _code(val2.ListMetadata(listing, metadata=md)) is grpc.StatusCode.PERMISSION_DENIED
                )
            beyond = v2.GetValueRequest(signal_id=t2.SignalID(id=10**6))
            assert await _code(val2.GetValue(beyond, metadata=md)) is grpc.StatusCode.PERMISSION_DENIED
            val1 = v1_grpc.VALStub(channel)
            codes = []
            for path in (real, missing):
                entry = v1.EntryRequest(path=path, view=t1.VIEW_CURRENT_VALUE, fields=[t1.FIELD_VALUE])
                response = await val1.Get(v1.GetRequest(entries=[entry]), metadata=md)
                assert "did you mean" not in response.error.message
                codes.append(response.error.code)
            assert codes == [403, 403]
