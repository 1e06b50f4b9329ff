"""A route that expired on an offline hub is pushed again once the hub is back (logistics,
session 8). A real fleet (PostgreSQL, ingest, API, command sender, the route keeper), the system
Mosquitto and a real hub (PICKMAN profile, uplink). The plan is accepted while the vehicle's hub is
off; its route command goes unanswered past its time to live and expires. While the vehicle stays
offline nothing is sent again; when its hub comes online, the keeper pushes the route as the next
version, the hub takes it, and no further version follows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from anycar.fleet import registry
from anycar.fleet.db import make_engine
from anycar.fleet.migrate import upgrade
from anycar.hub import HubConfig
from anycar.hub.assemble import HubParts, build_hub
from anycar.logistics import execution
from anycar.logistics.execution_tables import route_pushes
from fleet_support import one_worker_server, postgres_url, vin
from test_delivery_exec_e2e import until
from uplink_support import unique_vehicle, uplink_config

pytestmark = pytest.mark.timeout(180)
DEPOT = {"lat": 60.170, "lon": 24.945}
ORDERS = [
    {"id": "R-1", "lat": 60.1712, "lon": 24.9480, "weight_kg": 2.0},
    {"id": "R-2", "lat": 60.1680, "lon": 24.9395, "weight_kg": 1.5},
]


async def test_an_expired_route_reaches_its_hub_when_it_is_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    short = {**execution.settings(), "route_ttl_s": 1.0}  # the route's time to live, shortened
    monkeypatch.setattr(execution, "settings", lambda: short)
    with postgres_url() as url:
        engine = make_engine(url)
        upgrade(engine)
        registry.tenant_id(engine, "acme", create=True)
        token = registry.add_user(engine, "acme", "disp", "dispatcher")
        tid = registry.tenant_id(engine, "acme")
        vehicle = registry.add_vehicle(
            engine, vin(41), "kaiyun_pickman", tenant="acme", wire_id=unique_vehicle("RP")
        ).vehicle
        server = one_worker_server(
            url, "rp", [vehicle], tmp_path / "fleet-signing.pem", eta_interval_s=30.0, route_repush_s=0.2
        )
        await server.start()
        hub = None
        try:
            from anycar.fleet.keys import load_or_create, public_b64

            auth = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(base_url=server.ready()["api"], timeout=60) as api:

                async def command(cid: str) -> dict[str, Any]:
                    r = await api.get(f"/api/commands/{cid}", headers=auth)
                    assert r.status_code == 200, r.text
                    return r.json()  # type: ignore[no-any-return]

                r = await api.post("/api/orders", json=ORDERS, headers=auth)
                assert r.status_code == 201, r.text
                r = await api.post(
                    "/api/plans",
                    json={"depot": DEPOT, "shift": "00:00-23:59", "time_limit_s": 0.5},
                    headers=auth,
                )
                assert r.status_code == 201, r.text
                r = await api.post(f"/api/plans/{r.json()['id']}/accept", headers=auth)
                assert r.status_code == 200, r.text
                (first,) = r.json()["pushed"]
                assert first["version"] == 1
                await until(
                    lambda: command(first["command"]), lambda c: c["status"] == "expired", "v1 expired"
                )

                # offline (never seen): the keeper's passes send nothing
                passes = server.route_keeper.passes
                await until(lambda: server.route_keeper.passes, lambda n: n >= passes + 3, "three passes")
                assert execution.route_of(engine, tid, vehicle)["version"] == 1  # type: ignore[index]
                assert server.route_keeper.crashes == 0

                # the hub comes online: the route goes again, as version 2, and the hub takes it
                fleet_key = public_b64(load_or_create(tmp_path / "fleet-signing.pem"))
                config = HubConfig()
                config.ports = {"grpc": None, "viss": None, "http": None, "accessories": 0}
                hub = build_hub(
                    config,
                    HubParts(
                        brand="kaiyun_pickman",
                        db_path=tmp_path / "hub.sqlite3",
                        dashboard=False,
                        uplink=uplink_config(tmp_path, vehicle, fleet_keys=[fleet_key]),
                    ),
                )
                await hub.start()
                again = await until(
                    lambda: execution.route_of(engine, tid, vehicle),
                    lambda route: route is not None and route["version"] == 2,
                    "the route pushed again",
                )
                await until(
                    lambda: command(again["command"]), lambda c: c["status"] == "accepted", "v2 taken"
                )
                uplink = next(c for c in hub.components if c.name == "uplink")
                view = uplink.delivery.view()  # type: ignore[attr-defined]
                assert view["route"]["version"] == 2
                assert sorted(s["order"] for s in view["route"]["stops"]) == ["R-1", "R-2"]
                assert view["route"]["stops"] == first_stops(engine)

                # taken: later passes push nothing more
                passes = server.route_keeper.passes
                await until(
                    lambda: server.route_keeper.passes, lambda n: n >= passes + 3, "three more passes"
                )
                with engine.connect() as conn:
                    versions = sorted(conn.execute(select(route_pushes.c.version)).scalars())
                assert versions == [1, 2]
                assert server.route_keeper.repushed == 1 and server.route_keeper.crashes == 0
        finally:
            if hub is not None:
                await hub.stop()
            await server.stop()
            engine.dispose()


def first_stops(engine: Any) -> list[dict[str, Any]]:
    """The stops of version 1 as pushed: version 2 carries the same route."""
    with engine.connect() as conn:
        route = conn.execute(select(route_pushes.c.route).where(route_pushes.c.version == 1)).scalar_one()
    return list(route["stops"])
