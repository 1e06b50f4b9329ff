"""The embedded broker of `make demo` (rumqttd from the iotcore wheel) speaks MQTT 5 with the
uplink: values go through it to a fleet-side listener with nothing installed, open to anyone or
with minted logins."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from anycar.embedded_broker import EmbeddedBroker
from uplink_support import FAST, Listener, campaign_file, hub_with, unique_vehicle, uplink_config

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("logins", [False, True], ids=["anyone", "minted logins"])
async def test_uplink_through_the_embedded_broker(tmp_path: Path, logins: bool) -> None:
    vehicle = unique_vehicle()
    accounts = {vehicle: "v-secret", "fleet": "f-secret"} if logins else None
    with EmbeddedBroker(folder=tmp_path, logins=accounts) as mqtt:
        assert mqtt.url == f"mqtt://127.0.0.1:{mqtt.port}"
        cfg = uplink_config(tmp_path, vehicle, mqtt.port, campaigns=[campaign_file(tmp_path, FAST)])
        fleet_login = {"username": "fleet", "password": "f-secret"} if logins else {}
        if logins:  # the hub logs in as its vehicle, as `anycar demo --uplink` makes it
            cfg.username, cfg.password = vehicle, "v-secret"
        hub, provider, uplink = hub_with(cfg, ["Vehicle.Speed"])
        async with Listener(vehicle, mqtt.port, **fleet_login) as fleet:
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
