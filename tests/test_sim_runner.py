"""The asyncio runner, speedup, and the sinks that feed a broker or a CAN bus."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterable, Mapping
from typing import Any

import can
import cantools
import pytest

from anycar.broker import ActuationStatus, SignalBroker
from anycar.sim.runner import BrokerSink, CanFrameSink, SimulationRunner, measure
from anycar.sim.simulator import HVAC_SETPOINT, SOC, SPEED, SimStep, Simulator


async def test_speedup_runs_faster_than_real_time_but_keeps_pace() -> None:
    sim = Simulator.for_profile("xiaomi_su7", dt=0.5)
    runner = SimulationRunner(sim, speedup=100.0)
    start = time.perf_counter()
    steps = await runner.run(30.0)  # 30 simulated seconds at 100x: 0.3 s
    elapsed = time.perf_counter() - start
    assert steps == 60
    assert 0.25 <= elapsed <= 1.0, elapsed


async def test_as_fast_as_possible_lets_other_tasks_run() -> None:
    sim = Simulator.for_profile("kaiyun_pickman", dt=0.5)
    runner = SimulationRunner(sim, speedup=None)
    ticks = 0

    async def other() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(other())
    start = time.perf_counter()
    steps = await runner.run(1800.0)
    elapsed = time.perf_counter() - start
    task.cancel()
    assert steps == 3600
    assert elapsed < 3.0  # far faster than the 30 minutes it simulates
    assert ticks > steps / 2


async def test_stop_ends_an_open_ended_run() -> None:
    sim = Simulator.for_profile("kaiyun_pickman")
    seen: list[SimStep] = []
    runner = SimulationRunner(sim, [seen.append], speedup=20.0)
    task = asyncio.create_task(runner.run())
    await asyncio.sleep(0.2)
    runner.stop()
    taken = await asyncio.wait_for(task, 2.0)
    assert taken == len(seen) > 0


async def test_a_failing_sink_does_not_stop_the_others() -> None:
    sim = Simulator.for_profile("kaiyun_pickman")
    seen: list[float] = []

    def broken(step: SimStep) -> None:
        raise RuntimeError("sink down")

    async def good(step: SimStep) -> None:
        seen.append(step.t)

    runner = SimulationRunner(sim, [broken, good], speedup=math.inf)
    await runner.run(10.0)
    assert len(seen) == 20 and runner.sink_errors == 20


async def test_broker_sink_publishes_steps_and_serves_inputs() -> None:
    broker = SignalBroker()
    sim = Simulator.for_profile("xiaomi_su7", dt=1.0)
    sink = BrokerSink(broker, sim)
    assert broker.get("Vehicle.CurbWeight").value == 1980  # type: ignore[union-attr]
    sub = broker.subscribe([SPEED, SOC])
    runner = SimulationRunner(sim, [sink], speedup=None)
    await runner.run(60.0)
    batch = sub.drain()
    speeds = [dp.value for dp in batch if dp.path == SPEED]
    assert len(speeds) == 60 and max(speeds) > 20
    assert broker.get(SOC).value == pytest.approx(sim.battery.soc, abs=0.01)  # type: ignore[union-attr]
    assert not sink.rejected

    ok = await broker.actuate(HVAC_SETPOINT, 24.5)
    assert ok.status is ActuationStatus.ACCEPTED
    assert sim.cabin.setpoint_c == 24.5 and broker.get(HVAC_SETPOINT).value == 24.5  # type: ignore[union-attr]
    refused = await broker.actuate(HVAC_SETPOINT, 45.0)
    assert refused.status is ActuationStatus.REJECTED and "within" in refused.reason
    door = await broker.actuate("Vehicle.Cabin.Door.Row1.DriverSide.IsOpen", True)
    assert door.status is ActuationStatus.REJECTED
    sink.close()
    sub.close()


DBC = """VERSION ""

BU_: VCU

BO_ 256 VCU_Speed: 8 VCU
 SG_ VehicleSpeed : 0|16@1+ (0.01,0) [0|655.35] "km/h" VCU
 SG_ GearSelected : 16|8@1- (1,0) [-128|127] "" VCU

BO_ 512 BMS_Status: 8 VCU
 SG_ SocPercent : 0|16@1+ (0.01,0) [0|100] "%" VCU
"""


def _encoder(db: Any) -> Any:
    """A minimal vss2dbc encoder over a real DBC (the brand profiles bring the real mapping)."""
    mapping = {
        "VCU_Speed": {"VehicleSpeed": SPEED, "GearSelected": "Vehicle.Powertrain.Transmission.SelectedGear"},
        "BMS_Status": {"SocPercent": SOC},
    }

    def encode(values: Mapping[str, Any]) -> Iterable[can.Message]:
        for name, signals in mapping.items():
            msg = db.get_message_by_name(name)
            data = msg.encode({sig: values[path] for sig, path in signals.items()})
            yield can.Message(arbitration_id=msg.frame_id, data=data, is_extended_id=False)

    return encode


async def test_can_frame_sink_puts_the_steps_on_a_bus() -> None:
    db = cantools.database.load_string(DBC, "dbc")
    channel = f"sim-test-{time.monotonic_ns()}"
    tx = can.Bus(interface="virtual", channel=channel, receive_own_messages=False)
    rx = can.Bus(interface="virtual", channel=channel)
    try:
        sim = Simulator.for_profile("xiaomi_su7", dt=1.0)
        sink = CanFrameSink(_encoder(db), tx)
        runner = SimulationRunner(sim, [sink], speedup=None)
        await runner.run(40.0)
        assert sink.frames == 80 and not sink.errors
        decoded: dict[str, float] = {}
        while (msg := rx.recv(timeout=0)) is not None:
            decoded.update(db.decode_message(msg.arbitration_id, msg.data))
        assert decoded["VehicleSpeed"] == pytest.approx(runner.last.values[SPEED], abs=0.01)  # type: ignore[union-attr]
        assert decoded["SocPercent"] == pytest.approx(runner.last.values[SOC], abs=0.01)  # type: ignore[union-attr]
        assert decoded["GearSelected"] == 127
    finally:
        tx.shutdown()
        rx.shutdown()


def test_measure_reports_steps_per_second() -> None:
    result = measure(Simulator.for_profile("kaiyun_pickman"), 300)
    assert result["steps"] == 600 and result["steps_per_s"] > 1000 and result["realtime_factor"] > 100
