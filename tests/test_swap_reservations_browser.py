"""The station page's reservations in headless Chromium against a real ``FleetServer`` with the
CSMS: one held for a station that is offline (shown as held, with why), then the station boots
and the same reservation shows as active with the station's answer; one that expired offline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

pytest.register_assert_rewrite("browser_support")

from anycar.fleet import registry  # noqa: E402
from anycar.swap import registry as swap_registry  # noqa: E402
from anycar.swap.station import StationSim  # noqa: E402
from browser_support import own_errors, screenshot  # noqa: E402
from ops_console_support import OpsFleet, auth, running_fleet, show, sign_in, wait  # noqa: E402

pytest_plugins = ["browser_support"]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpsFleet]:
    with running_fleet(tmp_path_factory, "rsv") as fleet:
        yield fleet


def _station_page(page: Any, url: str, token: str, ident: str) -> None:
    sign_in(page, url, token)
    show(page, f"#/stations/{ident}", "station")


def _reload(page: Any, ident: str) -> None:
    show(page, "#/stations", "list")
    show(page, f"#/stations/{ident}", "station")


def test_a_reservation_held_for_an_offline_station_then_sent_when_it_boots(
    page: Any, fleet: OpsFleet
) -> None:
    engine, csms = fleet.server.engine, fleet.server.csms
    assert csms is not None
    wire = registry.add_vehicle(engine, "LKYZPSRSV00000001", "kaiyun_pickman", tenant="acme").vehicle
    token = swap_registry.add_token(engine, wire)
    viewer = registry.add_user(engine, "acme", "viewer-acme", "viewer")
    password = swap_registry.add_station(engine, "dock-9", tenant="acme", layout="pickman-8")
    swap_registry.stock_station(engine, "dock-9", "pickman-8")
    held, status = fleet.call(csms.reserve("dock-9", token, minutes=30))
    assert status == "Queued"
    gone, status = fleet.call(csms.reserve("dock-9", token, minutes=1 / 60))
    assert status == "Queued"
    time.sleep(1.2)

    _station_page(page, fleet.url, viewer, "dock-9")
    row = page.locator(f"[data-reservation='{held}']")
    assert row.get_attribute("data-status") == "queued"
    assert "held (station offline)" in row.text_content() and wire in row.text_content()
    assert "sent when it connects" in row.text_content()
    screenshot(page, "swap_reservation_held")

    sim = StationSim(  # on the room's clock, as the CSMS (its expiries are in that time)
        "dock-9", csms.url, "pickman-8", password=password, speed=1.0, meter_s=0.3,
        clock_offset_s=fleet.clock.offset,
    )  # fmt: skip
    sim.slots[0].pack.soc = 99.0
    fleet.sims.append(sim)
    fleet.tasks.append(asyncio.run_coroutine_threadsafe(sim.run(), fleet.loop))

    def status_of(rid: int) -> str:
        doc = httpx.get(f"{fleet.url}/api/stations/dock-9", headers=auth(viewer), timeout=30).json()
        return str(next(r for r in doc["reservation_list"] if r["id"] == rid)["status"])

    wait(lambda: status_of(held) == "active", "the held reservation sent after the boot")
    assert status_of(gone) == "expired"
    _reload(page, "dock-9")
    row = page.locator(f"[data-reservation='{held}']")
    assert row.get_attribute("data-status") == "active" and "Accepted" in row.text_content()
    expired = page.locator(f"[data-reservation='{gone}']")
    assert expired.get_attribute("data-status") == "expired" and "never sent" in expired.text_content()
    assert sim.reservations_seen == [held]
    assert "last boot: PowerUp" in page.text_content("[data-testid=station-ops]")
    screenshot(page, "swap_reservation_sent")
    assert own_errors(page) == []
