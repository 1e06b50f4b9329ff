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


async def test_rest_views_of_the_uplink(tmp_path: Path) -> None:
    import httpx

    from anycar.hub import Hub, HubConfig

    vehicle = unique_vehicle()
    config = HubConfig()
    config.ports = {"grpc": None, "viss": None, "http": 0, "accessories": None}
    hub = Hub(config)
    uplink = UplinkComponent(uplink_config(tmp_path, vehicle, campaigns=[campaign_file(tmp_path, FAST)]))
    hub.add_component(uplink)
    await hub.start()
    try:
        base = hub.endpoints()["http"]
        async with httpx.AsyncClient(base_url=base) as client:
            status = (await client.get("/api/v1/uplink")).json()
            assert (
                status["vehicle"] == vehicle
                and "depth" in status["spool"]
                and status["campaigns"] == ["fast@1"]
            )
            listed = (await client.get("/api/v1/uplink/campaigns")).json()["campaigns"]
            assert listed[0]["id"] == "fast" and listed[0]["running"] is True
            spec = (await client.get("/openapi.json")).json()
            assert "/api/v1/uplink" in spec["paths"]
            # the hub's own health shows the uplink beside every other background task
            health = (await client.get("/api/v1/info")).json()["health"]
            assert set(health["details"]["uplink"]) >= {"connected", "crashes", "spool"}
    finally:
        await hub.stop()
    assert "uplink" not in hub.supervisor.health().get("details", {})


async def test_signals_an_accessory_adds_later_join_the_default_campaign(tmp_path: Path) -> None:
    from anycar.model import Catalog
    from anycar.model.overlay import parse_overlay_text
    from anycar.uplink.config import DEFAULT_CAMPAIGN

    vehicle = unique_vehicle()
    catalog = Catalog.load_default()
    from anycar.hub import Hub, HubConfig

    config = HubConfig()
    config.ports = dict.fromkeys(config.ports)
    hub = Hub(config, catalog=catalog)
    uplink = UplinkComponent(uplink_config(tmp_path, vehicle, campaigns=[DEFAULT_CAMPAIGN]))
    hub.add_component(uplink)
    await hub.start()
    try:
        runner = uplink.runners["default"]
        assert "Vehicle.Accessories.cargo1.Weight" not in runner.deadband
        branch = "Vehicle.Accessories:\n  type: branch\n  description: fitted accessories\n"
        node = "Vehicle.Accessories.cargo1:\n  type: branch\n  description: a cargo sensor\n"
        leaf = "Vehicle.Accessories.cargo1.Weight:\n  type: sensor\n  datatype: float\n  unit: kg\n  description: load\n"
        catalog.apply_overlay(parse_overlay_text(branch + node + leaf, source="cargo.vspec"))
        assert runner.deadband["Vehicle.Accessories.cargo1.Weight"] == 1  # the campaign's dead-band
        provider = hub.broker.register_provider("cargo1", ["Vehicle.Accessories.cargo1.Weight"])
        provider.publish("Vehicle.Accessories.cargo1.Weight", 120.0)
        deadline = asyncio.get_running_loop().time() + 5
        while runner.latest.get("Vehicle.Accessories.cargo1.Weight") != 120.0:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
    finally:
        await hub.stop()
