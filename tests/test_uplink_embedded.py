"""The embedded broker of `make demo` (rumqttd from the iotcore wheel) speaks MQTT 5 with the
uplink: values go through it to a fleet-side listener with nothing installed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from anycar.embedded_broker import EmbeddedBroker
from anycar.uplink import UplinkComponent
from uplink_support import FAST, Listener, bare_hub, campaign_file, unique_vehicle, uplink_config

pytestmark = pytest.mark.timeout(60)


async def test_uplink_through_the_embedded_broker(tmp_path: Path) -> None:
    with EmbeddedBroker(folder=tmp_path) as mqtt:
        assert mqtt.url == f"mqtt://127.0.0.1:{mqtt.port}"
        vehicle = unique_vehicle()
        cfg = uplink_config(tmp_path, vehicle, mqtt.port, campaigns=[campaign_file(tmp_path, FAST)])
        hub = bare_hub()
        provider = hub.broker.register_provider("car", ["Vehicle.Speed"])
        uplink = UplinkComponent(cfg)
        hub.add_component(uplink)
        async with Listener(vehicle, mqtt.port) as fleet:
            await hub.start()
            try:
                for i in range(10):
                    provider.publish("Vehicle.Speed", float(i))
                    await asyncio.sleep(0.03)
                await fleet.wait_for(lambda: len(fleet.of("telemetry")) >= 2)
                await fleet.wait_for(lambda: uplink.spool is not None and uplink.spool.depth == 0)
                assert fleet.of("state")[0]["state"] == "online" and not fleet.bad
            finally:
                await hub.stop()
