"""Campaign files and how a campaign samples: the shipped default, clear errors for bad files,
periodic collection that speeds up while a condition holds, dead-bands and heartbeats."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import pytest

from anycar.broker import SignalBroker
from anycar.errors import ConfigError
from anycar.model import Catalog
from anycar.uplink.campaigns import Campaign, Periodic, load_campaign_file
from anycar.uplink.collector import CampaignRunner, passes_deadband
from anycar.uplink.config import DEFAULT_CAMPAIGN

CATALOG = Catalog.load_default()
SPEED, SOC = "Vehicle.Speed", "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"


def write(tmp: Path, text: str) -> Path:
    path = tmp / "c.yaml"
    path.write_text(text)
    return path


def test_the_shipped_default_campaign() -> None:
    c = load_campaign_file(DEFAULT_CAMPAIGN, CATALOG)
    assert c.id == "default" and c.events and c.qos == 1
    assert isinstance(c.scheme, Periodic)
    assert c.scheme.period_s == 60 and c.scheme.fast_period_s == 1 and c.scheme.fast_when is not None
    patterns = {s.pattern for s in c.signals}
    assert {"Vehicle.CurrentLocation.Latitude", SPEED, SOC, "Vehicle.Cabin.Door.*.*.IsOpen"} <= patterns
    assert any("Accessories" in p for p in patterns)  # cargo sensors, once fitted


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id: x\nversion: 1\nsignals: [\n", r"c.yaml:\d+: not valid YAML"),
        (
            "id: x\nversion: 1\nsignals: []\ncollect: {periodic: {period_ms: 100}}\n",
            r"signals: \[\] has less than 1 item",
        ),
        (
            "id: x\nversion: 1\nsignals: [{path: Vehicle.Speed}]\ncollect: {periodic: {period_ms: 1}}\n",
            r"period_ms",
        ),
        (
            "id: x\nversion: 1\nsignals: [{path: 'Vehicle..Speed'}]\ncollect: {periodic: {period_ms: 100}}\n",
            r"signals\[0\]\.path",
        ),
        (
            "id: x\nversion: 1\nsignals: [{path: Vehicle.Speed}]\ncollect: {condition: {expression: 'Vehicle.Sped > 1'}}\n",
            r"Vehicle.Sped.*not a VSS signal",
        ),
        (
            "id: x\nversion: 1\nsignals: [{path: Vehicle.Speed}]\ncollect: {condition: {expression: 'random(1) > 0'}}\n",
            r"not allowed|not a VSS signal",
        ),
        (
            "id: x\nversion: 1\nstart: tomorrow\nsignals: [{path: Vehicle.Speed}]\ncollect: {periodic: {period_ms: 100}}\n",
            r"start",
        ),
        (
            "id: x\nversion: 1\nsignals: [{path: Vehicle.Speed}]\ncollect: {periodic: {period_ms: 100}}\nextra: 1\n",
            r"extra",
        ),
    ],
)
def test_bad_campaign_files_say_where(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        load_campaign_file(write(tmp_path, text), CATALOG)
    assert "\n" not in str(err.value)


def test_start_and_stop_times(tmp_path: Path) -> None:
    text = "id: x\nversion: 1\nstart: '2026-01-01T00:00:00Z'\nstop: '2026-02-01T00:00:00+08:00'\nsignals: [{path: Vehicle.Speed}]\ncollect: {periodic: {period_ms: 100}}\n"
    c = load_campaign_file(write(tmp_path, text), CATALOG)
    assert c.start is not None and c.stop is not None
    assert not c.active(c.start - 1) and c.active(c.start + 1) and not c.active(c.stop)


def test_deadband_rules() -> None:
    assert passes_deadband(None, 1.0, 1.0, seen=True)
    assert passes_deadband(0.5, None, 3.0, seen=False)
    assert not passes_deadband(0.5, 10.0, 10.4, seen=True) and passes_deadband(0.5, 10.0, 10.5, seen=True)
    assert not passes_deadband(0, True, True, seen=True) and passes_deadband(0, True, False, seen=True)
    assert passes_deadband(0, "ON", "OFF", seen=True)


async def test_periodic_speeds_up_while_moving_and_applies_deadbands(tmp_path: Path) -> None:
    """The slow period and the heartbeat are 5 s, the fast one 40 ms: the test's moving phase
    takes well under a second however loaded the machine (it waits on the runner, not on the
    clock), and the heartbeats it may still meet are counted from the time it measured."""
    slow_s = 5.0
    text = f"""
id: adaptive
version: 1
signals: [{{path: {SPEED}, deadband: 1.0}}, {{path: {SOC}, deadband: 0}}]
collect:
  periodic:
    period_ms: {slow_s * 1000:.0f}
    full_every_ms: {slow_s * 1000:.0f}
    while: {{condition: {SPEED} > 0.5, period_ms: 40}}
batch: {{max_values: 1000, max_delay_ms: 50}}
"""
    broker = SignalBroker(CATALOG)
    provider = broker.register_provider("car", [SPEED, SOC])
    provider.publish_many([(SPEED, 0.0), (SOC, 80.0)])
    got: list[tuple[Campaign, list[Any]]] = []
    runner = CampaignRunner(
        load_campaign_file(write(tmp_path, text), CATALOG), broker, lambda c, rows, t: got.append((c, rows))
    )
    loop = asyncio.get_running_loop()

    async def until(check: Any, what: str) -> None:
        deadline = loop.time() + 30
        while not check():
            assert loop.time() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.005)

    started = loop.time()
    await runner.start()
    try:
        await until(lambda: got, "the first sample")
        parked = sum(len(rows) for _, rows in got)
        assert parked == 2  # one sample of each at the start (a full one), then quiet while parked
        assert runner.period() == slow_s
        for i in range(20):  # moving: 40 ms ticks, speed changes by 0.3 per write
            provider.publish(SPEED, 1.0 + 0.3 * i)
            await until(lambda i=i: runner.latest[SPEED] == 1.0 + 0.3 * i, "the runner to see the write")
            await asyncio.sleep(0.02)
        assert runner.period() == 0.04
        await runner.stop()  # sends what is pending
        heartbeats = int((loop.time() - started) // slow_s)  # full samples after the first one
        speeds = [v for _, rows in got for p, _, v in rows if p == SPEED]
        socs = [v for _, rows in got for p, _, v in rows if p == SOC]
        assert len(speeds) >= 4  # sampled faster than the slow period (that would be 1 + heartbeats)
        small = sum(1 for a, b in itertools.pairwise(speeds[1:]) if abs(b - a) < 1.0)
        assert small <= 1 + heartbeats  # dead-band (a heartbeat sends regardless)
        assert len(speeds) < 20  # not every write
        assert socs.count(80.0) <= 1 + heartbeats  # unchanged: only on a heartbeat
    finally:
        await runner.stop()
