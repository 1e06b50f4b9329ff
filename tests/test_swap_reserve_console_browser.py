"""A dispatcher makes and cancels a swap reservation from the station page, in headless
Chromium, against a real ``FleetServer`` whose CSMS talks OCPP 2.1 to a station simulator: the
REST routes (role-checked, tenant-isolated, listed in /openapi.json) and the console's buttons."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

pytest.register_assert_rewrite("browser_support")

from anycar.fleet import registry  # noqa: E402
from anycar.swap import registry as swap_registry  # noqa: E402
from browser_support import own_errors, screenshot  # noqa: E402
from ops_console_support import OpsFleet, auth, running_fleet, show, sign_in, wait  # noqa: E402

pytest_plugins = ["browser_support"]
ROUTE = "/api/stations/{station}/reservations"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpsFleet]:
    with running_fleet(tmp_path_factory, "book") as fleet:
        yield fleet


def test_reserve_and_cancel_from_the_station_page(page: Any, fleet: OpsFleet) -> None:
    engine = fleet.server.engine
    wire = registry.add_vehicle(engine, "LKYZPSBKAA0000001", "kaiyun_pickman", tenant="acme").vehicle
    swap_registry.add_token(engine, wire)
    other = registry.add_vehicle(engine, "LKYZPSBKAA0000002", "kaiyun_pickman", tenant="rival").vehicle
    swap_registry.add_token(engine, other)
    fleet.position(wire, 60.17, 24.94, 40.0)
    dispatcher = registry.add_user(engine, "acme", "disp-book", "dispatcher")
    viewer = registry.add_user(engine, "acme", "view-book", "viewer")
    rival = registry.add_user(engine, "rival", "disp-rival", "dispatcher")
    sim = fleet.station("bay-1", "acme")
    sim.slots[0].pack.soc = 99.0

    with httpx.Client(base_url=fleet.url, timeout=60) as http:
        paths = http.get("/openapi.json").json()["paths"]
        assert "post" in paths[ROUTE] and "delete" in paths[ROUTE + "/{reservation}"]
        url = "/api/stations/bay-1/reservations"
        body = {"vehicle": wire, "minutes": 30}
        assert http.post(url, json=body, headers=auth(viewer)).status_code == 403  # may only look
        assert http.post(url, json=body).status_code == 401
        assert http.post(url, json=body, headers=auth(rival)).status_code == 404  # not its station
        bad = http.post(url, json={"vehicle": other, "minutes": 30}, headers=auth(dispatcher))
        assert bad.status_code == 404 and "no vehicle" in bad.json()["error"]["message"]  # not its vehicle
        for wrong in ({"vehicle": wire, "minutes": 0}, {"vehicle": wire, "minutes": True}, {"vehicle": 7}):
            assert http.post(url, json=wrong, headers=auth(dispatcher)).status_code == 400, wrong
        assert http.delete(url + "/999999", headers=auth(dispatcher)).status_code == 404

    sign_in(page, fleet.url, dispatcher)
    show(page, "#/stations/bay-1", "station")
    page.select_option("[data-testid=reserve-vehicle]", wire)
    page.fill("[data-testid=reserve-minutes]", "20")
    page.click("[data-testid=reserve]")
    page.wait_for_selector("[data-testid=reservation-result]:has-text('Accepted')", timeout=30_000)
    row = page.locator("[data-reservation][data-status='active']")
    assert row.count() == 1 and wire in row.text_content()
    rid = int(row.get_attribute("data-reservation"))
    assert sim.reservations_seen == [rid] and any(s.reserved == rid for s in sim.slots)
    screenshot(page, "swap_reserve_from_console")
    row.locator("[data-testid=cancel-reservation]").click()
    page.wait_for_selector(f"[data-reservation='{rid}'][data-status='cancelled']", timeout=30_000)
    assert page.locator(f"[data-reservation='{rid}'] [data-testid=cancel-reservation]").count() == 0
    wait(lambda: all(s.reserved != rid for s in sim.slots), "the station let the pack go")
    assert own_errors(page) == []

    # a viewer sees the reservations, not the buttons
    page.evaluate("sessionStorage.clear()")
    sign_in(page, fleet.url, viewer)
    show(page, "#/stations/bay-1", "station")
    assert page.locator(f"[data-reservation='{rid}']").count() == 1
    assert page.locator("[data-testid=reserve-form]").count() == 0
