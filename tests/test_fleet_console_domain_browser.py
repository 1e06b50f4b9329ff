"""The console's alerts and geofences pages in Chromium, against a real FleetServer on SQLite
whose alerts come from its own rules (low state of charge of the moving fleet), and the OTA
rollouts page with a vendor-signed release rolled out to the fleet's coolers. They need the
fleet-domain routes (/api/alerts, /api/geofences) and fleet-commands' (/api/rollouts); without
them the console leaves the pages out (tests/test_fleet_console_browser.py checks that) and
these tests are skipped."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.register_assert_rewrite("browser_support")

from anycar.bench.moving_fleet import MovingFleet, RunningFleet, running_fleet  # noqa: E402
from anycar.fleet.api import openapi  # noqa: E402
from browser_support import screenshot  # noqa: E402

pytest_plugins = ["browser_support"]

if not {"/api/alerts", "/api/geofences"} <= set(openapi()["paths"]):
    pytest.skip(
        "the fleet-domain routes (/api/alerts, /api/geofences) are not in this tree", allow_module_level=True
    )


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningFleet, MovingFleet]]:
    db = tmp_path_factory.mktemp("console-domain") / "fleet.sqlite3"
    with running_fleet(f"sqlite:///{db}") as running:
        moving = MovingFleet(running, 20, tenant="acme")
        for v in moving.vehicles[:3]:
            v.mover.soc = 9.0  # under the default rule's 15 %: a low_soc alert each
        for _ in range(3):
            moving.tick()
        yield running, moving


def _api(running: RunningFleet, moving: MovingFleet) -> httpx.Client:
    return httpx.Client(base_url=running.url, headers={"Authorization": f"Bearer {moving.token}"}, timeout=10)


def _sign_in(page: Any, url: str, token: str) -> None:
    page.goto(url + "/console/")
    page.wait_for_selector("[data-testid='login']:not([hidden])", timeout=15_000)
    page.fill("[data-testid='token']", token)
    page.click("[data-testid='sign-in']")
    page.wait_for_selector("body[data-ready='true']", timeout=30_000)


def test_alerts_listed_and_acknowledged(page: Any, fleet: tuple[RunningFleet, MovingFleet]) -> None:
    running, moving = fleet
    with _api(running, moving) as http:
        deadline = time.monotonic() + 20
        while (
            len(http.get("/api/alerts", params={"state": "open"}).json()) < 3 and time.monotonic() < deadline
        ):
            time.sleep(0.2)
        open_alerts = http.get("/api/alerts", params={"state": "open"}).json()
    assert len(open_alerts) >= 3
    _sign_in(page, running.url, moving.token)
    page.wait_for_function(
        f"document.getElementById('alert-count').textContent === '{len(open_alerts)}'", timeout=10_000
    )
    page.click("#nav a[data-page='alerts']")
    page.wait_for_selector("[data-testid='alert-rows'] tr[data-alert]", timeout=10_000)
    assert page.locator("[data-testid='alert-rows'] tr[data-alert]").count() == len(open_alerts)
    first = open_alerts[0]
    row = page.locator(f"tr[data-alert='{first['id']}']")
    assert first["vehicle"] in row.inner_text() and first["type"] in row.inner_text()
    row.locator("button[data-ack]").click()
    page.wait_for_selector(f"tr[data-alert='{first['id']}']", state="detached", timeout=10_000)
    with _api(running, moving) as http:
        acked = http.get("/api/alerts", params={"state": "acknowledged"}).json()
    assert [a["id"] for a in acked] == [first["id"]] and acked[0]["ack_by"] == "operator"
    page.wait_for_function(
        f"document.getElementById('alert-count').textContent === '{len(open_alerts) - 1}'", timeout=10_000
    )
    page.select_option("select[data-filter='alert-state']", "all")
    page.wait_for_selector(f"tr.acked[data-alert='{first['id']}']", timeout=10_000)
    screenshot(page, "fleet_console_alerts")


def test_geofences_drawn_saved_and_deleted(page: Any, fleet: tuple[RunningFleet, MovingFleet]) -> None:
    running, moving = fleet
    _sign_in(page, running.url, moving.token)
    page.click("#nav a[data-page='geofences']")
    page.wait_for_selector("#page-geofences[data-loaded='true']", timeout=20_000)
    box = page.locator("[data-testid='geofence-map']").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2

    page.click("[data-testid='draw-polygon']")
    for dx, dy in ((-120, -80), (120, -80), (120, 90), (-120, 90)):
        page.mouse.click(cx + dx, cy + dy)
    page.click("[data-testid='save-geofence']")
    assert "name" in page.locator("[data-testid='geofence-error']").inner_text()
    page.fill("[data-testid='geofence-name']", "Depot")
    page.fill("[data-testid='geofence-limit']", "20")
    page.click("[data-testid='save-geofence']")
    page.wait_for_selector("[data-testid='geofence-list'][data-count='1']", timeout=10_000)

    page.click("[data-testid='draw-circle']")
    page.mouse.click(cx + 200, cy + 150)
    page.mouse.click(cx + 260, cy + 150)
    page.fill("[data-testid='geofence-name']", "Market square")
    page.click("[data-testid='save-geofence']")
    page.wait_for_selector("[data-testid='geofence-list'][data-count='2']", timeout=10_000)
    with _api(running, moving) as http:
        fences = {f["properties"]["name"]: f for f in http.get("/api/geofences").json()["features"]}
    assert fences["Depot"]["geometry"]["type"] == "Polygon"
    assert len(fences["Depot"]["geometry"]["coordinates"][0]) == 5
    assert fences["Depot"]["properties"]["speed_limit_kmh"] == 20
    circle = fences["Market square"]
    assert circle["geometry"]["type"] == "Point" and 20 < circle["properties"]["radius_m"] < 400
    # The polygon is at the place clicked: its corners around the map's centre.
    centre = page.evaluate(
        f"(() => {{ const c = window.anycarConsole.geofencesPage.map.map.unproject([{box['width'] / 2}, {box['height'] / 2}]); return [c.lng, c.lat]; }})()"
    )
    ring = fences["Depot"]["geometry"]["coordinates"][0]
    assert min(x for x, _ in ring) < centre[0] < max(x for x, _ in ring)
    assert min(y for _, y in ring) < centre[1] < max(y for _, y in ring)
    drawn = page.evaluate(
        "window.anycarConsole.geofencesPage.map.map.queryRenderedFeatures({layers: ['geofence-line']}).length"
    )
    assert drawn >= 2
    screenshot(page, "fleet_console_geofences")
    page.click(f"button[data-delete='{circle['id']}']")
    page.wait_for_selector("[data-testid='geofence-list'][data-count='1']", timeout=10_000)
    with _api(running, moving) as http:
        assert [f["properties"]["name"] for f in http.get("/api/geofences").json()["features"]] == ["Depot"]


def _owner(running: RunningFleet) -> str:
    from anycar.fleet.registry import add_user

    return add_user(running.store.engine, "acme", f"owner-{time.monotonic_ns()}", "owner")


def test_ota_rollout_progress_pause_resume_abort(page: Any, fleet: tuple[RunningFleet, MovingFleet]) -> None:
    if not _has_commands():
        pytest.skip("the fleet-commands routes (/api/rollouts) are not in this tree")
    import base64
    import hashlib

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from anycar.fleet import inventory, ota, registry
    from anycar.wire import signature

    running, moving = fleet
    engine = running.store.engine
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    ota.add_vendor_key(engine, 0xFFF1, base64.b64encode(raw).decode())
    hubs = [v.wire_id for v in moving.vehicles if not v.tracker][:4]
    with engine.begin() as conn:
        for i, wire_id in enumerate(hubs):
            ref = conn.execute(
                registry.db.vehicles.select().where(registry.db.vehicles.c.wire_id == wire_id)
            ).one()
            item = {
                "id": "Cooler1",
                "vendor_id": 0xFFF1,
                "vendor": "anycar virtual",
                "product_id": 0x8003,
                "model": "CC-1",
            }
            item |= {"serial": f"S{i}", "firmware": "1.0.0", "mount": "cup_holder_front", "status": "RUNNING"}
            inventory.apply(conn, ref.id, {"ts": time.time(), "accessories": [item]})
    image = b"cooler firmware 1.1.0" * 100
    doc = {"vendor_id": 0xFFF1, "product_id": 0x8003, "version": "1.1.0", "size": len(image)}
    doc |= {"sha256": hashlib.sha256(image).hexdigest(), "notes": "quieter fan"}
    release = ota.upload(engine, signature.sign(doc, key), image)
    tenant = registry.tenant_id(engine, "acme")
    rollout = ota.start(engine, tenant, release["id"], percent=100, base_url=running.url, max_in_flight=2)

    _sign_in(page, running.url, _owner(running))
    page.click("#nav a[data-page='ota']")
    card = f"[data-rollout='{rollout['id']}']"
    page.wait_for_selector(f"{card}[data-state='running']", timeout=10_000)
    assert f"{len(hubs)} targets" in page.locator(f"{card} [data-testid='rollout-counts']").inner_text()
    assert "1.1.0" in page.locator("[data-testid='firmware-ledger']").inner_text()
    assert "quieter fan" in page.locator("[data-testid='firmware-ledger']").inner_text()
    page.click(f"{card} button[data-action='pause']")
    page.wait_for_selector(f"{card}[data-state='paused']", timeout=10_000)
    assert ota.progress(engine, tenant, rollout["id"])["state"] == "paused"  # type: ignore[index]
    screenshot(page, "fleet_console_ota")
    page.click(f"{card} button[data-action='resume']")
    page.wait_for_selector(f"{card}[data-state='running']", timeout=10_000)
    page.click(f"{card} button[data-action='abort']")
    page.wait_for_function(
        f"!['running', 'paused'].includes(document.querySelector(\"{card}\").dataset.state)", timeout=10_000
    )
    assert ota.progress(engine, tenant, rollout["id"])["state"] not in ("running", "paused")  # type: ignore[index]

    # The vehicle page lists what is fitted, and today's trips.
    page.goto(running.url + f"/console/#/vehicles/{hubs[0]}")
    page.wait_for_selector("#page-vehicle[data-loaded='true']", timeout=20_000)
    assert "CC-1" in page.locator("[data-testid='vehicle-accessories']").inner_text()
    assert page.locator("[data-testid='vehicle-trips'] tr").count() >= 1


def _has_commands() -> bool:
    try:
        from anycar.fleet import api_commands  # noqa: F401
    except ImportError:
        return False
    return True


def test_fleet_report_of_the_day_with_csv(page: Any, fleet: tuple[RunningFleet, MovingFleet]) -> None:
    running, moving = fleet
    now = time.time()
    day = time.strftime("%Y-%m-%d", time.gmtime(now))
    with _api(running, moving) as http:
        expected = http.get("/api/reports/fleet", params={"day": day}).json()
    # the page's default day is the browser's date: pinned to ``day`` (its noon, running on), so a
    # run straddling 00:00 UTC between the expectation and the page compares the same day
    page.clock.install(time=now // 86_400 * 86_400 + 43_200)
    _sign_in(page, running.url, moving.token)
    page.click("#nav a[data-page='reports']")
    page.wait_for_selector("#page-reports[data-loaded='true']", timeout=15_000)
    assert page.locator("[data-testid='report-when']").input_value() == day
    assert int(page.locator("[data-testid='report-rows']").get_attribute("data-count")) == len(
        expected["vehicles"]
    )
    assert f"{expected['totals']['trips']}" in page.locator("[data-testid='report-totals']").inner_text()
    assert page.locator("[data-testid='report-bars'] .bar-row").count() == min(20, len(expected["vehicles"]))
    with page.expect_download() as download:
        page.click("[data-testid='report-csv']")
    lines = Path(download.value.path()).read_text().splitlines()
    assert len(lines) == len(expected["vehicles"]) + 2  # header, one per vehicle, the total
    page.fill("[data-testid='report-when']", "2026-13-45")
    page.locator("[data-testid='report-when']").dispatch_event("change")
    page.wait_for_selector("[data-testid='report-error']:has-text('day')", timeout=10_000)
    screenshot(page, "fleet_console_reports")
