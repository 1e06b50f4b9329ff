"""What one hop between two processes costs on this machine, before any hub code runs.

Measurement only (docs/performance.md, "api-floor, session 11"). A sender process writes a
2,000-byte message (a 100-signal ``PublishValuesRequest`` is 2,103 bytes) to a receiver process
over loopback TCP, one message every ``--gaps`` seconds; the receiver notes when it has the
message, and the two clocks are the same host's. Per way of receiving, per gap, the one-way
p50/p90/p99 in µs:

- ``blocking``: a plain socket ``recv`` in a thread, the least Python can do;
- ``asyncio``: an asyncio stream on both ends, as the VISS subscriber and the hub's WebSocket are;
- ``uvloop``: the same on uvloop's loop, when uvloop is installed (it is not an anycar dependency);
- ``grpc``: a grpc.aio client stream into a grpc.aio server that does nothing with a message
  (the hub's listener setting), as the provider's hop into the hub is.

At 5,000 signals/s in messages of 100 a message comes every 20 ms; at 42,000/s every 2.4 ms.

    .venv/bin/python tools/loopback_floor_probe.py --gaps 0.02,0.0024 --ways blocking,asyncio,uvloop,grpc
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import multiprocessing as mp
import os
import socket
import time
from typing import Any

from anycar.bench.stats import percentile
from anycar.grpc_setup import prefer_poller_reads

SIZE = 2000
WARMUP = 50


def _use_uvloop(way: str) -> None:
    if way == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _receiver(way: str, count: int, port_out: Any, result_out: Any) -> None:
    got: list[float] = []
    if way == "blocking":
        server = socket.create_server(("127.0.0.1", 0))
        port_out.put(server.getsockname()[1])
        conn, _ = server.accept()
        for _ in range(count):
            need = SIZE
            while need:
                chunk = conn.recv(need)
                if not chunk:
                    raise SystemExit("the sender closed the connection before its last message")
                need -= len(chunk)
            got.append(time.perf_counter())
        result_out.put(got)
        return
    if way == "grpc":
        prefer_poller_reads(os.environ)  # the hub's listener setting, before grpc is imported
        _grpc_receiver(port_out, result_out)
        return
    _use_uvloop(way)

    async def run() -> None:
        done = asyncio.Event()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            for _ in range(count):
                await reader.readexactly(SIZE)
                got.append(time.perf_counter())
            done.set()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port_out.put(server.sockets[0].getsockname()[1])
        await done.wait()
        server.close()

    asyncio.run(run())
    result_out.put(got)


def _grpc_receiver(port_out: Any, result_out: Any) -> None:
    import grpc
    from kuksa.val.v2 import val_pb2_grpc

    got: list[float] = []

    class Sink(val_pb2_grpc.VALServicer):  # type: ignore[misc]
        async def OpenProviderStream(self, requests: Any, context: Any) -> Any:  # the proto's name
            async for _ in requests:
                got.append(time.perf_counter())
            done.set()  # the client is done writing: the call ends here, not cancelled
            if False:  # pragma: no cover # an async generator that answers nothing
                yield None

    async def run() -> None:
        server = grpc.aio.server()
        val_pb2_grpc.add_VALServicer_to_server(Sink(), server)
        port_out.put(server.add_insecure_port("127.0.0.1:0"))
        await server.start()
        await done.wait()
        await server.stop(1)

    done = asyncio.Event()
    asyncio.run(run())
    result_out.put(got)


def _send(way: str, port: int, count: int, gap: float) -> list[float]:
    sent: list[float] = []
    payload = b"x" * SIZE
    if way == "blocking":
        conn = socket.create_connection(("127.0.0.1", port))
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(count):
            sent.append(time.perf_counter())
            conn.sendall(payload)
            time.sleep(gap)
        conn.close()
        return sent
    if way == "grpc":
        return asyncio.run(_grpc_send(port, count, gap))
    _use_uvloop(way)

    async def run() -> None:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(count):
            sent.append(time.perf_counter())
            writer.write(payload)
            await writer.drain()
            await asyncio.sleep(gap)
        writer.close()

    asyncio.run(run())
    return sent


async def _grpc_send(port: int, count: int, gap: float) -> list[float]:
    import grpc
    from kuksa.val.v2 import val_pb2 as v2
    from kuksa.val.v2 import val_pb2_grpc

    message = v2.OpenProviderStreamRequest()
    for sid in range(1, 101):
        point = message.publish_values_request.data_points[sid]
        point.timestamp.seconds, point.timestamp.nanos = 1_700_000_000, 5000
        point.value.float = 1.5
    sent: list[float] = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = val_pb2_grpc.VALStub(channel).OpenProviderStream()
        for _ in range(count):
            sent.append(time.perf_counter())
            await call.write(message)
            await asyncio.sleep(gap)
        await call.done_writing()
    return sent


def one_way(way: str, gap: float, count: int) -> dict[str, Any]:
    """One receiver process, this process sending: the one-way µs after the warm-up."""
    ctx = mp.get_context("spawn")
    ports, results = ctx.Queue(), ctx.Queue()
    receiver = ctx.Process(target=_receiver, args=(way, count, ports, results))
    receiver.start()
    sent = _send(way, ports.get(timeout=30), count, gap)
    got = results.get(timeout=60)
    receiver.join()
    delays = sorted((g - s) * 1e6 for g, s in zip(got[WARMUP:], sent[WARMUP:], strict=True))
    row: dict[str, Any] = {"way": way, "gap_ms": gap * 1000, "messages": len(delays)}
    for name, q in (("p50_us", 50), ("p90_us", 90), ("p99_us", 99)):
        row[name] = round(percentile(delays, q))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gaps", default="0.02,0.0024", help="seconds between messages, comma-separated")
    parser.add_argument("--ways", default="blocking,asyncio,uvloop,grpc")
    parser.add_argument("--messages", type=int, default=450, help=f"per run, the first {WARMUP} not counted")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    ways = [w for w in args.ways.split(",") if w]
    if "uvloop" in ways and importlib.util.find_spec("uvloop") is None:
        raise SystemExit("uvloop is not installed: pip install uvloop, or leave it out of --ways")
    for round_ in range(1, args.rounds + 1):
        for gap in (float(g) for g in args.gaps.split(",")):
            for way in ways:
                print(json.dumps({"round": round_, **one_way(way, gap, args.messages)}), flush=True)


if __name__ == "__main__":
    main()
