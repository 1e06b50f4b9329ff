"""The fleet's REST API, live feed and OsmAnd listener, served by FleetServer on free ports over
a real database: token auth first, role rights as sets, and per-tenant isolation on every route
(a user of tenant A never sees B's vehicles, positions, events or dead letters)."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import httpx
import pytest
import websockets

from anycar.fleet import registry
from anycar.fleet.server import FleetConfig, FleetServer
from anycar.fleet.store import Accepted, DeadLetter
from anycar.wire import Origin, decode, encode, messages
from fleet_support import eventually, fleet_engine, vin

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


@pytest.fixture(params=["sqlite", "postgres"])
async def fleet(request, tmp_path: Path):
    with fleet_engine(request.param, tmp_path) as engine:
        url = engine.url.render_as_string(hide_password=False)
        cfg = FleetConfig(
            db_url=url,
            workers=1,
            vehicles=[f"none-{uuid.uuid4().hex[:8]}"],
            group=f"t{uuid.uuid4().hex[:8]}",
            api_port=0,
            osmand_port=0,
        )
        server = FleetServer(cfg)
        server.workers[0].session_s = 60
        await server.start()
        try:
            yield server
        finally:
            await server.stop()


def _seed(server: FleetServer) -> dict:
    engine = server.engine
    out: dict = {}
    for tenant in ("acme", "rival"):
        hub = registry.add_vehicle(
            engine, vin(1), "kaiyun_pickman", tenant=tenant, wire_id=f"{tenant}-hub-{uuid.uuid4().hex[:6]}"
        )
        tracker = registry.add_vehicle(engine, vin(2), "generic", tenant=tenant, tracker=True)
        ref = server.store.vehicle(hub.vehicle)
        origin = Origin(hub.vehicle, "0123456789abcdef")
        tel = messages.telemetry(
            origin,
            1,
            [("Vehicle.CurrentLocation.Latitude", T0, 48.1), ("Vehicle.CurrentLocation.Longitude", T0, 11.5)],
            campaign="c",
            version=1,
            prio=5,
            ts=T0,
        )
        ev = messages.events(origin, 2, [{"type": "low_soc", "ts": T0, "position": None}], prio=1, ts=T0)
        server.store.commit(
            [Accepted(ref, decode(encode(tel))), Accepted(ref, decode(encode(ev)))],
            [DeadLetter(f"anycar/v1/{hub.vehicle}/telemetry", "schema", "bad", b"x", ref.id)],
        )
        tokens = {
            role: registry.add_user(engine, tenant, f"{role}-{tenant}", role) for role in registry.ROLE_RIGHTS
        }
        out[tenant] = {"hub": hub.vehicle, "tracker": tracker.vehicle, "tokens": tokens}
    return out


async def test_auth_rights_and_tenant_isolation(fleet: FleetServer) -> None:
    seed = _seed(fleet)
    api = fleet.ready()["api"]
    async with httpx.AsyncClient(base_url=api) as http:
        doc = (await http.get("/openapi.json")).json()
        assert doc["openapi"] == "3.1.0" and "/api/vehicles/{vehicle}/track" in doc["paths"]
        routes = [
            "/api/vehicles",
            "/api/positions/last",
            "/api/events",
            "/api/dead-letters",
            f"/api/vehicles/{seed['acme']['hub']}",
            f"/api/vehicles/{seed['acme']['hub']}/track?day=2026-01-01",
        ]
        for path in routes:
            r = await http.get(path)
            assert r.status_code == 401 and r.json()["error"]["reason"] == "unauthenticated"
            r = await http.get(path, headers={"Authorization": "Bearer not-a-token"})
            assert r.status_code == 401
        acme = {"Authorization": f"Bearer {seed['acme']['tokens']['owner']}"}
        rival = {"Authorization": f"Bearer {seed['rival']['tokens']['owner']}"}
        vehicles = (await http.get("/api/vehicles", headers=acme)).json()
        assert {v["id"] for v in vehicles} == {seed["acme"]["hub"], seed["acme"]["tracker"]}
        (last,) = (await http.get("/api/positions/last", headers=acme)).json()
        assert last["vehicle"] == seed["acme"]["hub"] and last["lat"] == 48.1
        track = (
            await http.get(f"/api/vehicles/{seed['acme']['hub']}/track?day=2026-01-01", headers=acme)
        ).json()
        assert [(p["lat"], p["lon"]) for p in track] == [(48.1, 11.5)]
        assert (
            await http.get(f"/api/vehicles/{seed['acme']['hub']}/track?day=2026-01-02", headers=acme)
        ).json() == []
        (event,) = (await http.get("/api/events", headers=acme)).json()
        assert event["type"] == "low_soc" and event["vehicle"] == seed["acme"]["hub"]
        (letter,) = (await http.get("/api/dead-letters", headers=acme)).json()
        assert letter["vehicle"] == seed["acme"]["hub"]
        # rival's owner, by every route and parameter, sees nothing of acme's
        a_hub = seed["acme"]["hub"]
        for path in (
            f"/api/vehicles/{a_hub}",
            f"/api/vehicles/{a_hub}/track?day=2026-01-01",
            f"/api/vehicles/{seed['acme']['tracker']}",
        ):
            r = await http.get(path, headers=rival)
            assert r.status_code == 404, path
        assert (await http.get(f"/api/events?vehicle={a_hub}", headers=rival)).json() == []
        for path in ("/api/vehicles", "/api/positions/last", "/api/events", "/api/dead-letters"):
            body = (await http.get(path, headers=rival)).text
            assert seed["acme"]["hub"] not in body and seed["acme"]["tracker"] not in body, path
        # rights by role, compared as sets
        for role, code in (("viewer", 403), ("driver", 403), ("dispatcher", 200), ("owner", 200)):
            r = await http.get(
                "/api/dead-letters", headers={"Authorization": f"Bearer {seed['acme']['tokens'][role]}"}
            )
            assert r.status_code == code, role
        # bad parameters: one-line errors, not tracebacks; SQL in a filter is just a string
        r = await http.get(f"/api/vehicles/{a_hub}/track?day=yesterday", headers=acme)
        assert r.status_code == 400 and "day:" in r.json()["error"]["message"]
        assert (await http.get("/api/events?limit=0", headers=acme)).status_code == 400
        r = await http.get("/api/events", params={"vehicle": "x' OR '1'='1"}, headers=acme)
        assert r.status_code == 200 and r.json() == []


async def _next_position(ws, timeout: float) -> dict:
    """The next position on a live feed, past the domain's alerts (the seed's low_soc event)."""

    async def read() -> dict:
        while True:
            msg = json.loads(await ws.recv())
            if msg["type"] == "position":
                return msg

    return await asyncio.wait_for(read(), timeout)


async def test_osmand_trackers_and_the_live_feed(fleet: FleetServer) -> None:
    seed = _seed(fleet)
    osmand, api = fleet.ready()["osmand"], fleet.ready()["api"]
    tracker = seed["acme"]["tracker"]
    ws_url = api.replace("http://", "ws://") + "/api/live"
    async with websockets.connect(ws_url) as bad:
        await bad.send("wrong token")
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await bad.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    async with (
        websockets.connect(ws_url) as live,
        websockets.connect(ws_url) as other,
        httpx.AsyncClient(base_url=osmand) as http,
    ):
        await live.send(seed["acme"]["tokens"]["viewer"])
        await other.send(seed["rival"]["tokens"]["viewer"])
        assert json.loads(await live.recv())["type"] == "hello"
        assert json.loads(await other.recv())["type"] == "hello"
        r = await http.get(
            "/",
            params={
                "id": tracker,
                "lat": "48.2",
                "lon": "11.6",
                "timestamp": str(int(T0) + 60),
                "speed": "10",
                "bearing": "90",
                "batt": "80",
            },
        )
        assert r.status_code == 200
        msg = await _next_position(live, 10)
        assert msg["type"] == "position" and msg["vehicle"] == tracker
        assert msg["speed"] == pytest.approx(18.52) and msg["heading"] == 90
        # the same fix again (a resend), a POSTed form body, ISO and millisecond timestamps
        assert (
            await http.get(
                "/", params={"id": tracker, "lat": "48.2", "lon": "11.6", "timestamp": str(int(T0) + 60)}
            )
        ).status_code == 200
        r = await http.post(
            "/",
            content=f"deviceid={tracker}&location=48.3,11.7&timestamp=2026-01-01T00:02:00Z",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 200
        assert (
            await http.get(
                "/",
                params={
                    "id": tracker,
                    "lat": "48.4",
                    "lon": "11.8",
                    "timestamp": str(int(T0 * 1000) + 180_000),
                },
            )
        ).status_code == 200
        for params, word in (
            ({"id": "nobody", "lat": "1", "lon": "1"}, "id:"),
            ({"id": tracker, "lat": "91", "lon": "1"}, "not on Earth"),
            ({"id": tracker, "lat": "x", "lon": "1"}, "lat:"),
            ({"id": tracker, "lat": "1", "lon": "1", "timestamp": "soon"}, "timestamp:"),
            ({"id": tracker, "lat": "1", "lon": "1", "timestamp": "2147483000"}, "ahead"),
        ):
            r = await http.get("/", params=params)
            assert r.status_code == 400 and word in r.text, params
        assert (await http.get("/?" + "a=1&" * 2000)).status_code == 400
        headers = {"Authorization": f"Bearer {seed['acme']['tokens']['viewer']}"}
        async with httpx.AsyncClient(base_url=api) as rest:
            await eventually(lambda: True)
            track = (await rest.get(f"/api/vehicles/{tracker}/track?day=2026-01-01", headers=headers)).json()
        assert [(p["lat"], p["source"]) for p in track] == [
            (48.2, "osmand"),
            (48.3, "osmand"),
            (48.4, "osmand"),
        ]
        # the other tenant's feed got none of it (its own seed's alert may come: not a position)
        with pytest.raises(TimeoutError):
            await _next_position(other, 0.5)
