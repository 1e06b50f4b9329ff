"""`anycar bench api`: provider -> hub -> subscriber over loopback, through gRPC and through VISS.

Three processes, as a user would run them: the hub (``anycar hub``), a provider that publishes
batches over ``OpenProviderStream`` (``PublishValuesRequest``), and a subscriber: first a
kuksa.val.v2 ``Subscribe`` client, then a VISS v2 WebSocket client. The provider stamps each
datapoint with its send time; the subscriber takes latency as receive time minus that stamp
(one host, one clock). Figures count only what arrives after a warm-up.
"""

from __future__ import annotations

import asyncio
import gc
import json
import multiprocessing as mp
import os
import subprocess  # nosec B404 # the benchmark starts the hub it measures
import sys
import time
from datetime import datetime
from typing import Any

from anycar.bench.broker import KUKSA_REFERENCE, bench_signals
from anycar.bench.stats import latency_summary
from anycar.model import Catalog

GOAL = {"signals_per_s": KUKSA_REFERENCE["signals_per_s"], "p99_ms": 5.0, "transport": "grpc"}


# -- the processes ---------------------------------------------------------------------------------
def _freeze_startup_heap() -> None:
    """Like ``anycar hub``: imported modules live as long as the process, so a full collection
    need not walk them (it takes tens of ms and would show as latency in the client, not the hub)."""
    gc.collect()
    gc.freeze()


def _provider(
    port: int,
    plan: list[tuple[int, str, list[Any]]],
    seconds: float,
    rate: float,
    batch: int,
    warmup: float,
    warmup_at: Any,
    out: Any,
) -> None:
    import grpc
    from kuksa.val.v2 import types_pb2 as t2
    from kuksa.val.v2 import val_pb2 as v2
    from kuksa.val.v2 import val_pb2_grpc

    async def run() -> None:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        stub = val_pb2_grpc.VALStub(channel)
        sent = 0
        rounds = len(plan[0][2])
        messages_per_round = max(1, len(plan) // batch)
        interval = batch / rate if rate > 0 else 0.0

        call = stub.OpenProviderStream()
        errors = 0

        async def read_reports() -> None:
            nonlocal errors
            try:
                while True:
                    response = await call.read()
                    if response is grpc.aio.EOF:
                        return
                    if response.HasField("publish_values_response"):
                        errors += len(response.publish_values_response.status)
            except (grpc.aio.AioRpcError, asyncio.CancelledError):
                return

        reader = asyncio.create_task(read_reports())
        warmup_at[0] = time.time() + warmup
        cpu0, wall0 = time.process_time(), time.monotonic()
        start = time.perf_counter()
        next_at = start
        k = 0
        while time.perf_counter() - start < seconds:
            values = k % rounds
            chunk = plan[(k % messages_per_round) * batch : (k % messages_per_round + 1) * batch]
            stamp = int(time.time() * 1e9)
            points = {}
            for sid, field, vals in chunk:
                dp = t2.Datapoint()
                dp.timestamp.FromNanoseconds(stamp)
                setattr(dp.value, field, vals[values])
                points[sid] = dp
            await call.write(
                v2.OpenProviderStreamRequest(
                    publish_values_request=v2.PublishValuesRequest(request_id=k, data_points=points)
                )
            )
            sent += len(chunk)
            k += 1
            if interval:
                next_at += interval
                delay = next_at - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
        await asyncio.sleep(0.3)  # error reports, if any, arrive before the stream ends
        call.cancel()
        reader.cancel()
        await channel.close()
        cpu = 100 * (time.process_time() - cpu0) / (time.monotonic() - wall0)
        out.send({"sent": sent, "errors": errors, "cpu_percent": round(cpu, 1)})

    _freeze_startup_heap()
    asyncio.run(run())


def _grpc_subscriber(port: int, paths: list[str], warmup_at: Any, ready: Any, stop: Any, out: Any) -> None:
    import grpc
    from kuksa.val.v2 import val_pb2 as v2
    from kuksa.val.v2 import val_pb2_grpc

    async def run() -> None:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        stub = val_pb2_grpc.VALStub(channel)
        call = stub.Subscribe(v2.SubscribeRequest(signal_paths=paths, buffer_size=100_000))
        await call.read()  # the initial state: the subscription is in place
        ready.set()
        cpu0, wall0 = time.process_time(), time.monotonic()
        latencies: list[float] = []
        counted = 0
        first = last = 0.0

        async def watch() -> None:
            while not stop.is_set():
                await asyncio.sleep(0.05)
            call.cancel()

        watcher = asyncio.create_task(watch())
        try:
            while True:
                message = await call.read()
                if message is grpc.aio.EOF:
                    break
                now = time.time()
                for dp in message.entries.values():
                    ts = dp.timestamp.seconds + dp.timestamp.nanos * 1e-9
                    if ts >= warmup_at[0]:
                        latencies.append(now - ts)
                        counted += 1
                        if not first:
                            first = now
                        last = now
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass
        watcher.cancel()
        await channel.close()
        cpu = round(100 * (time.process_time() - cpu0) / (time.monotonic() - wall0), 1)
        out.send(
            {"latencies": latencies, "received": counted, "first": first, "last": last, "cpu_percent": cpu}
        )

    _freeze_startup_heap()
    asyncio.run(run())


def _viss_subscriber(port: int, paths: list[str], warmup_at: Any, ready: Any, stop: Any, out: Any) -> None:
    from websockets.asyncio.client import connect

    def parse_ts(text: str) -> float:
        return datetime.fromisoformat(text).timestamp()

    async def run() -> None:
        latencies: list[float] = []
        counted = 0
        first = last = 0.0
        root = "Vehicle"
        rel = [p.removeprefix(root + ".") for p in paths]
        async with connect(f"ws://127.0.0.1:{port}", subprotocols=["VISSv2"], max_size=None) as ws:  # type: ignore[list-item]
            await ws.send(
                json.dumps(
                    {
                        "action": "subscribe",
                        "path": root,
                        "filter": {"type": "paths", "parameter": rel},
                        "requestId": "b",
                    }
                )
            )
            reply = json.loads(await ws.recv())
            assert "subscriptionId" in reply, reply  # nosec B101 # a benchmark's sanity check of the hub's reply, not a guard
            ready.set()
            cpu0, wall0 = time.process_time(), time.monotonic()

            async def watch() -> None:
                while not stop.is_set():
                    await asyncio.sleep(0.05)
                await ws.close()

            watcher = asyncio.create_task(watch())
            try:
                async for raw in ws:
                    now = time.time()
                    data = json.loads(raw).get("data")
                    if data is None:
                        continue
                    for obj in data if isinstance(data, list) else [data]:
                        dps = obj["dp"]
                        for dp in dps if isinstance(dps, list) else [dps]:
                            ts = parse_ts(dp["ts"])
                            if ts >= warmup_at[0]:
                                latencies.append(now - ts)
                                counted += 1
                                if not first:
                                    first = now
                                last = now
            except Exception:  # nosec B110 # the measuring client ends when the hub closes the socket; the counts so far are the result
                pass
            watcher.cancel()
        cpu = round(100 * (time.process_time() - cpu0) / (time.monotonic() - wall0), 1)
        out.send(
            {"latencies": latencies, "received": counted, "first": first, "last": last, "cpu_percent": cpu}
        )

    _freeze_startup_heap()
    asyncio.run(run())


# -- orchestration -----------------------------------------------------------------------------------
def _start_hub(profile: str | None = None) -> tuple[subprocess.Popen[str], dict[str, str]]:
    prefix = ["-m", "cProfile", "-o", profile] if profile else []
    cmd = [
        sys.executable,
        *prefix,
        "-m",
        "anycar.cli.main",
        "hub",
        "--grpc-port",
        "0",
        "--viss-port",
        "0",
        "--http-port",
        "0",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # nosec B603 # a fixed argument list (this interpreter, anycar hub, port 0), no shell, no outside input
    assert proc.stdout is not None  # nosec B101 # narrows an Optional for mypy; an invariant of this object, not a check of outside input
    line = proc.stdout.readline()
    if not line.startswith("anycar hub ready "):
        proc.kill()
        raise RuntimeError(f"the hub did not start: {line!r}")
    return proc, json.loads(line.removeprefix("anycar hub ready "))


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc); None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _one(
    transport: str,
    endpoints: dict[str, str],
    seconds: float,
    rate: float,
    batch: int,
    signals: int,
    warmup: float,
    hub_pid: int,
) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    chosen = bench_signals(Catalog.load_default(), signals)
    from anycar.api.grpc.convert import field_for

    plan = [(sig.id, field_for(sig.datatype), vals) for sig, vals in chosen]
    paths = [sig.path for sig, _ in chosen]
    ready, stop = ctx.Event(), ctx.Event()
    sub_recv, sub_send = ctx.Pipe(duplex=False)
    prov_recv, prov_send = ctx.Pipe(duplex=False)
    warmup_at = ctx.Array("d", [float("inf")])
    target = _grpc_subscriber if transport == "grpc" else _viss_subscriber
    port = _port(endpoints["grpc" if transport == "grpc" else "viss"])
    subscriber = ctx.Process(target=target, args=(port, paths, warmup_at, ready, stop, sub_send), daemon=True)
    subscriber.start()
    if not ready.wait(30):
        subscriber.kill()
        raise RuntimeError(f"the {transport} subscriber did not subscribe")
    provider = ctx.Process(
        target=_provider,
        args=(_port(endpoints["grpc"]), plan, seconds, rate, batch, warmup, warmup_at, prov_send),
        daemon=True,
    )
    cpu_before, wall_before = _cpu_seconds(hub_pid), time.monotonic()
    provider.start()
    sent: dict[str, Any] = prov_recv.recv() if prov_recv.poll(seconds + 60) else {"sent": 0, "errors": -1}
    provider.join(10)
    cpu_after, wall_after = _cpu_seconds(hub_pid), time.monotonic()
    time.sleep(0.5)  # let the last updates arrive
    stop.set()
    result: dict[str, Any] = (
        sub_recv.recv() if sub_recv.poll(60) else {"latencies": [], "received": 0, "first": 0, "last": 0}
    )
    subscriber.join(10)
    window = max(1e-9, result["last"] - result["first"])
    out: dict[str, Any] = {
        "transport": transport,
        "subscriber": "kuksa.val.v2 Subscribe" if transport == "grpc" else "VISS v2 WebSocket subscribe",
        "provider": "kuksa.val.v2 OpenProviderStream PublishValuesRequest",
        "signals": len(plan),
        "batch": batch,
        "offered_per_s": rate if rate > 0 else "unpaced",
        "published": sent["sent"],
        "publish_errors": sent["errors"],
        "received": result["received"],
        "signals_per_s": round(result["received"] / window) if result["received"] else 0,
        "seconds": seconds,
        "provider_cpu_percent": sent.get("cpu_percent"),
        "subscriber_cpu_percent": result.get("cpu_percent"),
        "hub_cpu_percent": (
            round(100 * (cpu_after - cpu_before) / (wall_after - wall_before), 1)
            if cpu_before is not None and cpu_after is not None
            else None
        ),
    }
    out.update(latency_summary(result["latencies"]))
    return out


def run(
    seconds: float = 6.0,
    rate: float = 100_000.0,
    batch: int = 100,
    signals: int = 100,
    warmup: float = 2.0,
    transports: tuple[str, ...] = ("grpc", "viss"),
    profile: str | None = None,
) -> dict[str, Any]:
    """``profile``: write a cProfile of the hub process there (to see where its time goes)."""
    hub, endpoints = _start_hub(profile)
    try:
        runs = [_one(t, endpoints, seconds, rate, batch, signals, warmup, hub.pid) for t in transports]
    finally:
        hub.terminate()
        try:
            hub.wait(10)
        except subprocess.TimeoutExpired:
            hub.kill()
    by = {r["transport"]: r for r in runs}
    out: dict[str, Any] = {"benchmark": "api"}
    for name, r in by.items():
        out[name] = {k: r[k] for k in ("signals_per_s", "p50_ms", "p99_ms")}
    out["runs"] = runs
    out["goal"] = GOAL
    out["reference"] = KUKSA_REFERENCE
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    out["machine"] = {"cpus": os.cpu_count(), "processes": "hub, provider, subscriber", "load_1min": load}
    return out
