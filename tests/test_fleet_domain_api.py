"""The domain's REST routes on a real HTTP listener over real SQLite and PostgreSQL: token first,
role rights (every role reads; owner and dispatcher write), a tenant-A user never sees tenant
B's trips, stops, geofences, geofence events, alerts, rules, webhooks or reports by any route,
and SQL injection through every new text field and filter changes nothing."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from anycar.fleet import registry
from anycar.fleet.api import fleet_api, openapi
from anycar.fleet.domain import DomainPipeline
from anycar.fleet.domain_tables import DOMAIN_TABLES, alerts, trips
from anycar.fleet.store import Accepted, Store
from anycar.http_listener import HttpListener
from fleet_domain_support import M_PER_DEG, Drive
from fleet_support import fleet_engine, vin

INJECTIONS = ["' OR '1'='1", "1; DROP TABLE alerts; --", '") OR 1=1 --', "%' UNION SELECT * FROM users --"]


def zone(name: str, lat0: float = 30.0 + 2000 / M_PER_DEG, lat1: float = 30.0 + 3000 / M_PER_DEG) -> dict:
    ring = [[119.99, lat0], [120.01, lat0], [120.01, lat1], [119.99, lat1], [119.99, lat0]]
    return {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"name": name, "speed_limit_kmh": 30},
    }


@pytest.fixture(params=["sqlite", "postgres"])
async def api(request, tmp_path: Path):
    with fleet_engine(request.param, tmp_path) as engine:
        store = Store(engine)
        listener = HttpListener(fleet_api(store), "127.0.0.1", 0, what="api", force_exit=True)
        await listener.start()
        try:
            yield engine, store, f"http://127.0.0.1:{listener.port}"
        finally:
            await listener.stop()


def _seed(engine, store) -> dict:
    domain = DomainPipeline(store)
    out: dict = {}
    for tenant in ("acme", "rival"):
        creds = registry.add_vehicle(
            engine, vin(1), "kaiyun_pickman", tenant=tenant, wire_id=f"{tenant}-PM-1"
        )
        tokens = {
            role: registry.add_user(engine, tenant, f"{role}-{tenant}", role) for role in registry.ROLE_RIGHTS
        }
        out[tenant] = {"vehicle": creds.vehicle, "tokens": tokens, "ref": store.vehicle(creds.vehicle)}
    return out | {"domain": domain}


def _drive(store, seed: dict, tenant: str) -> None:
    ref = seed[tenant]["ref"]
    drive = Drive(ref.wire_id, soc=15.5, wh_per_km=300).leg(120, 0).leg(400, 36).leg(300, 0)
    for doc in drive.batches(per_batch=10):
        store.commit([Accepted(ref, doc)])
        seed["domain"].run_pending()


def _h(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


READ_ROUTES = [
    "/api/trips",
    "/api/stops",
    "/api/geofences",
    "/api/geofence-events",
    "/api/alerts",
    "/api/rules",
    "/api/reports/fleet?day=2026-12-01",
]


async def test_rights_isolation_and_geojson(api) -> None:
    engine, store, base = api
    seed = _seed(engine, store)
    acme, rival = seed["acme"]["tokens"], seed["rival"]["tokens"]
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        # token first: 401 on every new route without one, before any parameter is looked at
        for path in [
            *READ_ROUTES,
            "/api/webhooks",
            "/api/vehicles/x/trips",
            "/api/reports/vehicles/x?day=bad",
        ]:
            r = await http.get(path)
            assert r.status_code == 401, path
        assert (await http.post("/api/geofences", content=b"not json")).status_code == 401
        # every role reads; only owner and dispatcher write
        for role in registry.ROLE_RIGHTS:
            for path in READ_ROUTES:
                assert (await http.get(path, headers=_h(acme[role]))).status_code == 200, (role, path)
        for role in ("viewer", "driver"):
            h = _h(acme[role])
            assert (await http.post("/api/geofences", json=zone("z"), headers=h)).status_code == 403
            assert (await http.put("/api/rules", json={}, headers=h)).status_code == 403
            assert (
                await http.post("/api/webhooks", json={"url": "http://127.0.0.1:9/x"}, headers=h)
            ).status_code == 403
            assert (await http.get("/api/webhooks", headers=h)).status_code == 403
            assert (await http.post("/api/alerts/1/ack", headers=h)).status_code == 403
            assert (await http.get("/api/domain/status", headers=h)).status_code == 403
        # geofences through the API: GeoJSON in and out; the field named on a bad one
        made = {}
        for tenant, tokens in (("acme", acme), ("rival", rival)):
            r = await http.post(
                "/api/geofences", json=zone(f"school {tenant}"), headers=_h(tokens["dispatcher"])
            )
            assert r.status_code == 201, r.text
            made[tenant] = r.json()
            assert made[tenant]["type"] == "Feature" and made[tenant]["properties"]["speed_limit_kmh"] == 30
        bad = zone("x")
        bad["geometry"]["coordinates"][0][0] = [500, 30]
        r = await http.post("/api/geofences", json=bad, headers=_h(acme["owner"]))
        assert r.status_code == 400 and "geometry.coordinates[0][0][0] (lon)" in r.json()["error"]["message"]
        assert (await http.post("/api/geofences", content=b"{", headers=_h(acme["owner"]))).status_code == 400
        big = b'{"x": "' + b"a" * 300_000 + b'"}'
        assert (await http.post("/api/geofences", content=big, headers=_h(acme["owner"]))).status_code == 413
        # data for both tenants, derived from committed batches
        _drive(store, seed, "acme")
        _drive(store, seed, "rival")
        h = _h(acme["viewer"])
        trips_a = (await http.get("/api/trips", headers=h)).json()
        assert trips_a and {t["vehicle"] for t in trips_a} == {"acme-PM-1"}
        assert {t["vehicle"] for t in (await http.get("/api/stops", headers=h)).json()} == {"acme-PM-1"}
        alerts_a = (await http.get("/api/alerts", headers=h)).json()
        assert {a["type"] for a in alerts_a} == {"low_soc", "speeding"} and {
            a["vehicle"] for a in alerts_a
        } == {"acme-PM-1"}
        events_a = (await http.get("/api/geofence-events", headers=h)).json()
        assert [e["kind"] for e in reversed(events_a)] == ["enter", "exit"]
        assert {e["geofence_name"] for e in events_a} == {"school acme"}
        fences = (await http.get("/api/geofences", headers=h)).json()
        assert [f["properties"]["name"] for f in fences["features"]] == ["school acme"]
        day = (await http.get("/api/vehicles/acme-PM-1/trips?day=2026-12-01", headers=h)).json()
        assert [t["id"] for t in day] == [t["id"] for t in reversed(trips_a)]
        report = (await http.get("/api/reports/fleet?day=2026-12-01", headers=h)).json()
        assert [r["vehicle"] for r in report["vehicles"]] == ["acme-PM-1"]
        csv_text = (await http.get("/api/reports/fleet?day=2026-12-01&format=csv", headers=h)).text
        assert "acme-PM-1" in csv_text and "rival" not in csv_text
        # tenant B's objects by id or name from tenant A: not found, never shown, never changed
        rival_fence = made["rival"]["id"]
        rival_alert = (await http.get("/api/alerts", headers=_h(rival["viewer"]))).json()[0]["id"]
        w = _h(acme["owner"])
        assert (await http.get(f"/api/geofences/{rival_fence}", headers=w)).status_code == 404
        assert (
            await http.put(f"/api/geofences/{rival_fence}", json=zone("mine"), headers=w)
        ).status_code == 404
        assert (await http.delete(f"/api/geofences/{rival_fence}", headers=w)).status_code == 404
        assert (await http.post(f"/api/alerts/{rival_alert}/ack", headers=w)).status_code == 404
        assert (await http.get("/api/vehicles/rival-PM-1/trips", headers=w)).status_code == 404
        assert (
            await http.get("/api/reports/vehicles/rival-PM-1?day=2026-12-01", headers=w)
        ).status_code == 404
        for path in ("/api/trips", "/api/stops", "/api/alerts", "/api/geofence-events"):
            assert (await http.get(f"{path}?vehicle=rival-PM-1", headers=w)).json() == [], path
        assert (await http.get(f"/api/geofence-events?geofence={rival_fence}", headers=w)).json() == []
        rh = await http.post(
            "/api/webhooks", json={"url": "http://127.0.0.1:9/hook"}, headers=_h(rival["owner"])
        )
        assert rh.status_code == 201 and rh.json()["secret"]
        assert (await http.get("/api/webhooks", headers=w)).json() == []
        assert (await http.delete(f"/api/webhooks/{rh.json()['id']}", headers=w)).status_code == 404
        assert (
            await http.put("/api/rules", json={"low_soc": {"below_percent": 50}}, headers=w)
        ).status_code == 200
        rival_rules = (await http.get("/api/rules", headers=_h(rival["viewer"]))).json()
        assert rival_rules["override"] == {} and rival_rules["effective"]["low_soc"]["below_percent"] == 15
        assert (
            await http.get(f"/api/geofences/{rival_fence}", headers=_h(rival["viewer"]))
        ).status_code == 200
        # acknowledging one's own alert: who and when; a second ack keeps the first
        mine = alerts_a[0]["id"]
        acked = (
            await http.post(
                f"/api/alerts/{mine}/ack", json={"note": "called"}, headers=_h(acme["dispatcher"])
            )
        ).json()
        assert acked["ack_by"] == "dispatcher-acme" and acked["ack_note"] == "called" and acked["ack_ts"]
        open_ = (await http.get("/api/alerts?state=open", headers=h)).json()
        assert mine not in [a["id"] for a in open_]
        # webhooks: SSRF refusals with the reason
        for url in ("file:///etc/passwd", "http://169.254.169.254/", "gopher://x/"):
            r = await http.post("/api/webhooks", json={"url": url}, headers=w)
            assert r.status_code == 400 and "url:" in r.json()["error"]["message"]
        assert (await http.delete("/api/rules", headers=w)).status_code == 204
        # the HTML report is sent with its own strict CSP
        page = await http.get("/api/reports/fleet?week=2026-W49&format=html", headers=h)
        assert (
            page.headers["content-security-policy"].startswith("default-src 'none'") and "<svg" in page.text
        )


async def test_sql_injection_through_every_new_field(api) -> None:
    engine, store, base = api
    seed = _seed(engine, store)
    _drive(store, seed, "acme")
    _drive(store, seed, "rival")
    acme = seed["acme"]["tokens"]

    def counts() -> dict:
        with engine.connect() as conn:
            return {t.name: conn.execute(select(func.count()).select_from(t)).scalar() for t in DOMAIN_TABLES}

    before = counts()
    h = _h(acme["owner"])
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        for evil in INJECTIONS:
            for path in ("/api/trips", "/api/stops", "/api/alerts", "/api/geofence-events"):
                r = await http.get(path, params={"vehicle": evil}, headers=h)
                assert r.status_code == 200 and r.json() == [], (path, evil)
            assert (await http.get("/api/alerts", params={"type": evil}, headers=h)).json() == []
            for name, path in (
                ("state", "/api/alerts"),
                ("day", "/api/trips"),
                ("since", "/api/alerts"),
                ("until", "/api/stops"),
                ("limit", "/api/trips"),
                ("geofence", "/api/geofence-events"),
                ("day", "/api/reports/fleet"),
                ("week", "/api/reports/fleet"),
            ):
                r = await http.get(path, params={name: evil}, headers=h)
                assert r.status_code == 400, (name, evil, r.text)
            r = await http.get("/api/reports/fleet", params={"day": "2026-12-01", "format": evil}, headers=h)
            assert r.status_code == 400
            for path in (f"/api/vehicles/{evil}/trips", f"/api/reports/vehicles/{evil}?day=2026-12-01"):
                assert (await http.get(path, headers=h)).status_code == 404, path
            for path in (f"/api/geofences/{evil}", f"/api/alerts/{evil}/ack", f"/api/webhooks/{evil}"):
                r = await http.request(
                    "GET" if "geofences" in path else ("POST" if "ack" in path else "DELETE"), path, headers=h
                )
                assert r.status_code == 404, path
            r = await http.put("/api/rules", json={evil: {"x": 1}}, headers=h)
            assert r.status_code == 400
            r = await http.put("/api/rules", json={"hub_events": {evil: "info"}}, headers=h)
            assert r.status_code == 400
            r = await http.post("/api/webhooks", json={"url": evil}, headers=h)
            assert r.status_code == 400
            r = await http.post("/api/alerts/1/ack", json={"note": evil}, headers=h)
            assert r.status_code in (200, 404)
        # a geofence named like an injection is stored and given back verbatim
        r = await http.post("/api/geofences", json=zone(INJECTIONS[1], 10.0, 10.1), headers=h)
        assert r.status_code == 201 and r.json()["properties"]["name"] == INJECTIONS[1]
        r = await http.put("/api/rules", json={"cargo_temperature": {"signals": [INJECTIONS[0]]}}, headers=h)
        assert r.status_code == 200 and r.json()["effective"]["cargo_temperature"]["signals"] == [
            INJECTIONS[0]
        ]
    after = counts()
    assert (
        after["geofences"] == before["geofences"] + 1 and after["tenant_rules"] == before["tenant_rules"] + 1
    )
    for table in ("trips", "stops", "alerts", "geofence_events", "derive_cursors", "webhooks"):
        assert after[table] == before[table], table
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(trips)).scalar() > 0
        assert conn.execute(select(func.count()).select_from(alerts)).scalar() > 0


def test_openapi_documents_every_domain_route() -> None:
    doc = openapi()
    for path, methods in {
        "/api/trips": ["get"],
        "/api/vehicles/{vehicle}/trips": ["get"],
        "/api/stops": ["get"],
        "/api/geofences": ["get", "post"],
        "/api/geofences/{geofence}": ["get", "put", "delete"],
        "/api/geofence-events": ["get"],
        "/api/alerts": ["get"],
        "/api/alerts/{alert}/ack": ["post"],
        "/api/rules": ["get", "put", "delete"],
        "/api/webhooks": ["get", "post"],
        "/api/webhooks/{webhook}": ["delete"],
        "/api/reports/fleet": ["get"],
        "/api/reports/vehicles/{vehicle}": ["get"],
        "/api/domain/status": ["get"],
    }.items():
        assert sorted(doc["paths"][path]) == sorted(methods), path
        for m in methods:
            assert {"401", "403"} <= set(doc["paths"][path][m]["responses"]), (path, m)
    refs = {v for p in doc["paths"].values() for o in p.values() for v in _refs(o)}
    assert refs <= {f"#/components/schemas/{n}" for n in doc["components"]["schemas"]}


def _refs(node) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []
