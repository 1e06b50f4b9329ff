"""delivery-exec: the driver's phone page in real Chromium, on the real fleet routes and a real
PostgreSQL store: a plan accepted through the API, a driver link for the vehicle; the page shows
the next stop, the driver types the recipient's PIN, signs on the screen and taps Delivered;
the proof is stored (PIN checked, signature hashed), the order delivered and the next stop
shown; a wrong PIN at the next stop is an exception for the dispatcher. The link works for its
vehicle only; a made-up token gets nothing; the page is sent with its CSP."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette

from anycar.fleet import registry
from anycar.fleet.db import make_engine
from anycar.fleet.domain_tables import alerts
from anycar.fleet.migrate import upgrade
from anycar.logistics.execution_tables import deliveries
from anycar.logistics.room import LogisticsRoom
from browser_support import own_errors, serve
from fleet_support import postgres_url, vin

pytest_plugins = ["browser_support"]
pytestmark = pytest.mark.timeout(90)
DEPOT = {"lat": 60.170, "lon": 24.945}
ORDERS = [
    {"id": "P-1", "lat": 60.1712, "lon": 24.9480, "weight_kg": 2.0, "windows": "08:00-18:00"},
    {"id": "P-2", "lat": 60.1690, "lon": 24.9500, "weight_kg": 1.5, "windows": "08:00-18:00"},
]


def test_driver_reports_on_the_phone_page(page) -> None:  # type: ignore[no-untyped-def]
    with postgres_url() as url:
        engine = make_engine(url)
        upgrade(engine)
        registry.tenant_id(engine, "acme", create=True)
        registry.tenant_id(engine, "rival", create=True)
        token = registry.add_user(engine, "acme", "disp", "dispatcher")
        rival = registry.add_user(engine, "rival", "rival", "owner")
        vehicle = registry.add_vehicle(
            engine, vin(3), "kaiyun_pickman", tenant="acme", wire_id="PM-PH1"
        ).vehicle
        registry.add_vehicle(engine, vin(4), "kaiyun_pickman", tenant="rival", wire_id="PM-RV1")
        app = Starlette(routes=LogisticsRoom(engine).routes())
        auth = {"Authorization": f"Bearer {token}"}
        try:
            with serve(app) as base, httpx.Client(base_url=base, timeout=30) as http:
                assert http.post("/api/orders", json=ORDERS, headers=auth).status_code == 201
                plan = http.post(
                    "/api/plans", json={"depot": DEPOT, "time_limit_s": 0.5}, headers=auth
                ).json()
                accepted = http.post(f"/api/plans/{plan['id']}/accept", headers=auth)
                assert accepted.status_code == 200 and accepted.json()["pushed"][0]["vehicle"] == vehicle
                r = http.post(f"/api/vehicles/{vehicle}/driver-link", headers=auth)
                assert r.status_code == 201, r.text
                link = r.json()["url"]
                assert (
                    http.post(
                        f"/api/vehicles/{vehicle}/driver-link", headers={"Authorization": f"Bearer {rival}"}
                    ).status_code
                    == 404
                )
                assert http.get("/driver/" + "x" * 32).status_code == 404
                sent = http.get(link)
                assert "script-src 'self'" in sent.headers["content-security-policy"]
                with engine.connect() as conn:
                    pins = dict(conn.execute(select(deliveries.c.order_ref, deliveries.c.pin)).all())
                first = http.get(link + "/next").json()["next"]["order"]
                second = ({"P-1", "P-2"} - {first}).pop()
                # another vehicle's order cannot be reported through this link
                other = http.post(link + "/outcome", json={"order": "nope", "status": "delivered"})
                assert other.status_code == 404

                page.goto(base + link)
                page.wait_for_function(f"document.getElementById('stop').dataset.order === '{first}'")
                assert "PIN required" in page.text_content("#stop")
                page.fill("#pin", pins[first])
                box = page.locator("#sig").bounding_box()
                page.mouse.move(box["x"] + 20, box["y"] + 60)
                page.mouse.down()
                for step in range(1, 12):
                    page.mouse.move(box["x"] + 20 + step * 20, box["y"] + 60 + (-1) ** step * 25)
                page.mouse.up()
                page.click("#delivered")
                page.wait_for_function(f"document.getElementById('stop').dataset.order === '{second}'")
                assert page.text_content("#msg") == f"{first}: delivered"

                pods = http.get("/api/pods", params={"order": first}, headers=auth).json()
                (pod,) = pods
                assert pod["exceptions"] == [] and pod["record"]["source"] == "phone" and not pod["verified"]
                assert len(pod["record"]["signature_image"]["sha256"]) == 64
                assert pod["record"]["signature_image"]["thumbnail"].startswith("data:image/png;base64,")
                board = {o["id"]: o["status"] for o in http.get("/api/orders", headers=auth).json()}
                assert board[first] == "delivered"

                wrong = "4444" if pins[second] != "4444" else "1111"
                page.fill("#pin", wrong)
                page.click("#delivered")
                page.wait_for_function("document.getElementById('stop').textContent === 'Round complete'")
                assert "wrong PIN" in page.text_content("#msg")
                with engine.connect() as conn:
                    raised = conn.execute(select(alerts.c.type, alerts.c.message)).all()
                assert [(t, m) for t, m in raised] == [("pod_exception", f"order {second}: wrong PIN")]
                assert http.get("/api/pods", headers={"Authorization": f"Bearer {rival}"}).json() == []
                assert own_errors(page) == []
        finally:
            engine.dispose()
