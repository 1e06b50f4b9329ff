"""The fleet console in headless Chromium against a real fleet server (``FleetServer``, the
composition root of ``anycar fleet serve``, on SQLite) whose data comes through its real store
and live feed: vehicles driving on the streets of the shipped OpenStreetMap base map."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.register_assert_rewrite("browser_support")

from anycar.bench.moving_fleet import SOC, MovingFleet, RunningFleet, running_fleet  # noqa: E402
from anycar.fleet.console import CSP  # noqa: E402
from anycar.fleet.registry import add_vehicle  # noqa: E402
from anycar.fleet.store import Accepted  # noqa: E402
from anycar.wire.messages import events as events_doc  # noqa: E402
from browser_support import screenshot  # noqa: E402

pytest_plugins = ["browser_support"]
DASHBOARD = "http://{vehicle}.hubs.example:8080/?vin={vin}"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningFleet, MovingFleet]]:
    db = tmp_path_factory.mktemp("console") / "fleet.sqlite3"
    with running_fleet(f"sqlite:///{db}", dashboard_url=DASHBOARD) as running:
        moving = MovingFleet(running, 14, tenant="acme")
        # Another tenant's vehicle, moving in the same streets: the console of acme never shows it.
        add_vehicle(
            running.store.engine, "LKYRVAL0000000001", "byd_seal", tenant="rival", wire_id="rival-car"
        )
        rival = running.store.vehicle("rival-car")
        fix = {"kind": "position", "boot": "osmand", "seq": 1, "ts": time.time(), "lat": 60.17, "lon": 24.94}
        running.commit([Accepted(rival, {**fix, "speed": 20.0, "heading": 90.0})])  # type: ignore[arg-type]
        for _ in range(3):
            moving.tick()
            time.sleep(0.05)
        yield running, moving


def _sign_in(page: Any, url: str, token: str) -> None:
    page.goto(url + "/console/")
    page.wait_for_selector("[data-testid='login']:not([hidden])", timeout=15_000)
    page.fill("[data-testid='token']", token)
    page.click("[data-testid='sign-in']")
    page.wait_for_selector("body[data-ready='true']", timeout=30_000)


def _rendered(page: Any, layer: str) -> list[str]:
    """The features MapLibre drew in one of the base map's layers."""
    return page.evaluate(
        "(layer) => window.anycarConsole.map.map.queryRenderedFeatures({layers: [layer]}).map((f) => f.layer.id)",
        layer,
    )


def _drawn_at(page: Any, vehicle: str) -> dict[str, Any]:
    """What the vehicle overlay has at the pixel of the vehicle's last position: the vehicle it
    would pick there, and the canvas pixel's opacity (something was painted)."""
    return page.evaluate(
        """(id) => {
          const m = window.anycarConsole.map, v = window.anycarConsole.fleet.vehicles.get(id).position;
          const p = m.map.project([v.lon, v.lat]), c = m.overlay.canvas, r = m.overlay.ratio;
          const alpha = c.getContext("2d").getImageData(Math.round(p.x * r), Math.round(p.y * r), 1, 1).data[3];
          return {picked: m.overlay.vehicleAt(p.x, p.y), alpha};
        }""",
        vehicle,
    )


def test_the_console_is_one_origin_under_a_strict_csp(fleet: tuple[RunningFleet, MovingFleet]) -> None:
    running, _ = fleet
    with httpx.Client(base_url=running.url, timeout=10) as http:
        page = http.get("/console/")
        assert page.status_code == 200
        assert page.headers["content-security-policy"] == CSP
        assert "script-src 'self'" in CSP and "connect-src 'self'" in CSP and "unsafe-eval" not in CSP
        assert "<script>" not in page.text  # no inline script: only src= ones
        assert http.get("/").headers.get("location") == "/console/"
        assert (
            http.get("/console/basemap.geojson").json()["attribution"] == "© OpenStreetMap contributors, ODbL"
        )
        licence = http.get("/console/vendor/maplibre-gl/LICENSE.txt")
        assert licence.status_code == 200 and "MapLibre contributors" in licence.text
        assert http.get("/console/config.json").json()["dashboard_url"] == DASHBOARD
        assert http.get("/api/signals/last", params={"path": SOC}).status_code == 401


def test_sign_in_live_map_on_the_osm_streets(page: Any, fleet: tuple[RunningFleet, MovingFleet]) -> None:
    running, moving = fleet
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(running.url + "/console/")
    page.wait_for_selector("[data-testid='login']:not([hidden])", timeout=15_000)
    page.fill("[data-testid='token']", "not-a-token-at-all")
    page.click("[data-testid='sign-in']")
    page.wait_for_selector("[data-testid='login-error']:has-text('not valid')", timeout=10_000)
    _sign_in(page, running.url, moving.token)
    assert page.evaluate("sessionStorage.getItem('anycar.fleet.token')") == moving.token
    page.wait_for_selector("[data-testid='live-status'][data-status='live']", timeout=15_000)
    assert page.locator("[data-testid='user']").inner_text() == "operator · dispatcher"

    # The alerts and geofences pages are there exactly when the server has their routes.
    paths = httpx.get(running.url + "/openapi.json", timeout=10).json()["paths"]
    for name, route in (("alerts", "/api/alerts"), ("geofences", "/api/geofences")):
        assert page.locator(f"#nav a[data-page='{name}']").is_hidden() == (route not in paths), name

    # Every vehicle of the tenant, none of the other's, in the side panel and on the map.
    assert page.locator("#side-list li.veh").count() == len(moving.vehicles)
    assert page.locator("#side-list li[data-vehicle='rival-car']").count() == 0
    assert "© OpenStreetMap contributors, ODbL" in page.locator("[data-testid='attribution']").inner_text()
    page.wait_for_function("window.anycarConsole.map.map.loaded()", timeout=20_000)
    roads = (
        _rendered(page, "road-street") + _rendered(page, "road-primary") + _rendered(page, "road-secondary")
    )
    assert len(roads) > 50, "the OSM streets are not drawn"
    assert _rendered(page, "building"), "no building drawn"

    # A position committed now shows on the map, at its place, within a second or two.
    moving.tick()
    probe = moving.vehicles[0].wire_id
    committed = time.time()
    page.wait_for_function(
        f"(window.anycarConsole.fleet.vehicles.get('{probe}').position.ts >= {committed - 1.5})",
        timeout=10_000,
    )
    page.wait_for_function("window.anycarPerf.latencies.length > 0", timeout=10_000)  # flushed and drawn
    assert _drawn_at(page, probe)["alpha"] > 200  # painted at its new place
    assert _drawn_at(page, probe)["picked"] == probe
    drawn = page.evaluate("window.anycarPerf.latencies.map((l) => l.worst)")
    assert min(drawn) < 5.0
    # The type's icon, the state's colour and the battery gauge are the feature's properties.
    types = page.evaluate(
        "[...window.anycarConsole.fleet.vehicles.values()].map((v) => [v.id, v.type, window.anycarConsole.fleet.stateOf(v)])"
    )
    kinds = {t for _, t, _ in types}
    assert {"delivery", "car", "tracker"} <= kinds, kinds
    assert any(s == "idle" for _, _, s in types) and any(s == "moving" for _, _, s in types)
    assert int(page.locator("[data-testid='vehicle-overlay']").get_attribute("data-count")) == len(
        moving.vehicles
    )

    # Clicking a vehicle on the map picks it (the overlay's hit test at the pixel clicked).
    other = moving.vehicles[2].wire_id
    where = page.evaluate(
        f"(() => {{ const m = window.anycarConsole.map, v = window.anycarConsole.fleet.vehicles.get('{other}').position;"
        " const p = m.map.project([v.lon, v.lat]), r = m.map.getCanvas().getBoundingClientRect();"
        " return [r.left + p.x, r.top + p.y]; })()"
    )
    page.mouse.click(*where)
    page.wait_for_selector(f"#hover-card .hc-title:has-text('{other}')", timeout=5_000)

    # Clicking a vehicle in the list selects it and draws its track of today.
    page.click(f"#side-list li[data-vehicle='{probe}']")
    page.wait_for_selector("#hover-card:not([hidden]) .hc-title", timeout=5_000)
    assert page.locator("#hover-card .hc-title").inner_text() == probe
    page.wait_for_function("window.anycarConsole.map.trackLength >= 3", timeout=10_000)
    screenshot(page, "fleet_console_live_map")

    # Nothing was asked of another origin: no tiles, no fonts, no CDN.
    outside = [u for u in requests if not u.startswith(running.url) and not u.startswith(("data:", "blob:"))]
    assert outside == []
    assert any(u.endswith("/console/vendor/maplibre-gl/maplibre-gl-csp-worker.js") for u in requests)
    assert page.evaluate("window.anycarPerf.supported") is True
    # The only error: the 401 answering the wrong token at the start.
    assert [e for e in page.console_errors if "WebGL" not in e] == [
        "Failed to load resource: the server responded with a status of 401 (Unauthorized)"
    ]


def test_filters_vehicle_page_and_dark_theme(page: Any, fleet: tuple[RunningFleet, MovingFleet]) -> None:
    running, moving = fleet
    _sign_in(page, running.url, moving.token)
    page.click("#nav a[data-page='vehicles']")
    page.wait_for_selector("#vehicle-rows tr[data-vehicle]", timeout=10_000)
    total = len(moving.vehicles)
    assert page.locator("#vehicle-rows tr[data-vehicle]").count() == total

    def count() -> int:
        return int(page.locator("#vehicle-rows").get_attribute("data-count"))

    filters = "#list-filters"
    page.select_option(f"{filters} select[data-filter='type']", "tracker")
    trackers = [v for v in moving.vehicles if v.tracker]
    assert count() == len(trackers)
    page.select_option(f"{filters} select[data-filter='type']", "")
    page.select_option(f"{filters} select[data-filter='brand']", "kaiyun_pickman")
    assert count() == sum(1 for v in moving.vehicles if v.wire_id.startswith("kaiyun"))
    page.select_option(f"{filters} select[data-filter='brand']", "")
    page.select_option(f"{filters} select[data-filter='state']", "idle")
    assert count() == sum(1 for v in moving.vehicles if v.mover.parked)
    page.select_option(f"{filters} select[data-filter='state']", "")
    with httpx.Client(base_url=running.url, headers={"Authorization": f"Bearer {moving.token}"}) as http:
        socs = sorted(s["value"] for s in http.get("/api/signals/last", params={"path": SOC}).json())
    assert len(socs) == sum(1 for v in moving.vehicles if not v.tracker)  # trackers send none
    low = socs[2] + 0.05
    page.fill(f"{filters} input[data-filter='soc']", f"{low:.2f}")
    assert count() == 3  # the three with the lowest state of charge
    page.fill(f"{filters} input[data-filter='soc']", "")
    target = moving.vehicles[1]
    page.fill(f"{filters} input[data-filter='q']", "BENCH000000001")  # by VIN
    assert count() == 1 + sum(1 for v in moving.vehicles if "BENCH00000001" in v.wire_id)
    page.fill(f"{filters} input[data-filter='q']", target.wire_id)  # by name
    assert (
        page.locator("#vehicle-rows tr[data-vehicle]").first.get_attribute("data-vehicle") == target.wire_id
    )

    # An event of this vehicle, committed through the store, is on its page.
    target.seq += 1
    ev = events_doc(
        target.origin,
        target.seq,
        [
            {
                "ts": time.time(),
                "type": "door.opened",
                "subject": "Vehicle.Cabin.Door.Row1.DriverSide",
                "message": "driver's door open",
            }
        ],
        prio=1,
        ts=time.time(),
    )
    running.commit([Accepted(running.store.vehicle(target.wire_id), ev)])  # type: ignore[arg-type]
    # The page's "today" is the browser's date. Both it and the three positions it counts are
    # pinned to one day (noon, two days ago: no tick of this module's can fall on it), so the
    # count cannot change when the run straddles 00:00 UTC between the data and the page (the
    # live position after it has no day filter).
    noon = time.time() // 86_400 * 86_400 - 2 * 86_400 + 43_200
    ref = running.store.vehicle(target.wire_id)
    lat, lon = target.mover.step(0.0)[:2]
    running.commit([Accepted(ref, moving.report(target, noon + i, lat, lon, 0.0, 0.0)) for i in range(3)])  # type: ignore[arg-type]
    page.clock.install(time=noon + 10)  # runs on from there, one second a second
    page.reload()
    page.wait_for_selector("#vehicle-rows tr[data-vehicle]", timeout=20_000)
    page.fill("#list-filters input[data-filter='q']", target.wire_id)
    page.click(f"#vehicle-rows tr[data-vehicle='{target.wire_id}'] a")
    page.wait_for_selector("#page-vehicle[data-loaded='true']", timeout=20_000)
    assert page.locator("[data-testid='vehicle-title']").inner_text() == target.wire_id
    page.wait_for_selector(f"[data-testid='signals'] tr[data-path='{SOC}']", timeout=10_000)
    assert "driver's door open" in page.locator("[data-testid='vehicle-events']").inner_text()
    link = page.locator("[data-testid='dashboard-link']").get_attribute("href")
    assert link == f"http://{target.wire_id}.hubs.example:8080/?vin=LKYBENCH000000001"
    positions = int(page.locator("[data-testid='today'] div:nth-child(2) dd").inner_text())
    assert positions == 3  # that day's, none of the other days'
    moving.tick()
    page.wait_for_function(
        f"+document.querySelector(\"[data-testid='today'] div:nth-child(2) dd\").textContent > {positions}",
        timeout=10_000,
    )
    page.click("[data-testid='theme']")
    assert page.evaluate("document.documentElement.dataset.theme") in ("dark", "light")
    if page.evaluate("document.documentElement.dataset.theme") != "dark":
        page.click("[data-testid='theme']")
    time.sleep(0.5)
    screenshot(page, "fleet_console_vehicle_page_dark")
    page.click("[data-testid='sign-out']")
    page.wait_for_selector("[data-testid='login']:not([hidden])", timeout=10_000)
    assert page.evaluate("sessionStorage.getItem('anycar.fleet.token')") is None


def test_the_dark_live_map_screenshot(
    page: Any, fleet: tuple[RunningFleet, MovingFleet], tmp_path: Path
) -> None:
    running, moving = fleet
    page.add_init_script("localStorage.setItem('anycar.fleet.theme', 'dark')")
    _sign_in(page, running.url, moving.token)
    page.wait_for_function("window.anycarConsole.map.map.loaded()", timeout=20_000)
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    moving.tick()
    time.sleep(1.0)
    shot = screenshot(page, "fleet_console_dark_map")
    assert shot.stat().st_size > 50_000  # a drawn map, not an empty page
