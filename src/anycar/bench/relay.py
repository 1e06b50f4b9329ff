"""The baseline of `anycar bench api --baseline`: the least a kuksa.val.v2 hub in Python can do.

A grpc.aio server with the hub's transport options and only two methods: ``OpenProviderStream``
takes ``PublishValuesRequest``s, and each one goes, as one ``SubscribeResponse`` (every
datapoint copied under its path), to every ``Subscribe`` stream. No broker, no checks, no
authorization, no interceptor. The same provider and subscriber processes run against it and
against the hub in the same benchmark run, so the hub's latency *above* this relay is what the
hub's own work costs, whatever the machine's load does to both; the relay's own figure is what
gRPC in Python over loopback costs with three processes.

Run as ``python -m anycar.bench.relay``: it prints ``relay ready PORT`` and serves until killed.
Not a product part: nothing of the hub uses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
from collections.abc import AsyncIterator
from typing import Any

import grpc
from kuksa.val.v2 import val_pb2 as v2
from kuksa.val.v2 import val_pb2_grpc as v2_grpc

from anycar.api.grpc.server import MAX_CONCURRENT_STREAMS, MAX_MESSAGE_BYTES, STREAM_WINDOW_BYTES
from anycar.model import Catalog

QUEUE_MESSAGES = 1000  # per subscriber; beyond it a message is dropped (the benchmark counts loss)


class Relay(v2_grpc.VALServicer):
    """Publish -> every subscriber, one message in, one message out per subscriber."""

    def __init__(self, paths: dict[int, str]) -> None:
        self.paths = paths
        self.queues: set[asyncio.Queue[v2.SubscribeResponse]] = set()

    async def OpenProviderStream(self, request_iterator: Any, context: Any) -> AsyncIterator[Any]:
        paths = self.paths
        async for request in request_iterator:
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
        if False:  # an async generator that yields nothing: the relay never answers a provider
            yield v2.OpenProviderStreamResponse()

    async def Subscribe(self, request: v2.SubscribeRequest, context: Any) -> AsyncIterator[Any]:
        queue: asyncio.Queue[v2.SubscribeResponse] = asyncio.Queue(QUEUE_MESSAGES)
        self.queues.add(queue)
        try:
            yield v2.SubscribeResponse()  # "the subscription is in place", as the hub's first message
            while True:
                yield await queue.get()
        finally:
            self.queues.discard(queue)


async def serve() -> None:
    catalog = Catalog.load_default()
    paths = {sig.id: sig.path for sig in catalog}
    server = grpc.aio.server(
        options=[  # the hub's (anycar.api.grpc.server), so flow control is the same
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
            ("grpc.max_concurrent_streams", MAX_CONCURRENT_STREAMS),
            ("grpc.http2.bdp_probe", 0),
            ("grpc.http2.lookahead_bytes", STREAM_WINDOW_BYTES),
        ]
    )
    v2_grpc.add_VALServicer_to_server(Relay(paths), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    gc.collect()
    gc.freeze()  # as the hub does after start-up
    print(f"relay ready {port}", flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    sys.exit(0)
