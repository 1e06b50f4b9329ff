"""A move on the plan in force pushes the changed routes to the hubs (logistics, session 7): a
real fleet (PostgreSQL, ingest, API, command sender), the system Mosquitto and three real hubs
(PICKMAN profile, uplink). The dispatcher drags an order from one vehicle to another in the
accepted plan (``POST /api/plans/{id}/move``, the console's drag); the two vehicles whose routes
changed get their new route as the next version of the signed route command, their hubs take it
in place of the old one (what the driver has done stays done), and the third vehicle, whose
route did not change, gets nothing."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from anycar.fleet import registry
from anycar.fleet.db import make_engine
from anycar.fleet.migrate import upgrade
from anycar.hub import Hub, HubConfig
from anycar.hub.assemble import HubParts, build_hub
from anycar.logistics import board, execution
from anycar.logistics.execution_tables import route_pushes
from anycar.logistics.move import move_order
from anycar.uplink.delivery import DeliveryKeeper
from fleet_support import one_worker_server, postgres_url, vin
from test_delivery_exec_e2e import until
from uplink_support import unique_vehicle, uplink_config

pytestmark = pytest.mark.timeout(180)
DEPOT = {"lat": 60.170, "lon": 24.945}
ORDERS = [  # two heavy orders (one per vehicle: 300 + 300 > 350 kg) and two light ones
    {"id": "H-1", "lat": 60.1712, "lon": 24.9480, "weight_kg": 300.0},
    {"id": "H-2", "lat": 60.1680, "lon": 24.9395, "weight_kg": 300.0},
    {"id": "L-1", "lat": 60.1735, "lon": 24.9470, "weight_kg": 2.0},
    {"id": "L-2", "lat": 60.1660, "lon": 24.9505, "weight_kg": 1.5},
]


@dataclass
class Fleet:
    api: httpx.AsyncClient
    token: str
    engine: Any
    tenant: int
    hubs: dict[str, Hub]

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def keeper(self, vehicle: str) -> DeliveryKeeper:
        uplink = next(c for c in self.hubs[vehicle].components if c.name == "uplink")
        return uplink.delivery  # type: ignore[attr-defined,no-any-return]

    async def command(self, cid: str) -> dict[str, Any]:
        r = await self.api.get(f"/api/commands/{cid}", headers=self.auth())
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


@contextlib.asynccontextmanager
async def fleet(tmp_path: Path) -> AsyncIterator[Fleet]:
    with postgres_url() as url:
        engine = make_engine(url)
        upgrade(engine)
        registry.tenant_id(engine, "acme", create=True)
        token = registry.add_user(engine, "acme", "disp", "dispatcher")
        tid = registry.tenant_id(engine, "acme")
        vehicles = [
            registry.add_vehicle(
                engine, vin(20 + i), "kaiyun_pickman", tenant="acme", wire_id=unique_vehicle(f"MP{i}")
            ).vehicle
            for i in range(3)
        ]
        server = one_worker_server(url, "mp", vehicles, tmp_path / "fleet-signing.pem", eta_interval_s=30.0)
        await server.start()
        from anycar.fleet.keys import load_or_create, public_b64

        fleet_key = public_b64(load_or_create(tmp_path / "fleet-signing.pem"))
        hubs: dict[str, Hub] = {}
        try:
            for v in vehicles:
                folder = tmp_path / v
                folder.mkdir()
                config = HubConfig()
                config.ports = {"grpc": None, "viss": None, "http": None, "accessories": 0}
                parts = HubParts(
                    brand="kaiyun_pickman",
                    db_path=folder / "hub.sqlite3",
                    dashboard=False,
                    uplink=uplink_config(folder, v, fleet_keys=[fleet_key]),
                )
                hubs[v] = build_hub(config, parts)
                await hubs[v].start()
            async with httpx.AsyncClient(base_url=server.ready()["api"], timeout=60) as api:
                yield Fleet(api, token, engine, tid, hubs)
        finally:
            for hub in hubs.values():
                await hub.stop()
            await server.stop()
            engine.dispose()


def _routes(plan: dict[str, Any]) -> dict[str, list[str]]:
    return {r["vehicle"]: [s["order"] for s in r["stops"] if s.get("order")] for r in plan["plan"]["routes"]}


async def test_a_move_on_the_plan_in_force_sends_the_changed_routes_only(tmp_path: Path) -> None:
    async with fleet(tmp_path) as f:
        r = await f.api.post("/api/orders", json=ORDERS, headers=f.auth())
        assert r.status_code == 201, r.text
        r = await f.api.post(
            "/api/plans",
            json={"depot": DEPOT, "shift": "00:00-23:59", "time_limit_s": 0.5},
            headers=f.auth(),
        )
        assert r.status_code == 201, r.text
        proposal = r.json()
        # the two light orders on the vehicle without a heavy one (a move on the proposal)
        heavy = {v for v, refs in _routes(proposal).items() if {"H-1", "H-2"} & set(refs)}
        (light,) = set(f.hubs) - heavy
        for ref in ("L-1", "L-2"):
            if ref not in _routes(proposal).get(light, []):
                moved = move_order(f.engine, f.tenant, int(proposal["id"]), ref, light)
                assert moved.accepted, moved.reason
                proposal = moved.plan  # type: ignore[assignment]
        r = await f.api.post(f"/api/plans/{proposal['id']}/accept", headers=f.auth())
        assert r.status_code == 200, r.text
        accepted = r.json()
        routes = _routes(accepted)
        assert sorted(routes[light]) == ["L-1", "L-2"] and len(routes) == 3, routes
        first = {p["vehicle"]: p for p in accepted["pushed"]}
        assert {p["version"] for p in first.values()} == {1} and set(first) == set(f.hubs)
        for p in first.values():
            await until(lambda p=p: f.command(p["command"]), lambda c: c["status"] == "accepted", "v1")

        # the light vehicle's driver delivers its first stop (a POD signed by its hub)
        done_ref, moving = routes[light]
        assert f.keeper(light).next_stop()["order"] == done_ref  # type: ignore[index]
        f.keeper(light).complete("delivered", pin="1111")
        await until(
            lambda: board.orders(f.engine, f.tenant),
            lambda rows: any(o["id"] == done_ref and o["status"] == "delivered" for o in rows),
            "the first delivery on the board",
        )

        # the other light order dragged onto a heavy vehicle's route in the plan in force
        target = sorted(heavy)[0]
        (untouched,) = heavy - {target}
        r = await f.api.post(
            f"/api/plans/{accepted['id']}/move", json={"order": moving, "vehicle": target}, headers=f.auth()
        )
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["accepted"], answer
        pushed = {p["vehicle"]: p for p in answer["pushed"]}
        assert set(pushed) == {light, target}  # only the two routes that changed
        assert pushed[light]["version"] == 2 and pushed[light]["stops"] == 0
        assert pushed[target]["version"] == 2 and pushed[target]["stops"] == 2
        for p in pushed.values():
            await until(lambda p=p: f.command(p["command"]), lambda c: c["status"] == "accepted", "v2")

        # each hub took the new version in place of the old, what was done stays done
        view = f.keeper(target).view()
        assert view["route"]["version"] == 2 and view["route"]["plan"] == accepted["id"]
        assert sorted(s["order"] for s in view["route"]["stops"]) == sorted([moving, *routes[target]])
        view = f.keeper(light).view()
        assert view["route"]["version"] == 2 and view["route"]["stops"] == []
        assert view["done"] == {done_ref: "delivered"} and view["next"] is None
        assert f.keeper(untouched).view()["route"]["version"] == 1
        with f.engine.connect() as conn:
            versions = conn.execute(select(route_pushes.c.version, route_pushes.c.route)).all()
        assert sorted(v for v, _ in versions) == [1, 1, 1, 2, 2]
        assert execution.route_of(f.engine, f.tenant, untouched)["version"] == 1  # type: ignore[index]

        # a move refused changes no route
        r = await f.api.post(
            f"/api/plans/{accepted['id']}/move", json={"order": routes[untouched][0], "vehicle": target},
            headers=f.auth(),
        )  # fmt: skip
        assert r.status_code == 409 and "pushed" not in r.json(), r.text
