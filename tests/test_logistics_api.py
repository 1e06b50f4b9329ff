"""The logistics routes of the fleet API, served by FleetServer on a free port over PostgreSQL:
token before body, role rights, tenant isolation, CSV and JSON import with row errors and
nothing stored, plan -> accept -> re-dispatch with the delivered stops fixed and a diff."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from anycar.fleet import db, registry
from anycar.fleet.server import FleetConfig, FleetServer
from fleet_support import fleet_engine, vin

HEADER = "id,kind,lat,lon,windows,service_s,weight_kg\n"
ROWS = [
    "a1,delivery,60.172,24.948,08:00-12:00,120,20",
    "a2,delivery,60.168,24.938,08:00-12:00,120,30",
    "a3,delivery,60.175,24.955,09:00-14:00,120,25",
    "a4,delivery,60.165,24.950,08:00-17:00,120,15",
]
DEPOT = {"lat": 60.170, "lon": 24.945}


@pytest.fixture
async def fleet(tmp_path: Path):
    with fleet_engine("postgres", tmp_path) as engine:
        cfg = FleetConfig(
            db_url=engine.url.render_as_string(hide_password=False), workers=0, api_port=0, osmand_port=None
        )
        server = FleetServer(cfg)
        await server.start()
        try:
            yield server
        finally:
            await server.stop()


def _seed(server: FleetServer) -> dict:
    out = {}
    for tenant in ("acme", "rival"):
        vehicles = [
            registry.add_vehicle(
                server.engine,
                vin(i),
                "kaiyun_pickman",
                tenant=tenant,
                wire_id=f"{tenant}-{i}-{uuid.uuid4().hex[:4]}",
            ).vehicle
            for i in (1, 2)
        ]
        tokens = {
            role: registry.add_user(server.engine, tenant, f"{role}-{tenant}", role)
            for role in registry.ROLE_RIGHTS
        }
        out[tenant] = {"vehicles": vehicles, "tokens": tokens}
    return out


def _auth(token: str) -> dict:
    return {"authorization": f"Bearer {token}"}


async def test_orders_plans_and_redispatch_per_tenant(fleet: FleetServer) -> None:
    seed = _seed(fleet)
    acme, rival = seed["acme"]["tokens"], seed["rival"]["tokens"]
    async with httpx.AsyncClient(base_url=fleet.ready()["api"], timeout=60) as http:
        # No token: 401 before the (broken) body is looked at; a viewer may read, not import.
        assert (await http.post("/api/orders", content=b"{not json")).status_code == 401
        assert (await http.post("/api/plans", content=b"x", headers=_auth("wrong"))).status_code == 401
        viewer = await http.post("/api/orders", json=[], headers=_auth(acme["viewer"]))
        assert viewer.status_code == 403 and viewer.json()["error"]["reason"] == "forbidden"
        assert (await http.get("/api/orders", headers=_auth(acme["viewer"]))).json() == []

        # A bad row refuses the whole upload, every error listed by line.
        bad = (
            HEADER
            + "\n".join([*ROWS, "a5,delivery,60.17,24.94,13:00-12:00,60,5", "a6,delivery,60.17,24.94,,,-3"])
            + "\n"
        )
        r = await http.post(
            "/api/orders/import?name=orders.csv", content=bad, headers=_auth(acme["dispatcher"])
        )
        assert r.status_code == 400
        assert r.json()["error"]["errors"] == [
            "orders.csv:6: windows: time window ends before it starts (13:00-12:00)",
            "orders.csv:7: weight_kg: -3 is negative",
        ]
        assert (await http.get("/api/orders", headers=_auth(acme["owner"]))).json() == []
        good = HEADER + "\n".join(ROWS) + "\n"
        r = await http.post(
            "/api/orders/import?name=orders.csv", content=good, headers=_auth(acme["dispatcher"])
        )
        assert r.status_code == 201 and r.json() == {"imported": 4}
        again = await http.post(
            "/api/orders/import?name=orders.csv", content=good, headers=_auth(acme["dispatcher"])
        )
        assert (
            again.status_code == 400
            and "orders.csv:2: id 'a1' is already on the board" in again.json()["error"]["errors"]
        )
        # The rival tenant sees none of it and may use the same ids.
        assert (await http.get("/api/orders", headers=_auth(rival["owner"]))).json() == []
        r = await http.post(
            "/api/orders", json=[{"id": "a1", "lat": 60.17, "lon": 24.95}], headers=_auth(rival["owner"])
        )
        assert r.status_code == 201
        r = await http.post(
            "/api/orders", json=[{"id": "z", "lat": 10, "lon": 24.95}], headers=_auth(rival["owner"])
        )
        assert r.status_code == 400 and r.json()["error"]["errors"][0].startswith(
            "orders[0].lat: 10.00000,24.95000 is outside the map"
        )

        # Plan, read, accept.
        r = await http.post(
            "/api/plans",
            json={"depot": DEPOT, "shift": "08:00-18:00", "time_limit_s": 0.5},
            headers=_auth(acme["dispatcher"]),
        )
        assert r.status_code == 201, r.text
        proposal = r.json()
        body = proposal["plan"]
        assert body["feasible"] and body["unservable"] == []
        # The road network when anycar.roads is there (every point here is inside its extract),
        # else the straight-line estimate, said to be one.
        assert body["matrix"] in ("road network (OpenStreetMap)", "straight-line estimate")
        assert body["estimate"] is (body["matrix"] == "straight-line estimate")
        assert sorted(s["order"] for route in body["routes"] for s in route["stops"] if s["order"]) == [
            "a1",
            "a2",
            "a3",
            "a4",
        ]
        assert any("no charge reading" in n for n in body["notes"])
        pid = proposal["id"]
        assert (await http.get(f"/api/plans/{pid}", headers=_auth(rival["owner"]))).status_code == 404
        assert (await http.post(f"/api/plans/{pid}/accept", headers=_auth(rival["owner"]))).status_code == 404
        assert (await http.post(f"/api/plans/{pid}/accept", headers=_auth(acme["driver"]))).status_code == 403
        r = await http.post(f"/api/plans/{pid}/accept", headers=_auth(acme["dispatcher"]))
        assert r.status_code == 200 and r.json()["status"] == "accepted"
        board = (await http.get("/api/orders?status=planned", headers=_auth(acme["viewer"]))).json()
        assert len(board) == 4 and all(o["vehicle"] for o in board)

        # The day goes on: the first stop of one route is delivered, its vehicle is out there,
        # and an urgent order comes in.
        route = next(r for r in body["routes"] if len([s for s in r["stops"] if s["order"]]) >= 1)
        first = next(s for s in route["stops"] if s["order"])
        r = await http.post(
            f"/api/orders/{first['order']}/status",
            json={"status": "delivered"},
            headers=_auth(acme["driver"]),
        )
        assert r.status_code == 200
        assert (
            await http.post(
                f"/api/orders/{first['order']}/status", json={"status": "open"}, headers=_auth(acme["driver"])
            )
        ).status_code == 403
        assert (
            await http.post(
                "/api/orders/nope/status", json={"status": "failed"}, headers=_auth(rival["owner"])
            )
        ).status_code == 404
        with fleet.engine.begin() as conn:
            conn.execute(
                update(db.vehicles)
                .where(db.vehicles.c.wire_id == route["vehicle"])
                .values(last_lat=first["lat"], last_lon=first["lon"], last_ts=0.0)
            )
        urgent = {
            "id": "urgent",
            "lat": 60.171,
            "lon": 24.952,
            "windows": "10:00-11:00",
            "priority": 9,
            "weight_kg": 5,
        }
        assert (
            await http.post("/api/orders", json=[urgent], headers=_auth(acme["dispatcher"]))
        ).status_code == 201
        r = await http.post(
            "/api/plans/redispatch",
            json={"depot": DEPOT, "shift": "08:00-18:00", "now": "10:00", "time_limit_s": 0.5},
            headers=_auth(acme["dispatcher"]),
        )
        assert r.status_code == 201, r.text
        redo = r.json()
        new_plan = redo["plan"]
        assert new_plan["feasible"] and new_plan["unservable"] == []
        assert {"order": "urgent", "change": "added"}.items() <= next(
            c for c in redo["changes"] if c["order"] == "urgent"
        ).items()
        same = next(x for x in new_plan["routes"] if x["vehicle"] == route["vehicle"])
        assert [s["order"] for s in same["fixed"]] == [first["order"]]  # the delivered stop stays, fixed
        planned_now = [s["order"] for x in new_plan["routes"] for s in x["stops"] if s["order"]]
        assert first["order"] not in planned_now and "urgent" in planned_now
        # What that vehicle carries stays on it: it is out on its round with the goods on board.
        carried = [s["order"] for s in route["stops"] if s["order"] and s["order"] != first["order"]]
        assert all(o in [s["order"] for s in same["stops"]] for o in carried)
        assert all(s["arrival_s"] >= 10 * 3600 for x in new_plan["routes"] for s in x["stops"] if s["order"])
        bad = await http.post(
            "/api/plans/redispatch", json={"depot": DEPOT, "now": "later"}, headers=_auth(acme["owner"])
        )
        assert bad.status_code == 400 and bad.json()["error"]["message"].startswith("now:")
        none = await http.post(
            "/api/plans/redispatch", json={"depot": DEPOT, "now": "10:00"}, headers=_auth(rival["owner"])
        )
        assert none.status_code == 400 and "no accepted plan" in none.json()["error"]["message"]
        huge = await http.post(
            "/api/orders", content=b"[" + b" " * (9 * 1024 * 1024) + b"]", headers=_auth(acme["owner"])
        )
        assert huge.status_code == 413
        opts = await http.post("/api/plans", json={"depot": DEPOT, "colour": 1}, headers=_auth(acme["owner"]))
        assert opts.status_code == 400 and opts.json()["error"]["message"] == "colour: unknown option"
