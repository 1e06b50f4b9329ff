"""The reservations a plan's swap stops call for, with the CSMS in another process and on another
clock (logistics, session 7). A real ``FleetServer`` on SQLite (API, CSMS, command sender), one
swap station run by the station simulator (OCPP 2.1 over WebSocket, the ``ocpp`` package), the
real planner on the shipped Helsinki network.

- The logistics room lives a simulated day (``FleetConfig.logistics_clock``: tomorrow, 09:15 when
  the test starts) while the CSMS and its station speak the wall clock. A held reservation's
  expiry is on the CSMS's clock: a live move that re-times the swap keeps the reservation that
  still holds the pack until then (read on the logistics day it is the same moment), where it
  used to be compared on the logistics day as it was and released and booked again. One that
  ends before the re-timed swap is released and a new one booked before the routes go.
- An accept in a process without the CSMS (``service.accept``, what ``anycar fleet plan
  --accept`` calls) leaves the reservation change pending and says in one line who settles it:
  the server that runs the CSMS does (``SwapSettler``), through the station, and pushes the
  route whose swap stop got the new reservation."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from anycar.fleet import registry
from anycar.fleet.server import FleetConfig, FleetServer
from anycar.logistics import board, execution, service
from anycar.logistics.orders import parse_order
from anycar.logistics.settings import service_area
from anycar.logistics.swaproute import add_to_plan
from anycar.logistics.swapstops import reserve
from anycar.swap import registry as swap_registry
from anycar.swap import tables as t
from anycar.swap.console_api import set_site
from anycar.swap.station import StationSim
from fleet_support import vin
from swap_support import ROUND, half_charge_swap, until

pytestmark = pytest.mark.timeout(180)
DEPOT = {"lat": 60.169, "lon": 24.9372}
KAMPPI = (60.1665, 24.9280)
WIRE, OTHER = "PM-SETTLE", "PM-SPARE"
SHIFT = "09:00-17:00"


class Tomorrow:
    """The logistics room's day: tomorrow (UTC), 09:15 when made, running at the wall's pace; the
    CSMS stays on the wall clock, a day and some hours behind."""

    def __init__(self) -> None:
        wall = time.time()
        self.offset = wall - wall % 86_400 + 86_400 + 9.25 * 3600 - wall

    def __call__(self) -> float:
        return time.time() + self.offset

    def day_start(self) -> float:
        now = self()
        return now - now % 86_400


@dataclass
class Day:
    server: FleetServer
    api: httpx.AsyncClient
    token: str
    tenant: int
    clock: Tomorrow
    plan: int
    reservation: int

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def reservations(self) -> dict[int, tuple[str, str | None]]:
        with self.server.engine.connect() as conn:
            rows = conn.execute(select(t.reservations.c.id, t.reservations.c.status, t.reservations.c.answer))
            return {int(r.id): (str(r.status), r.answer) for r in rows}


@contextlib.asynccontextmanager
async def day(tmp_path: Path) -> AsyncIterator[Day]:
    """WIRE's round with a swap at Kamppi, the pack reserved there (the station accepted it), the
    plan in force and pushed; OTHER, a second PICKMAN, has no order yet."""
    clock = Tomorrow()
    server = FleetServer(
        FleetConfig(
            db_url=f"sqlite:///{tmp_path / 'fleet.sqlite3'}",
            workers=0,
            api_port=0,
            osmand_port=None,
            ocpp_port=0,
            signing_key=tmp_path / "fleet-signing.pem",
            logistics_clock=clock,
        )
    )
    await server.start()
    engine = server.engine
    sim: StationSim | None = None
    task: asyncio.Task[None] | None = None
    try:
        registry.tenant_id(engine, "acme", create=True)
        token = registry.add_user(engine, "acme", "disp", "dispatcher")
        tid = registry.tenant_id(engine, "acme")
        registry.add_vehicle(engine, vin(1), "kaiyun_pickman", tenant="acme", wire_id=WIRE)
        registry.add_vehicle(engine, vin(2), "kaiyun_pickman", tenant="acme", wire_id=OTHER)
        swap_token = swap_registry.add_token(engine, WIRE)
        password = swap_registry.add_station(engine, "hki-kamppi", tenant="acme", layout="pickman-8")
        swap_registry.stock_station(engine, "hki-kamppi", "pickman-8", soc=99.0)
        assert set_site(engine, tid, "hki-kamppi", *KAMPPI, "Kamppi")
        sim = StationSim("hki-kamppi", server.csms.url, "pickman-8", password=password, meter_s=0.5)
        for slot in sim.slots[:3]:  # packs ready to go out
            if slot.pack is not None:
                slot.pack.soc = 99.0
        task = asyncio.ensure_future(sim.run())
        await asyncio.wait_for(sim.booted.wait(), 30)
        rows = [{"id": r, "lat": a, "lon": b, "weight_kg": 5, "windows": "09:00-13:00"} for r, a, b in ROUND]
        board.add_orders(engine, tid, [parse_order(r, service_area()) for r in rows], {})
        proposal = service.propose(
            engine, tid, {"depot": DEPOT, "shift": SHIFT, "time_limit_s": 0.5, "only": [WIRE]}
        )
        (route_json,) = proposal["plan"]["routes"]
        decision = half_charge_swap(route_json, (DEPOT["lat"], DEPOT["lon"]), "hki-kamppi", KAMPPI)
        # booked as the logistics room books (swaproute.settle): minutes from its "now" to 30 min
        # after the planned arrival, which the CSMS counts on its own clock
        now = clock()
        day_start = now - now % 86_400
        got = await reserve(
            server.csms, decision.swap, swap_token, now_s=now - day_start, day_start=day_start
        )
        assert got.status == "Accepted" and got.reservation_id is not None, got
        add_to_plan(engine, tid, int(proposal["id"]), decision)
        async with httpx.AsyncClient(base_url=server.ready()["api"], timeout=60) as api:
            r = await api.post(
                f"/api/plans/{proposal['id']}/accept", headers={"Authorization": f"Bearer {token}"}
            )
            assert r.status_code == 200, r.text
            yield Day(server, api, token, tid, clock, int(proposal["id"]), got.reservation_id)
    finally:
        if sim is not None:
            await sim.stop()
        if task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(task, 10)
        await server.stop()


def _swap(body: dict[str, Any]) -> dict[str, Any]:
    (swap,) = [s for r in body["routes"] for s in r["stops"] if s["action"] == "swap"]
    return swap


async def test_a_live_move_keeps_the_reservation_the_csms_holds_on_its_own_clock(tmp_path: Path) -> None:
    async with day(tmp_path) as d:
        plan = board.plan(d.server.engine, d.tenant, d.plan)
        assert plan is not None
        mine = plan["plan"]["routes"][0]
        moved = next(s["order"] for s in mine["stops"] if s.get("order"))  # the first, before the swap
        r = await d.api.post(
            f"/api/plans/{d.plan}/move", json={"order": moved, "vehicle": OTHER}, headers=d.auth()
        )
        assert r.status_code == 200, r.text
        answer = r.json()
        swap = _swap(answer["plan"]["plan"])
        assert answer["swap"] == [
            f"{WIRE}: swap at hki-kamppi re-timed to {swap['arrival']} (reservation {d.reservation} kept)"
        ], answer["swap"]
        assert swap["reservation"] == d.reservation and d.reservations() == {
            d.reservation: ("active", "Accepted")
        }
        # both changed routes went to their hubs, the swap stop with the reservation it keeps
        assert {p["vehicle"]: p["version"] for p in answer["pushed"]} == {WIRE: 2, OTHER: 1}
        pushed = execution.route_of(d.server.engine, d.tenant, WIRE)
        assert pushed is not None
        assert [(s["station"], s["reservation"]) for s in pushed["stops"] if s["kind"] == "swap"] == [
            ("hki-kamppi", d.reservation)
        ]


async def test_an_accept_without_the_csms_is_settled_by_the_server_that_runs_it(tmp_path: Path) -> None:
    async with day(tmp_path) as d:
        engine = d.server.engine
        # the round runs late: from 11:00 (the logistics day) the swap starts after the pack's
        # reservation ends, so the re-dispatch books a new one at the same station
        plan = board.plan(engine, d.tenant, d.plan)
        assert plan is not None
        first = next(s["order"] for s in plan["plan"]["routes"][0]["stops"] if s.get("order"))
        board.set_status(engine, d.tenant, first, "delivered")
        r = await d.api.post(
            "/api/plans/redispatch",
            json={"depot": DEPOT, "shift": SHIFT, "time_limit_s": 0.5, "now": "11:00", "only": [WIRE]},
            headers=d.auth(),
        )
        assert r.status_code == 201, r.text
        proposal = r.json()
        assert [c["release"] for c in proposal["plan"]["swap_changes"]] == [
            {"station": "hki-kamppi", "reservation": d.reservation}
        ], proposal["plan"]["notes"]
        # accepted where there is no CSMS, as the CLI accepts: the route goes, the change waits
        accepted = await asyncio.to_thread(service.accept, engine, d.tenant, int(proposal["id"]))
        assert accepted is not None
        assert accepted["swap_pending"] == [
            f"{WIRE}: the reservation change waits for the swap room's CSMS (a running `anycar fleet "
            "serve --ocpp-port` settles it and pushes the route)"
        ]
        (pushed,) = accepted["pushed"]
        assert [
            s.get("reservation")
            for s in execution.route_of(engine, d.tenant, WIRE)["stops"]
            if s["kind"] == "swap"
        ] == [None]  # type: ignore[index]

        # the server that runs the CSMS settles it: the old pack released at the station, a new
        # one booked there, the route with its id pushed to the hub
        def settled() -> bool:
            found = board.plan(engine, d.tenant, int(proposal["id"]))
            return found is not None and all(c.get("done") for c in found["plan"]["swap_changes"])

        await until(settled, 30, "the settler")
        held = d.reservations()
        (new_id,) = [k for k in held if k != d.reservation]
        assert held == {d.reservation: ("cancelled", "Accepted"), new_id: ("active", "Accepted")}
        body = board.plan(engine, d.tenant, int(proposal["id"]))["plan"]  # type: ignore[index]
        assert (_swap(body)["reservation"], _swap(body)["reservation_status"]) == (new_id, "Accepted")
        assert f"{WIRE}: reservation {d.reservation} at hki-kamppi released (Accepted)" in body["notes"]
        await until(
            lambda: execution.route_of(engine, d.tenant, WIRE)["version"] > pushed["version"],  # type: ignore[index]
            30,
            "the route pushed again",
        )
        route = execution.route_of(engine, d.tenant, WIRE)
        assert route is not None and route["version"] == pushed["version"] + 1
        assert [s.get("reservation") for s in route["stops"] if s["kind"] == "swap"] == [new_id]


async def test_a_live_move_that_outlasts_the_reservation_pushes_the_new_one(tmp_path: Path) -> None:
    """The pack is held only until half a minute from now (on the CSMS's clock), and the re-timed
    swap starts later: the move books a new one at the station (and releases the old) before the
    route goes, so the route the hub gets carries the new reservation."""
    async with day(tmp_path) as d:
        with d.server.engine.begin() as conn:
            conn.execute(
                update(t.reservations)
                .where(t.reservations.c.id == d.reservation)
                .values(expires=time.time() + 30)
            )
        plan = board.plan(d.server.engine, d.tenant, d.plan)
        assert plan is not None
        moved = next(s["order"] for s in plan["plan"]["routes"][0]["stops"] if s.get("order"))
        r = await d.api.post(
            f"/api/plans/{d.plan}/move", json={"order": moved, "vehicle": OTHER}, headers=d.auth()
        )
        assert r.status_code == 200, r.text
        answer = r.json()
        held = d.reservations()
        assert len(held) == 2, (answer, held)
        (new_id,) = [k for k in held if k != d.reservation]
        assert held == {d.reservation: ("cancelled", "Accepted"), new_id: ("active", "Accepted")}
        retimed, released, booked = answer["swap"]
        assert retimed.endswith(f"reservation {d.reservation} ends before then: a new one"), retimed
        assert released == f"{WIRE}: reservation {d.reservation} at hki-kamppi released (Accepted)"
        assert booked == f"{WIRE}: reservation {new_id} at hki-kamppi: Accepted"
        assert {p["vehicle"]: p["version"] for p in answer["pushed"]} == {WIRE: 2, OTHER: 1}
        route = execution.route_of(d.server.engine, d.tenant, WIRE)
        assert route is not None
        assert [s.get("reservation") for s in route["stops"] if s["kind"] == "swap"] == [new_id]
