"""The clock a hub's car lives on: a simulated car's automations follow the simulator's clock
(``--speedup`` times real time, standing still when the simulator stalls), a real car's the wall
clock. ``for:``, delays, waits, times of day and the sun are all measured on it."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
from pathlib import Path

import pytest

from anycar.automations.component import AutomationsComponent
from anycar.automations.engine import Engine
from anycar.broker import SignalBroker
from anycar.clock import WALL, SimClock
from anycar.hub import HubConfig
from anycar.hub.assemble import HubParts, build_hub
from anycar.hub.cabin import CabinComponent
from anycar.hub.simulation import SimulationComponent
from automations_support import DOOR, LIGHT, FakeCar, ended_trace, until, write

LAT, LON = "Vehicle.CurrentLocation.Latitude", "Vehicle.CurrentLocation.Longitude"


class Ticker:
    """A simulated clock's source: ``t`` advances 0.5 s every 5 ms (100x) while running."""

    def __init__(self) -> None:
        self.t = 0.0
        self.running = True
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0.005)
            if self.running:
                self.t += 0.5

    def __enter__(self) -> Ticker:
        self.task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self.task is not None:
            self.task.cancel()


def test_sim_clock_reads_the_simulation_and_converts_to_loop_time() -> None:
    elapsed = [0.0]
    clock = SimClock(1_000_000.0, lambda: elapsed[0], 60.0)
    assert clock.time() == 1_000_000.0 and clock.monotonic() == 0.0
    elapsed[0] = 90.0
    assert clock.time() == 1_000_090.0 and clock.monotonic() == 90.0
    assert clock.loop_delay(30.0) == 0.5 and clock.loop_delay(-1) == 0.0
    assert SimClock(0, lambda: 0.0, math.inf).loop_delay(30.0) == 0.001  # as fast as it can go
    assert WALL.loop_delay(2.5) == 2.5 and abs(WALL.time() - time.time()) < 1
    with pytest.raises(ValueError, match="positive"):
        SimClock(0, lambda: 0.0, 0.0)


async def test_for_and_delay_follow_the_simulated_clock_and_stand_still_with_it(tmp_path: Path) -> None:
    broker = SignalBroker()
    car = FakeCar(broker)
    with Ticker() as ticker:
        clock = SimClock(1_790_000_000.0, lambda: ticker.t, 100.0)
        engine = Engine(broker, clock=clock)
        text = f"""
automations:
  - id: held_door
    triggers: [{{signal: {DOOR}, to: true, for: 20s}}]
    actions:
      - {{actuate: {LIGHT}, value: true}}
      - delay: 30s
      - {{actuate: {LIGHT}, value: false}}
"""
        assert engine.load_paths([write(tmp_path, "a.yaml", text)]) == []
        await engine.start()
        try:
            car.set(DOOR, False)
            await asyncio.sleep(0.05)
            opened_at = clock.time()
            wall0 = time.monotonic()
            car.set(DOOR, True)
            await until(lambda: car.sent(LIGHT) == [True], what="the for: on the simulated clock")
            fired = clock.time()
            assert fired - opened_at >= 20.0  # 20 s of the car's time have passed ...
            assert time.monotonic() - wall0 < 10.0  # ... in a fifth of a second or so of ours
            # the simulator stalls in the middle of the delay: the car's 30 s do not pass
            await asyncio.sleep(0.05)
            ticker.running = False
            stalled = clock.time()
            await asyncio.sleep(0.6)  # 60 s at 100x, were the loop's seconds the car's
            assert car.sent(LIGHT) == [True] and stalled - fired < 30.0
            ticker.running = True
            await until(lambda: car.sent(LIGHT) == [True, False], what="the delay after the stall")
            trace = await ended_trace(engine, "held_door")
            assert trace["result"] == "done"
            assert trace["trigger"]["held_since"] == pytest.approx(opened_at, abs=1.0)
            assert trace["finished"] - trace["started"] >= 30.0  # the trace is in the car's time
        finally:
            await engine.stop()


def _local_noon_longitude(now: float) -> float:
    """A longitude where it is about noon at ``now`` (so night is 12 h away)."""
    utc_hours = (now % 86400) / 3600
    lon = (12.0 - utc_hours) * 15.0
    return (lon + 180.0) % 360.0 - 180.0


@pytest.mark.parametrize("simulated", [True, False])
async def test_after_dark_is_the_simulated_cars_night_not_the_wall_clocks(
    tmp_path: Path, simulated: bool
) -> None:
    """At a place where it is noon by the wall clock, a simulated car whose clock is 12 h ahead
    is in the night: the sun condition holds on its clock, and does not on the wall clock."""
    broker = SignalBroker()
    car = FakeCar(broker)
    now = time.time()
    lon = _local_noon_longitude(now)
    clock = SimClock(now + 12 * 3600, lambda: 0.0, 60.0) if simulated else None
    engine = Engine(broker, clock=clock)
    text = f"""
automations:
  - id: after_dark
    triggers: [{{signal: {DOOR}, to: true}}]
    conditions: [{{sun: {{after: sunset, before: sunrise}}}}]
    actions: [{{actuate: {LIGHT}, value: true}}]
"""
    assert engine.load_paths([write(tmp_path, "a.yaml", text)]) == []
    await engine.start()
    try:
        car.set(LAT, 0.5)  # at the equator day and night are 12 h each, all year
        car.set(LON, lon)
        car.set(DOOR, False)
        await asyncio.sleep(0.05)
        car.set(DOOR, True)
        trace = await ended_trace(engine, "after_dark")
        if simulated:
            assert trace["result"] == "done" and car.sent(LIGHT) == [True], trace
        else:
            assert trace["result"] == "conditions_not_met" and car.sent(LIGHT) == [], trace
    finally:
        await engine.stop()


async def test_a_simulated_hub_hands_the_simulators_clock_to_its_components(tmp_path: Path) -> None:
    config = HubConfig()
    config.ports = dict.fromkeys(config.ports, 0)
    real = build_hub(config, HubParts(dashboard=False, automations=[]))
    assert real.clock is WALL  # a real car lives on the wall clock
    parts = HubParts(
        brand="kaiyun_pickman",
        db_path=tmp_path / "hub.sqlite3",
        simulate=True,
        speedup=50,
        dashboard=False,
        automations=[],
    )
    hub = build_hub(config, parts)
    sim = next(c for c in hub.components if isinstance(c, SimulationComponent))
    assert hub.clock is sim.clock and isinstance(hub.clock, SimClock)
    assert hub.clock.rate == 50
    async with hub:
        cabin = next(c for c in hub.components if isinstance(c, CabinComponent))
        automations = next(c for c in hub.components if isinstance(c, AutomationsComponent))
        assert cabin.policy is not None and cabin.policy.clock is hub.clock
        assert automations.engine is not None and automations.engine.wall == hub.clock.time
        start = hub.clock.time()
        assert start == pytest.approx(sim.sim.start_time.timestamp() + sim.sim.t)
        wall0 = time.monotonic()
        # 20 s of the car's time in well under 20 s of ours (50x, less on a busy machine)
        await until(lambda: hub.clock.time() - start >= 20.0, timeout=10.0, what="20 simulated s")
        assert time.monotonic() - wall0 < 10.0


async def test_times_of_day_are_the_simulated_cars_in_its_own_time_zone(tmp_path: Path) -> None:
    """A Beijing car simulated at 22:59:50 local: its 23:00 trigger fires ten simulated seconds
    later (a tenth of a second of ours at 100x), and its 22:00-06:00 window holds, whatever
    the zone and hour of the machine running the test."""
    beijing = dt.timezone(dt.timedelta(hours=8))
    start = dt.datetime(2026, 3, 20, 22, 59, 50, tzinfo=beijing).timestamp()
    broker = SignalBroker()
    car = FakeCar(broker)
    with Ticker() as ticker:
        clock = SimClock(start, lambda: ticker.t, 100.0, beijing)
        engine = Engine(broker, clock=clock)
        text = f"""
automations:
  - id: night_light
    triggers: [{{time: "23:00"}}]
    conditions: [{{time: {{after: "22:00", before: "06:00"}}}}]
    actions: [{{actuate: {LIGHT}, value: true}}]
"""
        assert engine.load_paths([write(tmp_path, "a.yaml", text)]) == []
        await engine.start()
        wall0 = time.monotonic()
        try:
            await until(lambda: car.sent(LIGHT) == [True], what="23:00 on the simulated clock")
            assert time.monotonic() - wall0 < 5.0  # not the 10 s of the wall clock
            trace = await ended_trace(engine, "night_light")
            assert trace["result"] == "done"
            assert "local time 23:00:" in trace["conditions"][0]["why"], trace["conditions"]
            fired = dt.datetime.fromtimestamp(trace["started"], beijing)
            assert (fired.hour, fired.minute) == (23, 0)
        finally:
            await engine.stop()


async def test_a_waits_timeout_is_the_simulated_cars_and_waits_out_a_stall(tmp_path: Path) -> None:
    broker = SignalBroker()
    car = FakeCar(broker)
    with Ticker() as ticker:
        clock = SimClock(1_790_000_000.0, lambda: ticker.t, 100.0)
        engine = Engine(broker, clock=clock)
        text = f"""
automations:
  - id: wait_for_close
    triggers: [{{signal: {DOOR}, to: true}}]
    actions:
      - wait: {{trigger: {{signal: {DOOR}, to: false}}, timeout: 10s, continue_on_timeout: true}}
      - {{actuate: {LIGHT}, value: true}}
"""
        assert engine.load_paths([write(tmp_path, "a.yaml", text)]) == []
        await engine.start()
        try:
            car.set(DOOR, False)
            await asyncio.sleep(0.05)
            ticker.running = False  # the simulator stalls as the wait begins
            car.set(DOOR, True)
            await asyncio.sleep(0.5)  # 50 s at 100x, were the loop's seconds the car's
            assert car.sent(LIGHT) == []  # the car's 10 s have not passed
            ticker.running = True
            await until(lambda: car.sent(LIGHT) == [True], what="the wait's timeout on the car's clock")
            trace = await ended_trace(engine, "wait_for_close")
            assert trace["finished"] - trace["started"] >= 10.0
        finally:
            await engine.stop()
