"""The idle-time collector: it collects what CPython's own trigger would, off the message path."""

from __future__ import annotations

import asyncio
import gc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anycar.idle_gc import HUB_YOUNG, OLDER, SAFETY_YOUNG, YOUNG, IdleCollector, generation_due


@given(st.integers(0, 5000), st.integers(0, 30), st.integers(0, 30))
def test_the_generation_due_is_the_oldest_one_over_its_threshold(gen0: int, gen1: int, gen2: int) -> None:
    due = generation_due((gen0, gen1, gen2))
    if gen0 < YOUNG:
        assert due is None
    elif gen1 < OLDER:
        assert due == 0
    else:
        assert due == (2 if gen2 >= OLDER else 1)


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_a_step_frees_cycles_once_enough_are_pending() -> None:
    gc.collect()
    saved = gc.get_threshold()
    gc.disable()  # no automatic collection may free them before the step does
    try:
        collector = IdleCollector(young=50)
        assert collector.step() is None  # nothing pending yet
        alive_before = len(gc.get_objects(0))
        for _ in range(200):
            Cycle()  # unreachable at once, freed only by the cyclic collector
        assert len(gc.get_objects(0)) >= alive_before + 200
        assert collector.step() == 0
        assert len([o for o in gc.get_objects(0) if isinstance(o, Cycle)]) == 0
        assert collector.collections[0] == 1
    finally:
        gc.enable()
        gc.set_threshold(*saved)


def test_while_it_runs_the_automatic_trigger_is_only_a_safety_net_and_comes_back_after() -> None:
    saved = gc.get_threshold()

    async def main() -> tuple[int, ...]:
        collector = IdleCollector(period_s=0.01)
        task = asyncio.create_task(collector.run())
        await asyncio.sleep(0.05)
        during = gc.get_threshold()
        for _ in range(HUB_YOUNG):  # over the hub's young threshold, under the safety net
            Cycle()
        await asyncio.sleep(0.05)  # a tick or more: the pending cycles are collected on the timer
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert sum(collector.collections) >= 1
        return during

    during = asyncio.run(main())
    assert during == (SAFETY_YOUNG, saved[1], saved[2])
    assert gc.get_threshold() == saved


def _hub_tasks(tmp_path, *extra: str) -> list[str]:
    """The background tasks a real ``anycar hub`` process reports in /api/v1/info."""
    import json
    import signal
    import subprocess
    import sys
    from pathlib import Path

    import httpx

    config = tmp_path / "hub.yaml"
    config.write_text("ports: {grpc: 0, viss: null, http: 0}\n")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "anycar"), "hub", "--config", str(config), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("anycar hub ready "), line
        http = json.loads(line.removeprefix("anycar hub ready "))["http"]
        health = httpx.get(http + "/api/v1/info", timeout=10).json()["health"]
        return [t["name"] for t in health["tasks"] if t["state"] == "running"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)


def test_anycar_hub_collects_on_the_timer_unless_told_to_leave_it_to_python(tmp_path) -> None:
    assert "idle-gc" in _hub_tasks(tmp_path)
    assert "idle-gc" not in _hub_tasks(tmp_path, "--gc", "python")


def _collections_over_a_5000_per_s_stream(collector: IdleCollector, messages: int = 1000) -> list[int]:
    """The hub's steady churn at 5,000 signals/s, without the sockets: messages of 100 signals
    published through the broker to a drained subscriber and to the VISS history's rings (filed
    every 5 messages, as its 0.1 s timer does), the collector's tick every 5 messages."""
    from anycar.api.viss.history import HistoryRecorder
    from anycar.bench.broker import bench_signals
    from anycar.broker import SignalBroker
    from anycar.model import Catalog

    catalog = Catalog.load_default()
    broker = SignalBroker(catalog)
    chosen = bench_signals(catalog, 100)
    provider = broker.register_provider("p", [sig.path for sig, _ in chosen])
    history = HistoryRecorder(broker)
    recorded = broker.subscribe(["**"], queue_size=100_000, name="viss:history")
    sub = broker.subscribe([sig.path for sig, _ in chosen], queue_size=1000, name="viss:x")
    gc.collect()
    gc.freeze()
    saved = gc.get_threshold()
    gc.disable()
    try:
        for k in range(messages):
            provider.publish_signals([(sig, values[k % len(values)]) for sig, values in chosen], 1e9 + k)
            sub.drain()
            if k % 5 == 4:
                history._file(recorded.drain())
                collector.step()
    finally:
        gc.enable()
        gc.set_threshold(*saved)
        gc.unfreeze()
    return collector.collections


def test_the_hubs_steady_churn_does_not_make_the_collector_run_every_few_ticks() -> None:
    """At CPython's 700 the Datapoints the history keeps alive trigger a collection every
    ~100 messages that finds nothing; at the hub's threshold at most one in 1,000 messages."""
    assert sum(_collections_over_a_5000_per_s_stream(IdleCollector(young=YOUNG))) >= 5
    assert sum(_collections_over_a_5000_per_s_stream(IdleCollector())) <= 1
