"""A network cut in the middle of a batch: a TCP proxy between the hub and Mosquitto drops every
connection while messages (and their PUBACKs) are in flight. What was published but not
acknowledged is sent again; the fleet's dedup counts it once; nothing is missing."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from anycar.uplink import UplinkComponent
from uplink_support import Listener, bare_hub, campaign_file, unique_vehicle, uplink_config

pytestmark = pytest.mark.timeout(60)
CHATTY = """
id: chatty
version: 1
signals: [{path: Vehicle.Speed}]
collect: {periodic: {period_ms: 10}}
batch: {max_values: 2, max_delay_ms: 10}
"""


class CuttableProxy:
    """Forwards 127.0.0.1:port to Mosquitto; ``cut()`` drops every open connection at once."""

    def __init__(self, target: int = 1883) -> None:
        self.target = target
        self.port = 0
        self.cuts = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> CuttableProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        except asyncio.CancelledError:
            pass  # stop(): the proxy's own end, not an error for asyncio's server to report
        finally:
            self._writers -= {writer, up_writer}
            self._tasks.discard(task)

    def cut(self) -> None:
        self.cuts += 1
        for w in list(self._writers):
            w.transport.abort()  # no FIN, no goodbye: the link is just gone

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()


async def test_cutting_the_network_mid_batch_loses_nothing(tmp_path: Path) -> None:
    proxy = await CuttableProxy().start()
    vehicle = unique_vehicle()
    cfg = uplink_config(tmp_path, vehicle, proxy.port, campaigns=[campaign_file(tmp_path, CHATTY)])
    hub = bare_hub()
    provider = hub.broker.register_provider("car", ["Vehicle.Speed"])
    uplink = UplinkComponent(cfg)
    hub.add_component(uplink)
    try:
        async with Listener(vehicle) as fleet:  # straight to Mosquitto: only the hub's link is cut
            await hub.start()
            for i in range(150):
                provider.publish("Vehicle.Speed", float(i))
                await asyncio.sleep(0.01)
                if i % 40 == 20:  # messages flow at ~100/s: some are always on the wire
                    proxy.cut()
            await fleet.wait_for(lambda: uplink.spool is not None and uplink.spool.depth == 0, 30)
            await fleet.wait_for(
                lambda: (
                    sorted(m["seq"] for m in fleet.messages if m["seq"]) == list(range(1, uplink.seq + 1))
                ),
                30,
            )
            assert proxy.cuts >= 1 and uplink.link is not None and uplink.link.connects >= 2
            assert uplink.spool is not None and uplink.spool.counters.get("dropped", 0) == 0
            assert uplink.crashes == {}
    finally:
        await hub.stop()
        await proxy.stop()
