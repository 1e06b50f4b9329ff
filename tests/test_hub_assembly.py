"""The assembled hub: simulator -> CAN -> brand adapter -> broker, accessories, APIs, dashboard."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import jsonschema
import pytest

from anycar.brands import load_profile
from anycar.dashboard import api_schema
from anycar.errors import ConfigError
from anycar.hub import Hub, HubConfig
from anycar.hub.assemble import HubParts, build_hub
from anycar.hub.cabin import CabinComponent
from anycar.hub.simulation import SimulationComponent
from anycar.hub.vehicle import VehicleComponent, parse_can_source
from anycar.policy.privileges import Privilege


def _config() -> HubConfig:
    config = HubConfig()
    config.ports = dict.fromkeys(config.ports, 0)
    return config


async def _wait_for(predicate: object, seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not predicate():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def test_the_simulator_drives_the_broker_through_can(tmp_path: Path) -> None:
    hub = build_hub(
        _config(), HubParts(brand="kaiyun_pickman", simulate=True, speedup=20, seed=1, dashboard=False)
    )
    async with hub:
        sim = next(c for c in hub.components if isinstance(c, SimulationComponent))
        vehicle = next(c for c in hub.components if isinstance(c, VehicleComponent))
        await _wait_for(lambda: (hub.broker.get("Vehicle.Speed") or (0, 0.0))[1] not in (None, 0.0))
        assert hub.broker.provider_of("Vehicle.Speed") == "can:kaiyun_pickman"
        assert sim.sink is not None and sim.sink.frames > 0 and not sim.sink.errors
        assert vehicle.adapter is not None
        bad = {k: v for k, v in vehicle.adapter.stats()["bad_input"].items() if v}
        assert bad == {}, bad


async def test_rest_answers_match_the_dashboards_schemas(tmp_path: Path) -> None:
    parts = HubParts(
        brand="kaiyun_pickman",
        db_path=tmp_path / "hub.sqlite3",
        virtual_fleet=True,
        simulate=True,
        speedup=10,
    )
    async with build_hub(_config(), parts) as hub:
        cabin = next(c for c in hub.components if isinstance(c, CabinComponent))
        assert cabin.virtual, "no virtual accessory found a mount"
        base = hub.endpoints()["http"]
        async with httpx.AsyncClient(base_url=base) as client:
            for name, url in (
                ("vehicle", "/api/v1/vehicle"),
                ("accessories", "/api/v1/accessories"),
                ("driving-state", "/api/v1/driving-state"),
                ("events", "/api/v1/events?limit=20"),
                ("signals", "/api/v1/signals?pattern=Vehicle.Cabin.Door.**"),
            ):
                response = await client.get(url)
                assert response.status_code == 200, (url, response.text)
                jsonschema.Draft202012Validator(api_schema(name)).validate(response.json())
            events = (await client.get("/api/v1/events")).json()["events"]
            assert any(e["kind"] == "fitted" for e in events)
            assert (await client.get("/api/v1/events?limit=many")).status_code == 400
            config = (await client.get("/config.json")).json()
            assert config["viss"] == hub.endpoints()["viss"] and config["api"] == "/api/v1"
            assert "<html" in (await client.get("/")).text.lower()
            assert (await client.get("/openapi.json")).json()["paths"]["/api/v1/vehicle"]


async def test_a_can_log_is_replayed_into_the_broker() -> None:
    profile = load_profile("xiaomi_su7")
    log = profile.sample_log_path()
    assert log is not None
    hub = build_hub(_config(), HubParts(brand="xiaomi_su7", can=str(log), dashboard=False))
    async with hub:
        await _wait_for(lambda: hub.broker.get("Vehicle.Speed") is not None)
        assert hub.broker.provider_of("Vehicle.Speed") == "can:xiaomi_su7"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("missing.log", "no such CAN log file"),
        ("can0", "INTERFACE:CHANNEL"),
        ("virtual:a,b,c", "has 2 bus"),
    ],
)
def test_bad_can_sources_say_what_is_wrong(source: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_can_source(source, load_profile("byd_seal"))


def test_parts_that_need_a_brand_say_so() -> None:
    with pytest.raises(ConfigError, match="need --brand"):
        build_hub(_config(), HubParts(simulate=True))
    with pytest.raises(ConfigError, match="one source"):
        build_hub(_config(), HubParts(brand="byd_seal", can="x.log", simulate=True))


async def test_a_live_virtual_bus_feeds_the_adapter() -> None:
    import can

    from anycar.brands import ProfileEncoder

    hub = build_hub(_config(), HubParts(brand="nio_et7", can="virtual:nio-test-bus", dashboard=False))
    async with hub:
        sender = can.Bus(interface="virtual", channel="nio-test-bus")
        try:
            for frame in ProfileEncoder("nio_et7").encode({"Vehicle.Speed": 42.0}):
                sender.send(frame)
            await _wait_for(lambda: (hub.broker.get("Vehicle.Speed") or (0, None))[1] == 42.0)
        finally:
            sender.shutdown()


def test_anycar_demo_runs_and_stops_by_itself() -> None:
    offset = random.randint(1000, 9000)  # another suite on this machine may hold a fixed one
    busy = socket.socket()
    busy.bind(("127.0.0.1", 8090 + offset))  # the demo's VISS port with this offset
    busy.listen()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "anycar.cli.main",
            "demo",
            "--headless",
            "--duration",
            "4",
            "--speedup",
            "10",
            "--port-offset",
            str(offset),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert f"open the dashboard: http://127.0.0.1:{8080 + offset}/" in out.stdout
    assert "accessories fitted" in out.stdout and " 0 accessories fitted" not in out.stdout
    assert f"port {8090 + offset} (viss) is taken: using a free one instead" in out.stdout
    busy.close()


def test_hub_endpoints_name_every_server(tmp_path: Path) -> None:
    async def run() -> dict[str, str]:
        parts = HubParts(brand="byd_seal", db_path=tmp_path / "db.sqlite3")
        async with build_hub(_config(), parts) as hub:
            assert isinstance(hub, Hub)
            return hub.endpoints()

    endpoints = asyncio.run(run())
    assert set(endpoints) == {"grpc", "viss", "http", "accessories", "dashboard"}
    json.dumps(endpoints)


async def test_grants_over_rest_are_checked_and_stored(tmp_path: Path) -> None:
    parts = HubParts(brand="byd_seal", db_path=tmp_path / "hub.sqlite3", dashboard=False)
    async with (
        build_hub(_config(), parts) as hub,
        httpx.AsyncClient(base_url=hub.endpoints()["http"]) as client,
    ):
        ok = await client.put(
            "/api/v1/grants/navigation-app",
            json={
                "privilege": "Operate",
                "reads": ["Vehicle.Speed"],
                "actuates": ["Vehicle.Cabin.Light.*"],
            },
        )
        assert ok.status_code == 200 and ok.json()["privilege"] == "Operate"
        listed = (await client.get("/api/v1/grants")).json()["grants"]
        assert any(g["subject"] == "navigation-app" for g in listed)
        for body, code in (
            ({"privilege": "Emperor"}, 400),
            ({"reads": "Vehicle.Speed"}, 400),
            ({"actuates": ["Vehicle.Warp.Drive"]}, 404),
        ):
            bad = await client.put("/api/v1/grants/x", json=body)
            assert bad.status_code == code, (body, bad.text)
            assert bad.json()["error"]["message"]
        assert (await client.put("/api/v1/grants/x", content=b"{not json")).status_code == 400


async def test_nobody_grants_more_than_their_token_holds(tmp_path: Path) -> None:
    from apis_support import Keys

    keys = Keys(tmp_path)
    config = _config()
    config.token_public_key = keys.public_path
    parts = HubParts(brand="byd_seal", db_path=tmp_path / "hub.sqlite3", dashboard=False)
    async with (
        build_hub(config, parts) as hub,
        httpx.AsyncClient(base_url=hub.endpoints()["http"]) as client,
    ):
        narrow = {
            "Authorization": f"Bearer {keys.token('read:Vehicle.Speed actuate:Vehicle.Cabin.Light.* admin')}"
        }
        body = {"reads": ["Vehicle.Speed"], "actuates": ["Vehicle.Cabin.Door.*.*.IsOpen"]}
        refused = await client.put("/api/v1/grants/app", json=body, headers=narrow)
        assert refused.status_code == 403
        body["actuates"] = ["Vehicle.Cabin.Light.IsDomeOn"]
        assert (await client.put("/api/v1/grants/app", json=body, headers=narrow)).status_code == 200
        assert (await client.get("/api/v1/grants")).status_code == 401


async def test_an_apps_own_grant_narrows_its_token_on_the_apis(tmp_path: Path) -> None:
    from kuksa_client.grpc.aio import VSSClient

    from apis_support import Keys

    keys = Keys(tmp_path)
    config = _config()
    config.token_public_key = keys.public_path
    parts = HubParts(brand="byd_seal", db_path=tmp_path / "hub.sqlite3", dashboard=False)
    async with build_hub(config, parts) as hub:
        cabin = next(c for c in hub.components if isinstance(c, CabinComponent))
        assert cabin.policy is not None
        wide = keys.token("read actuate", subject="nav-app")
        headers = {"Authorization": f"Bearer {wide}"}
        async with httpx.AsyncClient(base_url=hub.endpoints()["http"]) as client:
            assert (await client.get("/Vehicle/Speed", headers=headers)).status_code != 403
            cabin.policy.grant_app("nav-app", Privilege.VIEW, reads=["Vehicle.CurrentLocation.*"])
            assert (await client.get("/Vehicle/Speed", headers=headers)).status_code == 403
            assert (await client.get("/Vehicle/CurrentLocation/Latitude", headers=headers)).status_code != 403
        host, port = hub.endpoints()["grpc"].removeprefix("grpc://").rsplit(":", 1)
        async with VSSClient(host, int(port), token=wide) as client:
            with pytest.raises(Exception, match=r"(?i)grant|permission|denied"):
                await client.get_current_values(["Vehicle.Speed"])
        refusals = [e for e in cabin.policy.events.recent() if e.kind == "refusal" and e.subject == "nav-app"]
        assert refusals


async def test_a_hub_with_a_cabin_can_be_restarted(tmp_path: Path) -> None:
    hub = build_hub(_config(), HubParts(brand="byd_seal", db_path=tmp_path / "hub.sqlite3", dashboard=False))
    for _ in range(2):
        async with hub, httpx.AsyncClient(base_url=hub.endpoints()["http"]) as client:
            assert (await client.get("/api/v1/vehicle")).json()["id"] == "byd_seal"
