"""What a CSMS operator meets beside swaps (issue 16): the charging plan sent again when the grid
limit changes, and the station's firmware status, last boot reason and clock in the station
page's API. Against the station simulator, written with the same ``ocpp`` package."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from anycar.fleet import registry as fleet_registry
from anycar.swap import inventory
from anycar.swap.console_api import swap_console_routes
from swap_support import running, running_csms, station, swap_engine, until


def _hourly_w(sim, hours: int) -> list[float]:  # type: ignore[no-untyped-def]
    """What the station's TxDefaultProfiles allow over its slots, per hour of the plan."""
    out = []
    for h in range(hours):
        total = 0.0
        for slot in sim.slots:
            if len(slot.profile) > h:
                total += slot.profile[h][1]
        out.append(total)
    return out


async def test_a_new_grid_limit_sends_the_charging_plan_again_under_it(tmp_path: Path) -> None:
    with swap_engine("sqlite", tmp_path) as engine:
        async with running_csms(engine) as csms:
            sim = station(engine, "grid-1", csms, speed=1.0, meter_s=0.3)
            async with running(sim):
                await until(lambda: len(inventory.station_packs(engine, "grid-1")) >= 7)
                demand = [3.0, 2.0] + [0.5] * 22  # a busy start: the plan charges hard at first
                plan, answers = await csms.charge_plan("grid-1", demand=demand)
                assert set(answers.values()) == {"Accepted"} and max(plan.grid_kw()) > 5.0
                assert max(_hourly_w(sim, plan.hours)) > 5000.0
                assert await csms.set_grid_limit("grid-1", 5.0) == "Accepted"
                again, answers = csms.plans["grid-1"]
                assert again is not plan and set(answers.values()) == {"Accepted"}
                assert max(again.grid_kw()) <= 5.0 and sim.max_w == 5000.0
                assert max(_hourly_w(sim, again.hours)) <= 5000.0 + 1e-6  # what the station now obeys
                # a station never planned for gets its limit only
                other = station(engine, "grid-2", csms, speed=1.0)
                async with running(other):
                    assert await csms.set_grid_limit("grid-2", 11.0) == "Accepted"
                    assert "grid-2" not in csms.plans and all(not s.profile for s in other.slots)


async def test_firmware_status_boot_reason_and_clock_in_the_station_api(tmp_path: Path) -> None:
    with swap_engine("sqlite", tmp_path) as engine:
        async with running_csms(engine) as csms:
            sim = station(engine, "fw-1", csms, speed=1.0, clock_offset_s=600.0)
            async with running(sim):
                await sim.firmware_status("Installing")
                owner = fleet_registry.add_user(engine, "swapco", "ops", "owner")
                app = Starlette(routes=swap_console_routes(engine))
                headers = {"Authorization": f"Bearer {owner}"}
                async with httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://t"
                ) as http:

                    async def page_until(check: Any, what: str) -> dict[str, Any]:
                        deadline = asyncio.get_running_loop().time() + 30
                        while True:
                            got: dict[str, Any] = (
                                await http.get("/api/stations/fw-1", headers=headers)
                            ).json()
                            if check(got):
                                return got
                            if asyncio.get_running_loop().time() > deadline:
                                raise AssertionError(f"timed out waiting for {what}: {got}")
                            await asyncio.sleep(0.05)

                    got = await page_until(
                        lambda d: d["firmware_status"] == "Installing", "the firmware status"
                    )
                    assert got["boot_reason"] == "PowerUp"
                    assert got["clock_skew_s"] > 500  # the station's clock runs 10 minutes ahead
                    assert await csms.reset("fw-1") == "Accepted"
                    got = await page_until(lambda d: d["boot_reason"] == "RemoteReset", "the reboot")
                    assert got["online"] is True


async def test_a_rebooted_station_gets_its_grid_limit_and_charging_plan_again(tmp_path: Path) -> None:
    """A station that forgets its charging profiles when it loses power (OCPP asks for persistent
    ones; not every station keeps them) is sent its grid limit and a fresh plan after its
    BootNotification: without them it would charge every slot at full power again."""
    with swap_engine("sqlite", tmp_path) as engine:
        async with running_csms(engine) as csms:
            sim = station(engine, "boot-1", csms, speed=1.0, meter_s=0.3, volatile_profiles=True)
            async with running(sim):
                await until(lambda: len(inventory.station_packs(engine, "boot-1")) >= 7)
                assert await csms.set_grid_limit("boot-1", 6.0) == "Accepted"
                plan, answers = await csms.charge_plan("boot-1", demand=[3.0, 2.0] + [0.5] * 22)
                assert set(answers.values()) == {"Accepted"} and sim.max_w == 6000.0
                planned = {s.evse for s in sim.slots if s.profile}
                assert planned and max(_hourly_w(sim, plan.hours)) <= 6000.0 + 1e-6
                await sim.power_off()
                await until(lambda: "boot-1" not in csms.sessions, what="the station offline")
                assert sim.max_w == sim.layout.grid_limit_kw * 1000 and not any(s.profile for s in sim.slots)
                sim.power_on("PowerUp")
                await until(lambda: sim.max_w == 6000.0, what="the grid limit sent again")
                await until(
                    lambda: {s.evse for s in sim.slots if s.profile} == planned, what="the plan again"
                )
                again, answers = csms.plans["boot-1"]
                assert again is not plan and set(answers.values()) == {"Accepted"}
                assert max(_hourly_w(sim, again.hours)) <= 6000.0 + 1e-6
