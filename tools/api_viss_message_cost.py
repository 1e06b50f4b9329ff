"""The hub's own work per VISS notification, in one process: publish, notify, the frame write.

One kuksa.val.v2 provider stream (as in `anycar bench api`: 100 signals per
``PublishValuesRequest``, parsed from its bytes by the server's deserializer) and one VISS
WebSocket session subscribed to those signals as the bench's subscriber is (``paths`` filter).
Each notification goes through the session's own ``_forward`` task and is written as a frame by
the websockets protocol the server uses (``send_text`` then ``data_to_send``): only the socket
is missing. Prints µs per message; for a load-independent count run it under callgrind with 0
and with N messages, the difference over N is the instructions per message:

    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg-v0 .venv/bin/python tools/api_viss_message_cost.py 0
    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg-v300 .venv/bin/python tools/api_viss_message_cost.py 300

``--provider-only`` publishes to the VISS subscription but drains its queue instead of notifying.
``--no-gc`` freezes the heap and turns the cyclic collector off for the messages (as in
``api_hub_message_cost.py``: a full collection inside or outside the run moves the count).
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from typing import Any

from api_hub_message_cost import provider_requests  # the same provider messages (tools/ is on sys.path)
from kuksa.val.v2 import val_pb2 as v2
from websockets.protocol import State
from websockets.server import ServerProtocol

from anycar.api.auth import Authorizer, Grants
from anycar.api.grpc import provider_stream
from anycar.api.grpc.provider_stream import ProviderStream
from anycar.api.grpc.val_v2 import ValV2Service
from anycar.api.viss import VissService, VissSession
from anycar.bench.broker import bench_signals
from anycar.broker import SignalBroker
from anycar.model import Catalog


async def measure(messages: int, provider_only: bool = False, no_gc: bool = False) -> None:
    catalog = Catalog.load_default()
    broker = SignalBroker(catalog)
    service = ValV2Service(broker, None)  # type: ignore[arg-type] # no token checks: open grants below
    chosen = bench_signals(catalog, 100)
    stream = ProviderStream(broker, service.access, Grants(open=True), "probe")
    protocol = ServerProtocol()
    protocol.state = State.OPEN  # the handshake is not what is measured
    frames: list[bytes] = []
    texts: list[str] = []
    arrived: list[asyncio.Future[None]] = []

    async def send(message: dict[str, Any] | str) -> None:
        # what ws.py's send and websockets' ServerConnection.send do, without the socket
        text = message if isinstance(message, str) else json.dumps(message, separators=(",", ":"))
        texts.append(text)
        protocol.send_text(text.encode())
        frames.extend(protocol.data_to_send())
        if arrived and not arrived[-1].done():
            arrived[-1].set_result(None)

    session = VissSession(VissService(broker, Authorizer(None)), send)
    rel = [sig.path.removeprefix("Vehicle.") for sig, _ in chosen]
    request = {"action": "subscribe", "path": "Vehicle", "filter": {"type": "paths", "parameter": rel}}
    await session.handle(json.dumps(request | {"requestId": "b"}))
    assert "subscriptionId" in texts[-1], texts[-1]  # nosec B101 # a probe's sanity check
    sub, _ = next(iter(session.subscriptions.values()))
    assert sub is not None  # nosec B101 # narrows an Optional for mypy
    raw = [
        v2.OpenProviderStreamRequest(publish_values_request=r).SerializeToString()
        for r in provider_requests(chosen)
    ]
    parse = getattr(provider_stream, "parse_request", v2.OpenProviderStreamRequest.FromString)
    total = 0.0
    if no_gc:
        gc.collect()
        gc.freeze()
        gc.disable()
    for k in range(messages):
        frames.clear()
        texts.clear()
        t0 = time.perf_counter()
        if not provider_only:
            arrived.append(asyncio.get_running_loop().create_future())
        await stream.handle(parse(raw[k % len(raw)]))
        if provider_only:
            sub.drain()
        else:
            await arrived[-1]
            arrived.clear()
        total += time.perf_counter() - t0
        if k == 0 and not provider_only:  # a probe's sanity check, once
            data = json.loads(texts[0])
            assert len(data["data"]) == len(chosen) and frames[0].endswith(texts[0].encode()), data  # nosec B101
    session.close()
    if messages:
        print(f"{messages} messages: {total / messages * 1e6:.1f} µs")


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(measure(int(args[0]) if args else 2000, "--provider-only" in args, "--no-gc" in args))
