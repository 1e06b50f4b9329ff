"""Reservations the CSMS holds for a station that is offline (issue 16): stored as ``queued``,
sent (ReserveNow) when the station connects after its BootNotification, the outcome recorded; a
reservation whose expiry passed while the station was away is expired and never sent; a
cancellation while offline is held the same way. Against the station simulator, written with the
same ``ocpp`` package, that loses power and boots again."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from starlette.applications import Starlette

from anycar.fleet import registry as fleet_registry
from anycar.logistics.swapstops import SwapStop, reserve, stations_from_tables
from anycar.swap import inventory, registry
from anycar.swap import tables as t
from anycar.swap.console_api import swap_console_routes
from anycar.swap.csms import SwapError
from swap_support import running, running_csms, station, swap_engine, until, vehicle


def _row(engine: Any, reservation_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(t.reservations).where(t.reservations.c.id == reservation_id)).one()


def _reserved(sim: Any) -> set[int]:
    return {s.reserved for s in sim.slots if s.reserved is not None}


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_reservation_for_an_offline_station_is_held_and_sent_when_it_boots(
    kind: str, tmp_path: Path
) -> None:
    with swap_engine(kind, tmp_path) as engine:
        _, token = vehicle(engine)
        async with running_csms(engine) as csms:
            csms.sweep_interval = 3600.0  # only the boot itself may trigger the delivery here
            sim = station(engine, "town-h", csms, speed=300.0, meter_s=0.3)
            for slot in sim.slots[:3]:
                slot.pack.soc = 99.0  # three ready packs
            async with running(sim):
                await sim.power_off()
                await until(lambda: "town-h" not in csms.sessions, what="the station offline")
                held, status = await csms.reserve("town-h", token, minutes=30)
                assert status == "Queued"
                short, status = await csms.reserve("town-h", token, minutes=1 / 60)  # 1 s: expires offline
                assert status == "Queued"
                dropped, status = await csms.reserve("town-h", token, minutes=30)
                assert await csms.cancel_reservation("town-h", dropped) == "Withdrawn"
                row = _row(engine, held)
                assert row.status == "queued" and row.sent is None and "offline" in row.detail
                await asyncio.sleep(1.2)
                sim.power_on("PowerUp")  # the station boots again: BootNotification, then the held ones
                await until(lambda: _row(engine, held).status == "active", what="the held reservation sent")
                assert _reserved(sim) == {held}
                assert sim.reservations_seen == [held]  # neither the expired nor the withdrawn one
            row = _row(engine, held)
            assert row.answer == "Accepted" and row.sent is not None and row.sent > row.created
            expired = _row(engine, short)
            assert expired.status == "expired" and expired.sent is None and "never sent" in expired.detail
            withdrawn = _row(engine, dropped)
            assert withdrawn.status == "cancelled" and withdrawn.sent is None and withdrawn.answer is None


async def test_a_cancellation_while_offline_is_sent_after_the_reboot_and_rejections_are_recorded(
    tmp_path: Path,
) -> None:
    with swap_engine("sqlite", tmp_path) as engine:
        _, token = vehicle(engine)
        _, other = vehicle(engine, tenant="rival")
        async with running_csms(engine) as csms:
            csms.sweep_interval = 3600.0
            sim = station(engine, "town-c", csms, speed=1.0, meter_s=0.3)  # no pack gets ready meanwhile
            sim.slots[0].pack.soc = 99.0  # exactly one ready pack
            async with running(sim):
                await until(lambda: inventory.station_packs(engine, "town-c")[0]["state"] == "ready")
                first, status = await csms.reserve("town-c", token, minutes=30)
                assert status == "Accepted" and _reserved(sim) == {first}
                await sim.power_off()
                await until(lambda: "town-c" not in csms.sessions, what="the station offline")
                assert await csms.cancel_reservation("town-c", first) == "Queued"
                assert _row(engine, first).status == "cancel_queued"
                # held for the rival while offline: the one ready pack is still reserved at the station
                second, status = await csms.reserve("town-c", other, minutes=30)
                assert status == "Queued"
                sim.power_on("PowerUp")
                await until(lambda: _row(engine, second).status in ("active", "rejected"), what="delivery")
                # oldest first: the cancellation freed the pack, then the rival's reservation took it
                assert _row(engine, first).status == "cancelled" and _row(engine, first).answer == "Accepted"
                assert _row(engine, second).status == "active" and _reserved(sim) == {second}
                # one more while the only ready pack is taken: the station says Occupied, recorded
                third, status = await csms.reserve("town-c", token, minutes=30)
                assert status == "Occupied"
                row = _row(engine, third)
                assert row.status == "rejected" and row.answer == "Occupied" and "Occupied" in row.detail


async def test_the_station_expires_a_reservation_and_says_so(tmp_path: Path) -> None:
    with swap_engine("sqlite", tmp_path) as engine:
        _, token = vehicle(engine)
        async with running_csms(engine) as csms:
            sim = station(engine, "town-e", csms, speed=300.0, meter_s=0.3, tick_s=0.2)
            sim.slots[0].pack.soc = 99.0
            async with running(sim):
                rid, status = await csms.reserve("town-e", token, minutes=1 / 60)
                assert status == "Accepted"
                await until(lambda: _row(engine, rid).status == "expired", what="ReservationStatusUpdate")
                row = _row(engine, rid)
                assert row.answer == "Expired" and "reported Expired" in row.detail and not _reserved(sim)


async def test_a_link_lost_before_the_answer_keeps_the_reservation_held(tmp_path: Path) -> None:
    """The station drops the connection with the ReserveNow unanswered: the CSMS holds it and
    sends it again (same id: the station replaces, never doubles) when the station is back."""
    with swap_engine("sqlite", tmp_path) as engine:
        _, token = vehicle(engine)
        async with running_csms(engine, call_timeout=1.0) as csms:
            sim = station(engine, "town-l", csms, speed=300.0, meter_s=0.3)
            sim.slots[0].pack.soc = 99.0
            async with running(sim):
                link = sim.link
                assert link is not None
                handlers = link.route_map["ReserveNow"]
                answer = handlers["_on_action"]

                async def mute(**kwargs: Any) -> Any:  # the first ReserveNow arrives, then the power goes
                    handlers["_on_action"] = answer
                    sim.reservations_seen.append(kwargs["id"])
                    await sim.power_off()
                    await asyncio.sleep(30)  # never answered: the connection is gone first

                handlers["_on_action"] = mute
                rid, status = await csms.reserve("town-l", token, minutes=30)
                assert status == "Queued" and _row(engine, rid).status == "queued"
                sim.power_on("PowerUp")
                await until(lambda: _row(engine, rid).status == "active", what="sent again")
                assert sim.reservations_seen == [rid, rid] and _reserved(sim) == {rid}


async def test_the_dispatcher_path_the_console_api_and_bad_input(tmp_path: Path) -> None:
    with swap_engine("sqlite", tmp_path) as engine:
        _, token = vehicle(engine)
        registry.add_station(engine, "far-1", tenant="swapco", layout="pickman-8")  # never connects
        async with running_csms(engine) as csms:
            stop = SwapStop("v1", "far-1", 0, 9 * 3600.0, 0.0, 90.0, 500.0, 60.0, 0.1)
            got = await reserve(csms, stop, token, now_s=8 * 3600.0, day_start=time.time() - 8 * 3600)
            assert got.status == "Queued" and got.reservation_id is not None
            row = _row(engine, got.reservation_id)
            assert row.status == "queued" and row.expires > time.time() + 3600  # until 30 min after arrival
            # the planner counts the held reservation: the station's ready packs less one
            registry.stock_station(engine, "far-1", "pickman-8")
            with engine.begin() as conn:  # two packs ready, as the station last reported
                conn.execute(
                    update(t.packs).where(t.packs.c.station_id == "far-1", t.packs.c.evse_id <= 2)
                    .values(state="ready", soc=99.0)
                )  # fmt: skip
            ready = sum(1 for p in inventory.station_packs(engine, "far-1") if p["state"] == "ready")
            assert ready == 2
            day0 = time.time() - 8 * 3600
            seen = stations_from_tables(engine, {"far-1": (60.17, 24.94)}, now=time.time(), day_start=day0)
            assert seen[0].online is False and seen[0].ready == max(0, ready - 1)
            # a re-plan moves it (OCPP has no amend): the held one is withdrawn, never sent
            assert await csms.cancel_reservation("far-1", got.reservation_id) == "Withdrawn"
            with pytest.raises(SwapError, match="unknown_station"):
                await csms.reserve("nowhere", token)
            with pytest.raises(SwapError, match="unknown_token"):
                await csms.reserve("far-1", "no-such-token")
            with pytest.raises(SwapError, match="offline"):
                await csms.cancel_reservation("far-1", 12345)  # not a reservation of this station
            again = await reserve(csms, stop, token, now_s=8 * 3600.0, day_start=day0)
            assert again.status == "Queued"
            # the console: the station page lists the held one (and why) and the withdrawn one
            owner = fleet_registry.add_user(engine, "swapco", "ops", "owner")
            app = Starlette(routes=swap_console_routes(engine))
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://t"
            ) as client:
                doc = (
                    await client.get("/api/stations/far-1", headers={"Authorization": f"Bearer {owner}"})
                ).json()
            listed = {r["id"]: r for r in doc["reservation_list"]}
            assert listed[again.reservation_id]["status"] == "queued" and listed[again.reservation_id]["open"]
            assert "offline" in listed[again.reservation_id]["detail"] and doc["reservations"] == 1
            assert (
                listed[got.reservation_id]["status"] == "cancelled" and not listed[got.reservation_id]["open"]
            )
