"""The uplink end to end on the real Mosquitto: campaigns sample the broker, batches reach a
fleet-side listener through the spool, birth and will say online and offline."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from anycar.uplink import UplinkComponent
from anycar.wire import samples
from uplink_support import FAST, Listener, bare_hub, campaign_file, unique_vehicle, uplink_config

pytestmark = pytest.mark.timeout(60)


async def test_values_reach_the_fleet_in_batches_and_state_is_online(tmp_path: Path) -> None:
    vehicle = unique_vehicle()
    cfg = uplink_config(tmp_path, vehicle, campaigns=[campaign_file(tmp_path, FAST)])
    hub = bare_hub()
    provider = hub.broker.register_provider(
        "car", ["Vehicle.Speed", "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"]
    )
    uplink = UplinkComponent(cfg)
    hub.add_component(uplink)
    async with Listener(vehicle) as fleet:
        await hub.start()
        try:
            for i in range(20):
                provider.publish_many(
                    [
                        ("Vehicle.Speed", 30.0 + i),
                        ("Vehicle.Powertrain.TractionBattery.StateOfCharge.Current", 80.0),
                    ]
                )
                await asyncio.sleep(0.03)
            await fleet.wait_for(lambda: any(s[2] == 49.0 for m in fleet.of("telemetry") for s in samples(m)))
            states = fleet.of("state")
            assert states and states[0]["state"] == "online" and "fast@1" in states[0]["campaigns"]
            batch = fleet.of("telemetry")[0]
            assert batch["campaign"] == "fast" and batch["boot"] == uplink.origin.boot
            assert len(batch["values"]) > 1  # many values per message
            assert not fleet.bad
            await fleet.wait_for(lambda: uplink.spool is not None and uplink.spool.depth == 0)
        finally:
            await hub.stop()
        await fleet.wait_for(lambda: fleet.of("state")[-1]["state"] == "offline")
