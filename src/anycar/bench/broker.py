"""`anycar bench broker`: publish-to-delivery through the in-process broker.

A provider publishes batches of ~100 numeric signals; 1 and then 10 subscribers drain them on
the same event loop (one core). Latency is taken per update, from the publish timestamp to the
moment the subscriber holds it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from anycar.bench.stats import latency_summary
from anycar.broker import SignalBroker
from anycar.model import Catalog, NodeType, Signal
from anycar.model.datatypes import INTEGER_RANGES

KUKSA_REFERENCE = {
    "signals_per_s": 83_935,
    "p99_ms": 1.2,
    "source": "KUKSA databroker, gRPC provider->subscriber",
}


def bench_signals(catalog: Catalog, count: int) -> list[tuple[Signal, list[Any]]]:
    """``count`` numeric sensors with a few valid values each, to publish in turn."""
    chosen: list[tuple[Signal, list[Any]]] = []
    for sig in catalog:
        if sig.type is not NodeType.SENSOR or sig.allowed:
            continue
        if sig.datatype in ("float", "double"):
            lo = sig.min if sig.min is not None else -1000.0
            hi = sig.max if sig.max is not None else 1000.0
            vals: list[Any] = [lo + (hi - lo) * f for f in (0.1, 0.4, 0.7)]
        elif sig.datatype in INTEGER_RANGES:
            lo_i, hi_i = INTEGER_RANGES[sig.datatype]
            lo_i = max(lo_i, int(sig.min) if sig.min is not None else 0)
            hi_i = min(hi_i, int(sig.max) if sig.max is not None else lo_i + 100)
            vals = [lo_i, (lo_i + hi_i) // 2, hi_i]
        else:
            continue
        chosen.append((sig, vals))
        if len(chosen) == count:
            break
    return chosen


async def _run(subscribers: int, signals: int, seconds: float, batch: int) -> dict[str, Any]:
    broker = SignalBroker()
    chosen = bench_signals(broker.catalog, signals)
    provider = broker.register_provider("bench", [s.path for s, _ in chosen])
    rounds = [[(s.path, vals[r % len(vals)]) for s, vals in chosen] for r in range(3)]
    flat = [item for r in rounds for item in r]
    batches = [flat[i : i + batch] for i in range(0, len(flat), batch)]
    subs = [
        broker.subscribe([s.path for s, _ in chosen], name=f"s{i}", queue_size=100_000)
        for i in range(subscribers)
    ]
    latencies: list[list[float]] = [[] for _ in subs]
    received = [0] * subscribers

    async def consume(i: int) -> None:
        sub, lat = subs[i], latencies[i]
        sub.drain()  # no initial values yet, but keep it honest
        while True:
            got = await sub.get()
            if not got:
                return
            now = time.time()
            lat.extend([now - dp.timestamp for dp in got])
            received[i] += len(got)

    tasks = [asyncio.create_task(consume(i)) for i in range(subscribers)]
    await asyncio.sleep(0)
    published = 0
    start = time.perf_counter()
    stop = start + seconds
    k = 0
    while True:
        for _ in range(20):
            items = batches[k % len(batches)]
            provider.publish_many(items)
            published += len(items)
            k += 1
            await asyncio.sleep(0)
        if time.perf_counter() >= stop:
            break
    while min(received) < published:
        await asyncio.sleep(0)
    elapsed = time.perf_counter() - start
    for sub in subs:
        sub.close()
    await asyncio.gather(*tasks)
    merged = [x for lat in latencies for x in lat]
    out: dict[str, Any] = {
        "subscribers": subscribers,
        "signals": len(chosen),
        "batch": batch,
        "published": published,
        "updates_per_s": round(published / elapsed),
        "deliveries_per_s": round(sum(received) / elapsed),
        "dropped": sum(s.dropped for s in subs),
        "seconds": round(elapsed, 3),
    }
    out.update(latency_summary(merged))
    return out


def run(seconds: float = 2.0, signals: int = 100, batch: int = 100) -> dict[str, Any]:
    """Both runs (1 and 10 subscribers); the top-level figures are the 1-subscriber run."""
    one = asyncio.run(_run(1, signals, seconds, batch))
    ten = asyncio.run(_run(10, signals, seconds, batch))
    return {
        "benchmark": "broker",
        "updates_per_s": one["updates_per_s"],
        "p50_ms": one["p50_ms"],
        "p99_ms": one["p99_ms"],
        "runs": [one, ten],
        "goal": {"updates_per_s": 300_000, "p99_ms": 1.0},
        "reference": KUKSA_REFERENCE,
    }
