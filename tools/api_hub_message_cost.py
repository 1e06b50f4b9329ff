"""The hub's own work per kuksa.val.v2 message, in one process: publish, then the Subscribe build.

One provider stream (``ProviderStream._publish``) and one subscriber (``ValV2Service._stream``),
100 signals per ``PublishValuesRequest`` as in `anycar bench api`, no gRPC or sockets in between.
Prints µs per message (a loaded machine spreads these). For a count that does not depend on the
load, run it under callgrind with 0 and with N messages; the difference over N is the
instructions per message (docs/performance.md):

    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg-0 .venv/bin/python tools/api_hub_message_cost.py 0
    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg-300 .venv/bin/python tools/api_hub_message_cost.py 300

With ``--wire`` (second argument) the count includes both ends' wire work as the server does it:
each request is parsed from its bytes (``OpenProviderStreamRequest.FromString``, then the stream's
``handle``) and each update is serialized unless the stream already gives bytes. It is the figure
to compare across versions that move work between building and serializing. ``--wire
--provider-only`` stops after the provider's side (parse, ``handle``, the broker): the subscriber's
queue is drained, no message built; the part VISS shares. ``--no-gc`` freezes the heap and turns
the cyclic garbage collector off for the messages: a full collection's cost lands on whichever
message triggers it, and whether it falls inside a run moved the difference by ~30,000
instructions per message between versions that differ in a few allocations (session 6, hub-api2).
``--cold MB`` writes over a buffer of MB megabytes before each message, so that each message
finds the caches holding something else, as the hub's messages do at 5,000 signals/s (one every
20 ms on a shared machine); the µs are then the cold ones (docs/performance.md, api-floor,
session 11: 32 MB tripled the publish and doubled the build), and under cachegrind the misses
per message show where the cold time goes:

    .venv/bin/python tools/api_hub_message_cost.py 1000 --wire --no-gc --cold 32
    valgrind --tool=cachegrind --cache-sim=yes --LL=4194304,16,64 .venv/bin/python tools/api_hub_message_cost.py 100 --wire --no-gc --cold 8
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from typing import Any

from kuksa.val.v2 import val_pb2 as v2

from anycar.api.auth import Grants
from anycar.api.grpc import provider_stream
from anycar.api.grpc.convert import field_for
from anycar.api.grpc.provider_stream import ProviderStream
from anycar.api.grpc.val_v2 import ValV2Service
from anycar.bench.broker import bench_signals
from anycar.broker import SignalBroker
from anycar.model import Catalog, Signal


def provider_requests(
    chosen: list[tuple[Signal, list[Any]]], count: int = 200
) -> list[v2.PublishValuesRequest]:
    """``count`` requests of every chosen signal, the k-th with stamp 1,700,000,000 + k s and
    each signal's k-th value (cycling): what the bench's provider sends."""
    requests = []
    for k in range(count):
        request = v2.PublishValuesRequest(request_id=k)
        for sig, values in chosen:
            dp = request.data_points[sig.id]
            dp.timestamp.seconds, dp.timestamp.nanos = 1_700_000_000 + k, 1000
            setattr(dp.value, field_for(sig.datatype), values[k % len(values)])
        requests.append(request)
    return requests


async def measure(
    messages: int, wire: bool = False, provider_only: bool = False, no_gc: bool = False, cold_mb: int = 0
) -> None:
    catalog = Catalog.load_default()
    broker = SignalBroker(catalog)
    service = ValV2Service(broker, None)  # type: ignore[arg-type] # no token checks: open grants below
    chosen = bench_signals(catalog, 100)
    signals = [sig for sig, _ in chosen]
    grants = Grants(open=True)
    stream = ProviderStream(broker, service.access, grants, "probe")
    sub = service._subscribe(grants, signals, 1000, None)
    updates = service._stream(sub, signals, by_id=False)
    await updates.__anext__()  # the initial state
    requests = provider_requests(chosen)
    raw = [v2.OpenProviderStreamRequest(publish_values_request=r).SerializeToString() for r in requests]
    # the server's own deserializer for provider streams where there is one (a lean message type)
    parse = getattr(provider_stream, "parse_request", v2.OpenProviderStreamRequest.FromString)
    if hasattr(provider_stream, "parse_request"):
        requests = [parse(r).publish_values_request for r in raw]
    publish = build = parsing = 0.0
    evict = bytearray(cold_mb << 20)
    zeros = bytes(len(evict))
    if no_gc:
        gc.collect()
        gc.freeze()
        gc.disable()
    for k in range(messages):
        if cold_mb:
            evict[:] = zeros  # every line of the buffer written: the caches now hold it
        t0 = time.perf_counter()
        if wire:
            parsed = parse(raw[k % len(raw)])
            parsing += time.perf_counter() - t0
            await stream.handle(parsed)
        else:
            stream._publish(requests[k % len(requests)])
        t1 = time.perf_counter()
        if provider_only:  # the provider's side alone: the subscriber's queue emptied, no message
            sub.drain()
            publish += t1 - t0
            continue
        message = await updates.__anext__()
        if wire and not isinstance(message, bytes):
            message = message.SerializeToString()
        build += time.perf_counter() - t1
        publish += t1 - t0
        if k == 0:  # a probe's sanity check, once (a parse per message would be counted)
            entries = (
                v2.SubscribeResponse.FromString(message).entries
                if isinstance(message, bytes)
                else message.entries
            )
            assert len(entries) == len(chosen)  # nosec B101
    if messages:
        print(
            f"{messages} messages: publish {publish / messages * 1e6:.1f} µs"
            + (f" (of it the parse {parsing / messages * 1e6:.1f} µs)" if wire else "")
            + f", build {build / messages * 1e6:.1f} µs"
        )


if __name__ == "__main__":
    flags = sys.argv[2:]
    asyncio.run(
        measure(
            int(sys.argv[1]) if len(sys.argv) > 1 else 2000,
            "--wire" in flags,
            "--provider-only" in flags,
            "--no-gc" in flags,
            int(flags[flags.index("--cold") + 1]) if "--cold" in flags else 0,
        )
    )
