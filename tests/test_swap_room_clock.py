"""The CSMS lives on the room's clock (``FleetConfig.clock``): a station's "today" (its swaps and
the reservations that ended today on the station page), the reservations' stamps and expiries and
the check of a station's own clock all read the clock it is given, not the host's wall clock. A
fleet clock set to another day (a simulation, a test) and the station page then agree, and a run
straddling 00:00 UTC on the wall cannot move a swap to the day before."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import httpx
from sqlalchemy import select
from starlette.applications import Starlette

from anycar.fleet import registry as fleet_registry
from anycar.swap import tables as t
from anycar.swap.console_api import swap_console_routes
from swap_support import running, running_csms, station, swap_engine, until, vehicle

ELSEWHEN = dt.datetime(2030, 6, 15, 12, 0, tzinfo=dt.UTC).timestamp()  # noon, a day far from now


async def test_a_stations_day_is_the_rooms_clock(tmp_path: Path) -> None:
    offset = ELSEWHEN - time.time()

    def clock() -> float:
        return time.time() + offset

    with swap_engine("sqlite", tmp_path) as engine:
        _, token = vehicle(engine)
        async with running_csms(engine, clock=clock) as csms:
            sim = station(engine, "town-c", csms, speed=300.0, meter_s=0.3, clock_offset_s=offset)
            for slot in sim.slots[:2]:
                slot.pack.soc = 99.0
            async with running(sim):
                rid, status = await csms.reserve("town-c", token, minutes=30)
                assert status == "Accepted"
                assert await csms.cancel_reservation("town-c", rid) == "Accepted"
                with engine.connect() as conn:
                    row = conn.execute(select(t.reservations).where(t.reservations.c.id == rid)).one()
                    alerts = conn.execute(select(t.alerts.c.kind)).scalars().all()
                await until(lambda: _status(engine, rid) == "cancelled", what="the cancellation")
            # stamped and timed on the room's clock: its day, 30 min from its now
            assert abs(row.created - ELSEWHEN) < 60 and abs(row.expires - row.created - 1800) < 1
            assert "clock_skew" not in alerts  # a station on the room's time is not "off"
            owner = fleet_registry.add_user(engine, "swapco", "ops", "owner")
            app = Starlette(routes=swap_console_routes(engine, clock))
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
                doc = (
                    await c.get("/api/stations/town-c", headers={"Authorization": f"Bearer {owner}"})
                ).json()
            # ended today (the room's today): still on the station page, with how it ended
            listed = {r["id"]: r for r in doc["reservation_list"]}
            assert rid in listed and listed[rid]["status"] == "cancelled" and not listed[rid]["open"]


def _status(engine, rid: int) -> str:
    with engine.connect() as conn:
        return str(conn.execute(select(t.reservations.c.status).where(t.reservations.c.id == rid)).scalar())
