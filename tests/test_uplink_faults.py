"""Faults on a broker of the test's own: down while driving, restarted, a hub killed with a full
spool, a jumping clock. Nothing acknowledged is lost and nothing counts twice after dedup."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from anycar.uplink import UplinkComponent
from anycar.wire import samples
from uplink_support import FAST, Listener, Mosquitto, bare_hub, campaign_file, unique_vehicle, uplink_config

pytestmark = pytest.mark.timeout(90)
SPEED = "Vehicle.Speed"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"


def uplink_seqs(fleet: Listener, boot: str) -> list[int]:
    return sorted(m["seq"] for m in fleet.messages if m["boot"] == boot and m["seq"] > 0)


async def drive(provider: object, seconds: float, start: float = 0.0) -> float:
    """Write speed and SoC every 20 ms for ``seconds``; returns the last speed written."""
    speed = start
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        speed += 0.5
        provider.publish_many([(SPEED, speed), (SOC, 70.0)])  # type: ignore[attr-defined]
        await asyncio.sleep(0.02)
    return speed


async def test_broker_down_while_driving_then_back_loses_nothing(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path).start()
    vehicle = unique_vehicle()
    cfg = uplink_config(tmp_path, vehicle, broker.port, campaigns=[campaign_file(tmp_path, FAST)])
    hub = bare_hub()
    provider = hub.broker.register_provider("car", [SPEED, SOC])
    uplink = UplinkComponent(cfg)
    hub.add_component(uplink)
    try:
        async with Listener(vehicle, broker.port, persistent=True) as fleet:
            await hub.start()
            await drive(provider, 0.5)
            await fleet.wait_for(lambda: len(fleet.of("telemetry")) >= 2)
            broker.stop()  # the outage ("60 s", compressed)
            last = await drive(provider, 2.0, 100.0)
            assert uplink.spool is not None and uplink.spool.depth > 0
            assert not uplink.link.connected  # type: ignore[union-attr]
            backlog = uplink.spool.depth
            broker.start()
            last = await drive(provider, 1.0, last)
            await fleet.wait_for(lambda: uplink.spool is not None and uplink.spool.depth == 0, 30)
            await fleet.wait_for(
                lambda: uplink_seqs(fleet, uplink.origin.boot) == list(range(1, uplink.seq + 1)), 30
            )
            got = [s[2] for m in fleet.of("telemetry") for s in samples(m) if s[0] == SPEED]
            assert 150.0 in got or max(got) >= 150.0  # values from the outage arrived
            assert uplink.link is not None and uplink.link.connects >= 2
            assert uplink.spool.counters.get("dropped", 0) == 0
            assert backlog > 3
            assert not fleet.bad
            assert uplink.crashes == {}  # a broken link is a reconnect, not a crash
    finally:
        await hub.stop()
        broker.stop()


async def test_clock_jumps_neither_lose_nor_repeat_messages(tmp_path: Path) -> None:
    offset = [0.0]

    def clock() -> float:
        return time.time() + offset[0]

    vehicle = unique_vehicle()
    text = FAST.replace("priority: 5", "priority: 5\nttl_s: 30")
    cfg = uplink_config(tmp_path, vehicle, campaigns=[campaign_file(tmp_path, text)])
    hub = bare_hub()
    provider = hub.broker.register_provider("car", [SPEED, SOC])
    uplink = UplinkComponent(cfg, clock=clock)
    hub.add_component(uplink)
    async with Listener(vehicle) as fleet:
        await hub.start()
        try:
            await drive(provider, 0.4)
            offset[0] = 3600.0  # an hour ahead (NTP catching up after a cold start)
            await drive(provider, 0.4)
            offset[0] = -7200.0  # and back before the start
            await drive(provider, 0.4)
            await fleet.wait_for(lambda: uplink.spool is not None and uplink.spool.depth == 0)
            await fleet.wait_for(
                lambda: uplink_seqs(fleet, uplink.origin.boot) == list(range(1, uplink.seq + 1))
            )
            assert uplink.spool is not None and uplink.spool.counters.get("dropped_expired", 0) == 0
            assert fleet.dedup.duplicates == 0
        finally:
            await hub.stop()


HUB_CONFIG = """
ports: {{grpc: null, viss: null, http: null, accessories: 0}}
uplink:
  broker: mqtt://127.0.0.1:{port}
  vehicle_id: {vehicle}
  campaigns: [fast.yaml]
  spool: {{path: uplink.sqlite3}}
  reconnect: {{min_s: 0.05, max_s: 0.3}}
"""


def spool_rows(path: Path) -> list[tuple[str, int]]:
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        try:
            return [(r[0], r[1]) for r in db.execute("SELECT boot, seq FROM spool ORDER BY id")]
        except sqlite3.OperationalError:
            return []


def start_hub(folder: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "anycar.cli.main",
            "hub",
            "--config",
            str(folder / "hub.yaml"),
            "--brand",
            "kaiyun_pickman",
            "--simulate",
            "--speedup",
            "8",
            "--db",
            str(folder / "hub.sqlite3"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


async def test_hub_killed_with_a_full_spool_drains_everything_after_restart(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path)  # not started yet: the hub spools while the link is down
    vehicle = unique_vehicle()
    campaign_file(
        tmp_path,
        FAST.replace("Vehicle.Speed}", "Vehicle.Speed}\n  - {path: Vehicle.CurrentLocation.Latitude}"),
        "fast.yaml",
    )
    (tmp_path / "hub.yaml").write_text(HUB_CONFIG.format(port=broker.port, vehicle=vehicle))
    spool = tmp_path / "uplink.sqlite3"
    hub = start_hub(tmp_path)
    try:
        deadline = time.monotonic() + 60
        while len(spool_rows(spool)) < 20:
            assert hub.poll() is None, hub.stderr.read() if hub.stderr else ""
            assert time.monotonic() < deadline, "the hub did not spool"
            await asyncio.sleep(0.1)
        hub.send_signal(signal.SIGKILL)
        hub.wait(10)
        before = spool_rows(spool)
        assert len(before) >= 20
        broker.start()
        async with Listener(vehicle, broker.port, persistent=True) as fleet:
            hub = start_hub(tmp_path)
            await fleet.wait_for(lambda: {(m["boot"], m["seq"]) for m in fleet.messages} >= set(before), 60)
            old_boot = before[0][0]
            assert sorted(m["seq"] for m in fleet.messages if m["boot"] == old_boot) == sorted(
                s for _, s in before
            )
            new_boots = {m["boot"] for m in fleet.messages} - {old_boot}
            assert new_boots  # the restarted hub reports with a boot of its own
            state = [m for m in fleet.of("state") if m["state"] == "online"]
            assert state and json.dumps(state[-1])
    finally:
        if hub.poll() is None:
            hub.send_signal(signal.SIGTERM)
            try:
                hub.wait(15)
            except subprocess.TimeoutExpired:
                hub.kill()
        broker.stop()
