"""demo-route in the console (headless Chromium, a real ``FleetServer`` on SQLite): the plan's
route lists its swap stop in its place (station, the window its pack is held, the reservation)
and marks it on the map; a failed order's card on the board shows its reason and when its retry
rule lets it go again."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

pytest.register_assert_rewrite("browser_support")

from anycar.fleet import registry  # noqa: E402
from anycar.logistics.problem import PlanVehicle  # noqa: E402
from anycar.logistics.settings import vehicle_type  # noqa: E402
from anycar.logistics.swaproute import add_to_plan, route_from_plan  # noqa: E402
from anycar.logistics.swapstops import Reservation, RoadProvider, SwapStation, plan_swap  # noqa: E402
from browser_support import own_errors, screenshot  # noqa: E402
from ops_console_support import OpsFleet, auth, running_fleet, show, sign_in  # noqa: E402

pytest_plugins = ["browser_support"]
DEPOT = {"lat": 60.169, "lon": 24.9372}
CSV = (
    "id,kind,lat,lon,windows,service_s,weight_kg\n"
    "S1,delivery,60.164197,24.946092,08:00-23:00,120,5\n"
    "S2,delivery,60.170738,24.949822,08:00-23:00,120,5\n"
    "S3,delivery,60.167761,24.951183,08:00-23:00,120,5\n"
    "S4,delivery,60.172103,24.947599,08:00-23:00,120,5\n"
)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OpsFleet, str, dict[str, Any]]]:
    with running_fleet(tmp_path_factory, "route") as ops:
        engine = ops.server.engine
        registry.add_vehicle(engine, "LKYZRT00000000001", "kaiyun_pickman", tenant="swapco", wire_id="sw-1")
        token = registry.add_user(engine, "swapco", "disp", "dispatcher")
        tid = registry.tenant_id(engine, "swapco")
        with httpx.Client(base_url=ops.url, timeout=90, headers=auth(token)) as http:
            r = http.post("/api/orders/import?name=o.csv", content=CSV, headers={"Content-Type": "text/csv"})
            assert r.status_code == 201, r.text
            r = http.post("/api/plans", json={"depot": DEPOT, "shift": "08:00-23:59", "time_limit_s": 0.5})
            assert r.status_code == 201, r.text
            plan_id = int(r.json()["id"])
            (route_json,) = r.json()["plan"]["routes"]
            route = route_from_plan(route_json)
            kind = vehicle_type("kaiyun_pickman")
            depot = (DEPOT["lat"], DEPOT["lon"])
            low = 0.15 + 0.5 * route.energy_kwh / kind.battery_kwh
            vehicle = PlanVehicle(
                "sw-1",
                depot,
                depot,
                kind.payload_kg,
                kind.cargo_m3,
                kind.battery_kwh,
                kind.kwh_per_km,
                soc=low,
            )
            decision = plan_swap(
                route,
                vehicle,
                [SwapStation("hki-kamppi", (60.168, 24.932), 3)],
                RoadProvider(None, "delivery"),
            )
            assert decision.swap is not None, decision.reason
            decision.swap.reservation = Reservation(
                "hki-kamppi", 7, "Accepted", decision.swap.arrival_s + 1800
            )
            add_to_plan(engine, tid, plan_id, decision)
            assert http.post(f"/api/plans/{plan_id}/accept").status_code == 200
            r = http.post(
                "/api/logistics/orders/S4/outcome", json={"status": "failed", "reason": "recipient absent"}
            )
            assert r.status_code == 200, r.text
        yield ops, token, {"plan": plan_id}


def test_the_route_shows_its_swap_stop_and_the_board_a_failed_orders_retry(page: Any, fleet) -> None:
    ops, token, _ = fleet
    sign_in(page, ops.url, token)
    show(page, "#/logistics", "board")
    board = httpx.get(f"{ops.url}/api/logistics/board", headers=auth(token), timeout=30).json()
    (failed,) = [o for o in board["orders"] if o["id"] == "S4"]
    assert failed["column"] == "failed" and failed["retry"].startswith("not before ")
    card = page.locator(".lg-card[data-order=S4]")
    assert "recipient absent" in card.text_content()
    assert page.text_content(".lg-card[data-order=S4] [data-testid=retry]") == f"retry {failed['retry']}"
    screenshot(page, "route_board_retry")

    show(page, "#/logistics/plan", "plan")
    plan = httpx.get(f"{ops.url}/api/logistics/plan", headers=auth(token), timeout=30).json()
    (swap,) = [s for r in plan["plan"]["routes"] for s in r["stops"] if s["action"] == "swap"]
    row = page.locator("tr[data-swap=hki-kamppi]")
    assert row.count() == 1
    text = row.text_content()
    assert "swap · hki-kamppi" in text and swap["window"] in text and "R7 · Accepted" in text
    # in its place among the deliveries: the rows follow the route's order
    order = page.eval_on_selector_all(
        ".lg-route tbody tr", "rows => rows.map(r => r.dataset.order || 'swap:' + r.dataset.swap)"
    )
    assert order == [
        s["order"] or f"swap:{s['station']}"
        for s in plan["plan"]["routes"][0]["stops"]
        if s["order"] or s["action"] == "swap"
    ]
    marker = page.locator(".lg-stop.lg-swap[data-swap=hki-kamppi]")
    assert marker.count() == 1  # on the map, and in view
    box, view = marker.bounding_box(), page.locator("[data-testid=plan-map]").bounding_box()
    assert (
        view["x"] <= box["x"] <= view["x"] + view["width"]
        and view["y"] <= box["y"] <= view["y"] + view["height"]
    )
    screenshot(page, "route_plan_swap_stop")
    assert own_errors(page) == []


def test_a_failed_order_at_its_retry_cap_is_final_on_the_board_and_raises_an_alert(page: Any, fleet) -> None:
    """The retry cap (retry.yaml ``cap``): S4 failed once shows its count; S3 failing three
    times is final: the card says what became of it, and the dispatcher has the alert."""
    ops, token, _ = fleet
    with httpx.Client(base_url=ops.url, timeout=30, headers=auth(token)) as http:
        for reason in ("recipient absent", "no access", "recipient absent"):
            r = http.post("/api/logistics/orders/S3/outcome", json={"status": "failed", "reason": reason})
            assert r.status_code == 200, r.text
        alerts = http.get("/api/alerts?state=open&limit=50").json()
    (final,) = [a for a in alerts if a["type"] == "delivery_final"]
    assert final["vehicle"] == "sw-1" and "S3: no retry: attempt 3 of 3 failed" in final["message"]
    sign_in(page, ops.url, token)
    show(page, "#/logistics", "board")
    assert page.text_content(".lg-card[data-order=S4] [data-testid=attempts]") == "attempt 1 of 3"
    card = ".lg-card[data-order=S3] [data-testid=attempts]"
    assert page.text_content(card) == "final: attempt 3 of 3 · back to the depot"
    assert "lg-final" in page.get_attribute(card, "class")
    assert page.locator(".lg-card[data-order=S3] [data-testid=retry]").count() == 0  # no retry to say
    screenshot(page, "route_board_retry_cap")
    assert own_errors(page) == []
