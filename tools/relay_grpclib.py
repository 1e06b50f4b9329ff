"""The bare relay of ``anycar.bench.relay`` served by grpclib instead of grpcio.

grpclib is gRPC in pure Python on asyncio over h2: the server reads its socket in the event
loop itself, so a message does not cross from gRPC's poller threads to the loop thread as it
does in grpc.aio. Same two methods, same message types (kuksa's ``val_pb2``), same flow-control
window (64 KiB per stream), same queue per subscriber as the grpcio relay, so the two measure
only what the gRPC engine costs. Run as ``python tools/relay_grpclib.py``: it prints
``relay ready PORT`` and serves until killed. Not a product part, and grpclib is not a
dependency of anycar (the measurement did not justify one): ``pip install grpclib==0.4.9`` first.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
from typing import Any

try:
    from grpclib.config import Configuration
    from grpclib.const import Cardinality, Handler
    from grpclib.server import Server
except ModuleNotFoundError:
    sys.exit("relay_grpclib: grpclib is not installed (pip install grpclib==0.4.9)")
from kuksa.val.v2 import val_pb2 as v2

from anycar.api.grpc.server import STREAM_WINDOW_BYTES
from anycar.bench.relay import QUEUE_MESSAGES
from anycar.model import Catalog


class GrpclibRelay:
    """Publish -> every subscriber, one message in, one message out per subscriber."""

    def __init__(self, paths: dict[int, str]) -> None:
        self.paths = paths
        self.queues: set[asyncio.Queue[v2.SubscribeResponse]] = set()

    async def open_provider_stream(self, stream: Any) -> None:
        paths = self.paths
        async for request in stream:
            if request.WhichOneof("action") != "publish_values_request":
                continue
            points = request.publish_values_request.data_points
            message = v2.SubscribeResponse()
            entries = message.entries
            for sid in points:
                entries[paths[sid]].CopyFrom(points[sid])
            for queue in self.queues:
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(message)

    async def subscribe(self, stream: Any) -> None:
        await stream.recv_message()
        queue: asyncio.Queue[v2.SubscribeResponse] = asyncio.Queue(QUEUE_MESSAGES)
        self.queues.add(queue)
        try:
            await stream.send_message(v2.SubscribeResponse())  # "the subscription is in place"
            while True:
                await stream.send_message(await queue.get())
        finally:
            self.queues.discard(queue)

    def __mapping__(self) -> dict[str, Handler]:
        return {
            "/kuksa.val.v2.VAL/OpenProviderStream": Handler(
                self.open_provider_stream,
                Cardinality.STREAM_STREAM,
                v2.OpenProviderStreamRequest,
                v2.OpenProviderStreamResponse,
            ),
            "/kuksa.val.v2.VAL/Subscribe": Handler(
                self.subscribe, Cardinality.UNARY_STREAM, v2.SubscribeRequest, v2.SubscribeResponse
            ),
        }


async def serve() -> None:
    catalog = Catalog.load_default()
    paths = {sig.id: sig.path for sig in catalog}
    server = Server([GrpclibRelay(paths)], config=Configuration(http2_stream_window_size=STREAM_WINDOW_BYTES))
    await server.start("127.0.0.1", 0)
    port = server._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    gc.collect()
    gc.freeze()  # as the hub does after start-up
    print(f"relay ready {port}", flush=True)
    await server.wait_closed()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    sys.exit(0)
