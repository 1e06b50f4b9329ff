"""The SDK's periodic publish when the socket closes under it: the owner removes the accessory
on the hub while the maker's code is busy in a callback, so the next periodic round publishes
onto the closed socket before the session can notice. One clean line and a clean stop, no
ConnectionClosedOK traceback (and no traceback every round). A real hub (accessory server,
broker, policy) on a free port and the real SDK over WebSocket."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from websockets.protocol import State

from helpers_accessories import fit, make, running_hub, until

SPEED, GEAR = "Vehicle.Speed", "Vehicle.Powertrain.Transmission.SelectedGear"


async def test_a_periodic_publish_on_a_socket_the_hub_closed_stops_cleanly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="anycar.accessories.sdk")
    async with running_hub(tmp_path / "hub.sqlite3") as hub:
        car: Any = hub.feed()
        lamp = make("cabin_light", hub, "L-9")
        busy, release = asyncio.Event(), asyncio.Event()
        rounds: list[str] = []

        @lamp.on_restrictions
        async def slow_to_react(restrictions: list[str], state: str) -> None:
            busy.set()
            await release.wait()  # the maker's code takes its time; the session waits for it

        @lamp.every(0.005)
        async def report_light() -> None:
            ws = lamp._ws
            # closing or closed: the round meets a socket it can no longer publish on
            rounds.append("open" if ws is not None and ws.state is State.OPEN else "closed")
            await lamp.publish(IsLightOn=len(rounds) % 2 == 0)

        rec = await fit(hub, lamp, "ceiling_mount_rear")
        await until(lambda: len(rounds) >= 5)
        car.publish_many([(SPEED, 35.0), (GEAR, 127)])  # moving: the hub sends new restrictions
        await until(busy.is_set)
        await hub.manager.remove(rec.instance)  # "removed", then the hub closes the socket (1000)
        await until(lambda: "closed" in rounds)
        await asyncio.sleep(0.1)  # twenty periodic intervals: a live loop would have logged on
        release.set()
        assert lamp._task is not None
        await asyncio.wait_for(lamp._task, 10)  # run ends: removed, so no reconnect
        assert lamp.state == "removed"
        assert rounds.count("closed") == 1, rounds[-5:]  # the round that met the closed socket was the last
        sdk = [r for r in caplog.records if r.name == "anycar.accessories.sdk"]
        assert not [r for r in sdk if r.exc_info], [r.getMessage() for r in sdk if r.exc_info][:2]
        stopped = [r.getMessage() for r in sdk if "report_light stopped" in r.getMessage()]
        assert len(stopped) == 1 and "\n" not in stopped[0], stopped
        assert "the connection to the hub ended" in stopped[0] and "1000" in stopped[0]
        await lamp.stop()
