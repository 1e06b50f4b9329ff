"""`anycar bench automations`: 1,000 automations on one hub's broker.

- start-up: 1,000 definitions read from a YAML file, checked against the catalog, indexed and
  subscribed (goal <= 1 s);
- trigger-to-action latency: a threshold crossing published by a provider, to the moment the
  actuator's provider is asked to act (through the subscription, the index, the run, the
  owner's grant check and the broker's actuation), one at a time (goal p99 <= 2 ms);
- evaluation throughput: updates of watched signals evaluated by their triggers, as fast as a
  provider publishes them (goal >= 50,000/s); and the same when every second update fires a run;
- publish cost: a publish of signals no automation watches, on the same broker and provider with
  the 1,000 automations running and stopped, in turn (goal: < 5 % more); and a publish of watched
  signals that fires nothing, against the same broker with one plain subscriber to them instead
  (what 1,000 automations add beyond the one subscription they share).
"""

from __future__ import annotations

import asyncio
import gc
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from anycar.automations.engine import Engine
from anycar.bench.stats import latency_summary
from anycar.broker import ActuationRequest, SignalBroker
from anycar.model import parse_overlay

TARGET = "Vehicle.Cabin.Light.Spotlight.Row1.DriverSide.Intensity"
GOALS = {"startup_s": 1.0, "p99_ms": 2.0, "triggers_per_s": 50_000, "publish_overhead_percent": 5.0}


def _broker(count: int, others: int) -> SignalBroker:
    broker = SignalBroker()
    nodes = {
        f"Vehicle.Bench.T{i:04d}": {"type": "sensor", "datatype": "float", "description": "bench"}
        for i in range(count)
    }
    nodes.update(
        {
            f"Vehicle.Bench.O{i:04d}": {"type": "sensor", "datatype": "float", "description": "bench"}
            for i in range(others)
        }
    )
    broker.catalog.apply_overlay(parse_overlay(nodes, source="bench"))
    return broker


def _definitions(count: int) -> str:
    lines = ["automations:"]
    for i in range(count):
        lines += [
            f"  - id: a{i:04d}",
            "    mode: parallel",
            "    max: 100",
            "    max_runs_per_minute: 6000",
            f"    triggers: [{{signal: Vehicle.Bench.T{i:04d}, above: 50, hysteresis: 5}}]",
            f"    actions: [{{actuate: {TARGET}, value: {i % 100 + 1}}}]",
        ]
    return "\n".join(lines) + "\n"


async def _measure(count: int, samples: int, burst: int, rounds: int) -> dict[str, Any]:
    broker = _broker(count, 100)
    asked: list[float] = []
    asked_cpu: list[float] = []
    signal = asyncio.Event()

    def on_actuate(req: ActuationRequest) -> None:
        asked.append(time.perf_counter())
        asked_cpu.append(time.process_time())
        signal.set()

    car = broker.register_provider("bench-car", ["Vehicle.Bench"], on_actuate=None)
    broker.register_provider("bench-light", [TARGET], on_actuate=on_actuate)
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "bench.yaml"
        file.write_text(_definitions(count))
        engine = Engine(broker, rate_limits=True)
        t0, c0 = time.perf_counter(), time.process_time()
        problems = engine.load_paths([file])
        await engine.start()
        startup = time.perf_counter() - t0
        startup_cpu = time.process_time() - c0
    gc.collect()
    gc.freeze()  # as `anycar hub` does once it has started
    if problems:
        raise RuntimeError(f"bench definitions refused: {problems[0]}")
    paths = [f"Vehicle.Bench.T{i:04d}" for i in range(count)]
    car.publish_many([(p, 0.0) for p in paths])
    await asyncio.sleep(0.05)

    # -- trigger to action, one at a time ------------------------------------------------------
    latencies: list[float] = []
    on_cpu: list[float] = []
    for k in range(samples):
        path = paths[k % count]
        signal.clear()
        start, start_cpu = time.perf_counter(), time.process_time()
        car.publish(path, 60.0)
        await asyncio.wait_for(signal.wait(), 5)
        latencies.append(asked[-1] - start)
        on_cpu.append(asked_cpu[-1] - start_cpu)
        car.publish(path, 0.0)  # re-arm (below the hysteresis band)
        await asyncio.sleep(0)
    await _settle(engine)

    # -- evaluation throughput: values that move but fire nothing --------------------------------
    engine.counters["evaluated"] = 0
    quiet = [[(p, float((k + j) % 40)) for p in paths] for j in range(burst)]
    t1 = time.perf_counter()
    for batch in quiet:
        car.publish_many(batch)
    await _drained(engine)
    eval_s = time.perf_counter() - t1
    evaluated = len(quiet) * count

    # -- the same with every second update a crossing that runs the automation -------------------
    runs_before = engine.counters["runs"]
    asked.clear()
    firing = [[(p, 60.0 if j % 2 == 0 else 0.0) for p in paths] for j in range(4)]
    t2 = time.perf_counter()
    for batch in firing:
        car.publish_many(batch)
    await _drained(engine)
    while len(asked) < engine.counters["runs"] - runs_before:
        await asyncio.sleep(0.001)
    fire_s = time.perf_counter() - t2
    fired_runs = engine.counters["runs"] - runs_before

    # -- publish cost: the same broker and provider with the engine running and stopped, in turn
    others = [f"Vehicle.Bench.O{i:04d}" for i in range(100)]
    watched = paths[:100]
    loaded_t, none_t, watched_t, watched_none_t = [], [], [], []
    for r in range(rounds):
        items = [(p, float(r)) for p in others]
        quiet_items = [(p, float(r % 40)) for p in watched]  # watched, and firing nothing
        loaded_t.append(_publish_cost(car, items))
        watched_t.append(_publish_cost(car, quiet_items, 300))
        await _drained(engine)
        await engine.stop()
        none_t.append(_publish_cost(car, items))
        # what 1,000 automations add beyond the one subscription they share: one plain subscriber
        plain = broker.subscribe(watched, name="one-plain-subscriber", send_current=False, queue_size=100_000)
        watched_none_t.append(_publish_cost(car, quiet_items, 300))
        plain.close()
        await engine.start()
    await engine.stop()
    gc.unfreeze()
    # the least time of the interleaved rounds: the machine's noise only ever adds time
    none_us, loaded_us = min(none_t), min(loaded_t)
    w_none_us, w_us = min(watched_none_t), min(watched_t)
    lat = latency_summary(latencies)
    cpu = latency_summary(on_cpu)
    return {
        "automations": count,
        "startup_s": round(startup, 3),
        "startup_cpu_s": round(startup_cpu, 3),
        "trigger_to_action_p50_ms": lat["p50_ms"],
        "trigger_to_action_p99_ms": lat["p99_ms"],
        "trigger_to_action_max_ms": lat["max_ms"],
        # the same path in this process's CPU time: what it costs when the machine does not take
        # the CPU away in between (the wall-clock tail on a shared machine is the scheduler's)
        "trigger_to_action_cpu_p50_ms": cpu["p50_ms"],
        "trigger_to_action_cpu_p99_ms": cpu["p99_ms"],
        "samples": samples,
        "triggers_per_s": round(evaluated / eval_s),
        "firing_updates_per_s": round(len(firing) * count / fire_s),
        "runs_per_s": round(fired_runs / fire_s),
        "publish_us_per_update_none": round(none_us, 4),
        "publish_us_per_update_loaded": round(loaded_us, 4),
        "publish_overhead_percent": round((loaded_us - none_us) / none_us * 100, 2),
        "watched_publish_us_per_update_one_subscriber": round(w_none_us, 4),
        "watched_publish_us_per_update_loaded": round(w_us, 4),
        "watched_publish_overhead_percent": round((w_us - w_none_us) / w_none_us * 100, 2),
        "loadavg_1min": round(os.getloadavg()[0], 2),
        "cpu_count": os.cpu_count(),
    }


def _publish_cost(provider: Any, items: list[tuple[str, Any]], repeat: int = 2000) -> float:
    """CPU microseconds per update of ``publish_many`` over ``repeat`` batches: the process's own
    CPU time, so that time the shared machine gives to others does not count as cost."""
    t = time.process_time()
    for _ in range(repeat):
        provider.publish_many(items)
    return (time.process_time() - t) / (repeat * len(items)) * 1e6


async def _drained(engine: Engine) -> None:
    sub = engine._sub
    while sub is not None and sub.pending:
        await asyncio.sleep(0)
    await asyncio.sleep(0)


async def _settle(engine: Engine) -> None:
    while any(engine._running.values()):
        await asyncio.sleep(0.001)


def run(
    count: int = 1000, samples: int = 2000, burst: int = 50, rounds: int = 7, repeat: int = 3
) -> dict[str, Any]:
    """``repeat`` runs in fresh event loops; the top-level figures are the median run's."""
    runs = [asyncio.run(_measure(count, samples, burst, rounds)) for _ in range(repeat)]
    mid = sorted(runs, key=lambda r: r["trigger_to_action_p99_ms"])[len(runs) // 2]
    keys = ("startup_s", "startup_cpu_s", "trigger_to_action_p50_ms", "trigger_to_action_p99_ms",
            "trigger_to_action_cpu_p99_ms", "triggers_per_s",
            "runs_per_s", "publish_overhead_percent", "watched_publish_overhead_percent",
            "loadavg_1min")  # fmt: skip
    return {
        "benchmark": "automations",
        **{k: mid[k] for k in keys},
        "runs": runs,
        "goal": GOALS,
        "met": {
            "startup_s": mid["startup_s"] <= GOALS["startup_s"],
            "p99_ms": mid["trigger_to_action_p99_ms"] <= GOALS["p99_ms"],
            "triggers_per_s": mid["triggers_per_s"] >= GOALS["triggers_per_s"],
            "publish_overhead_percent": mid["publish_overhead_percent"] < GOALS["publish_overhead_percent"],
        },
    }
