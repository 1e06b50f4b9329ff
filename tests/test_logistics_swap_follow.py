"""A swap stop follows its route when the route changes after the swap was planned: a re-dispatch
plans it again from where the vehicle is (``swaproute.follow``): moved to another station when
that is what planning chooses, removed when the charge no longer calls for it, kept as it was
with the reason when no station can be reached; the reservation follows at accept through the
real CSMS (``swaproute.settle``: the old one released, a new one booked, the plan's stop says
which). A stop dragged to another route in the console does the same (``move.move_order``).
SQLite, the real planner, the shipped Helsinki network; the stations are registered and stocked
and not connected (the CSMS holds what it sends them)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from anycar.fleet import db, registry
from anycar.logistics import board, execution, move, service, swaproute
from anycar.logistics.matrix import Planar
from anycar.logistics.orders import parse_order
from anycar.logistics.problem import PlanVehicle, Stop
from anycar.logistics.settings import service_area
from anycar.logistics.swaproute import add_to_plan
from anycar.logistics.swapstops import SwapStation, reserve
from anycar.swap import registry as swap_registry
from anycar.swap import tables as t
from anycar.swap.console_api import set_site
from fleet_support import vin
from swap_support import ROUND, half_charge_swap, running_csms, swap_engine

DEPOT = {"lat": 60.169, "lon": 24.9372}
KAMPPI = (60.1665, 24.9280)  # west of the depot, away from the round
KALLIO = (60.1712, 24.9500)  # among the round's stops
WIRE = "PM-FOLLOW"
OPTIONS = {"depot": DEPOT, "shift": "09:00-17:00", "time_limit_s": 0.5}


def at_0920() -> float:
    """The re-dispatch's "now": 09:20 on the room's (UTC) day; the CSMS's clock too."""
    return time.time() - time.time() % 86_400 + 9 * 3600 + 20 * 60


def _online(engine: Any, station: str, online: bool) -> None:
    with engine.begin() as conn:
        conn.execute(update(t.stations).where(t.stations.c.id == station).values(online=online))


def _reservations(engine: Any) -> dict[int, str]:
    with engine.connect() as conn:
        return {
            int(r.id): str(r.status)
            for r in conn.execute(select(t.reservations.c.id, t.reservations.c.status))
        }


@pytest.fixture
def day(tmp_path) -> Iterator[tuple[Any, int, str]]:
    """The vehicle's round with a swap at Kamppi, reserved there through the CSMS; the plan in
    force; the two stations registered with a site and stocked, Kallio online, Kamppi too."""
    with swap_engine("sqlite", tmp_path) as engine:
        registry.add_vehicle(engine, vin(1), "kaiyun_pickman", tenant="acme", wire_id=WIRE)
        token = swap_registry.add_token(engine, WIRE)
        tid = registry.tenant_id(engine, "acme")
        for ident, (lat, lon) in (("hki-kamppi", KAMPPI), ("hki-kallio", KALLIO)):
            swap_registry.add_station(engine, ident, tenant="acme", layout="pickman-8")
            swap_registry.stock_station(engine, ident, "pickman-8", soc=99.0)  # packs ready
            assert set_site(engine, tid, ident, lat, lon, ident)
            _online(engine, ident, True)
        rows = [{"id": r, "lat": a, "lon": b, "weight_kg": 5, "windows": "09:00-13:00"} for r, a, b in ROUND]
        board.add_orders(engine, tid, [parse_order(r, service_area()) for r in rows], {})
        proposal = service.propose(engine, tid, OPTIONS)
        (route_json,) = proposal["plan"]["routes"]
        decision = half_charge_swap(route_json, (DEPOT["lat"], DEPOT["lon"]), "hki-kamppi", KAMPPI)
        now = time.time()
        day_start = now - now % 86_400

        async def book() -> None:
            # booked at 09:00 on the room's day, on the CSMS's clock too (its expiry on that day)
            async with running_csms(engine, clock=lambda: day_start + 9 * 3600) as csms:
                got = await reserve(csms, decision.swap, token, now_s=9 * 3600, day_start=day_start)
                assert got.status == "Queued" and got.reservation_id is not None  # not connected: held

        asyncio.run(book())
        add_to_plan(engine, tid, int(proposal["id"]), decision)
        service.accept(engine, tid, int(proposal["id"]))
        yield engine, tid, token


def _redispatch(engine: Any, tid: int, **extra: Any) -> dict[str, Any]:
    plan = board.accepted_plan(engine, tid)["plan"]
    first = next(s["order"] for s in plan["routes"][0]["stops"] if s.get("order"))
    board.set_status(engine, tid, first, "delivered")
    return service.propose_redispatch(engine, tid, {**OPTIONS, "now": "09:20", **extra}, clock=at_0920())


def _swaps(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for r in body["routes"] for s in r["stops"] if s["action"] == "swap"]


async def test_a_redispatch_moves_the_swap_to_the_better_station_and_the_reservation_with_it(day) -> None:
    engine, tid, _ = day
    (old,) = _swaps(board.accepted_plan(engine, tid)["plan"])
    first_id = old["reservation"]
    # Kamppi went offline (its pack still held by the CSMS), and the vehicle is out on its round
    # east of it: planning chooses Kallio, on the way
    _online(engine, "hki-kamppi", False)
    with engine.begin() as conn:
        conn.execute(
            update(db.vehicles)
            .where(db.vehicles.c.wire_id == WIRE)
            .values(last_lat=60.1745, last_lon=24.9505)
        )
    again = _redispatch(engine, tid)  # no charge reading: the swap is kept (planned again, not dropped)
    (swap,) = _swaps(again["plan"])
    assert swap["station"] == "hki-kallio" and swap["reservation"] is None
    assert swap["reservation_status"] == "to reserve" and swap["arrival_s"] >= 9 * 3600 + 20 * 60
    (note,) = [n for n in again["plan"]["notes"] if "swap moved" in n]
    assert note.startswith(f"{WIRE}: swap moved from hki-kamppi to hki-kallio")
    assert f"reservation {first_id} released, a new one at hki-kallio" in note
    assert again["plan"]["swap_changes"] == [
        {
            "vehicle": WIRE,
            "release": {"station": "hki-kamppi", "reservation": first_id},
            "reserve": {"station": "hki-kallio", "arrival_s": swap["arrival_s"], "wait_s": swap["wait_s"]},
        }
    ]
    assert _reservations(engine) == {first_id: "queued"}  # a proposal changes no reservation
    other = service.propose_redispatch(engine, tid, {**OPTIONS, "now": "09:20"}, clock=at_0920())
    accepted = service.accept(engine, tid, int(other["id"]))  # no CSMS here (the CLI's accept): said
    assert accepted["swap_pending"] == [
        f"{WIRE}: the reservation change waits for the swap room's CSMS (a running `anycar fleet "
        "serve --ocpp-port` settles it and pushes the route)"
    ]
    async with running_csms(engine, clock=at_0920) as csms:
        done = await swaproute.settle(csms, engine, tid, int(again["id"]), now=at_0920())
        assert await swaproute.settle(csms, engine, tid, int(again["id"]), now=at_0920()) == []  # once
    held = _reservations(engine)
    (new_id,) = [k for k in held if k != first_id]
    assert held == {first_id: "cancelled", new_id: "queued"}
    assert done == [
        f"{WIRE}: reservation {first_id} at hki-kamppi released (Withdrawn)",
        f"{WIRE}: reservation {new_id} at hki-kallio: Queued",
    ]
    accepted = service.accept(engine, tid, int(again["id"]))
    (stop,) = _swaps(accepted["plan"])
    assert (stop["station"], stop["reservation"], stop["reservation_status"]) == (
        "hki-kallio",
        new_id,
        "Queued",
    )
    pushed = [s for s in execution.route_of(engine, tid, WIRE)["stops"] if s["kind"] == "swap"]
    assert [(s["station"], s["reservation"]) for s in pushed] == [("hki-kallio", new_id)]


async def test_a_swap_no_longer_needed_is_removed_with_the_reason_and_its_pack_released(day) -> None:
    engine, tid, _ = day
    (old,) = _swaps(board.accepted_plan(engine, tid)["plan"])
    again = _redispatch(engine, tid, vehicles={WIRE: {"soc": 0.95}})  # charged meanwhile
    assert _swaps(again["plan"]) == []
    (note,) = [n for n in again["plan"]["notes"] if "swap at" in n]
    assert note.startswith(f"{WIRE}: swap at hki-kamppi removed: no longer needed (the route needs ")
    assert note.endswith(f"kWh above the reserve); reservation {old['reservation']} released")
    assert again["plan"]["swap_changes"] == [
        {
            "vehicle": WIRE,
            "release": {"station": "hki-kamppi", "reservation": old["reservation"]},
            "reserve": None,
        }
    ]
    async with running_csms(engine, clock=at_0920) as csms:
        await swaproute.settle(csms, engine, tid, int(again["id"]), now=at_0920())
    assert _reservations(engine) == {old["reservation"]: "cancelled"}


def test_a_swap_that_cannot_be_placed_any_more_is_kept_with_the_reason(day) -> None:
    """No pack is held for it (the station refused the booking) and every station is offline:
    nothing can take the swap; the plan keeps it as it was and says why."""
    engine, tid, _ = day
    found = board.accepted_plan(engine, tid)
    for s in _swaps(found["plan"]):
        s.update(reservation=None, reservation_status="unknown_station")
    with engine.begin() as conn:
        body = {k: v for k, v in found.items() if k not in ("id", "kind", "status", "created", "accepted")}
        conn.execute(update(db.plans).where(db.plans.c.id == found["id"]).values(body=body))
    (old,) = _swaps(board.accepted_plan(engine, tid)["plan"])
    for ident in ("hki-kamppi", "hki-kallio"):
        _online(engine, ident, False)
    again = _redispatch(engine, tid)
    (swap,) = _swaps(again["plan"])
    assert swap == old  # as the first plan had it: the note says why
    (note,) = [n for n in again["plan"]["notes"] if "swap at hki-kamppi" in n]
    assert note.startswith(f"{WIRE}: the swap cannot be placed again (energy: the route needs ")
    assert "no swap station is reachable with it (offline: hki-kamppi, hki-kallio))" in note
    assert note.endswith("the swap at hki-kamppi is kept at the first plan's times")
    assert "swap_changes" not in again["plan"]


def test_a_used_reservation_is_not_driven_to_again(day) -> None:
    engine, tid, _ = day
    (old,) = _swaps(board.accepted_plan(engine, tid)["plan"])
    with engine.begin() as conn:
        conn.execute(
            update(t.reservations).where(t.reservations.c.id == old["reservation"]).values(status="used")
        )
    again = _redispatch(engine, tid)
    assert _swaps(again["plan"]) == [] and not any("swap" in n for n in again["plan"]["notes"])


def test_a_move_keeps_the_swap_re_timed_for_the_new_order(day) -> None:
    """A second vehicle takes one of the swapping vehicle's orders by hand: the swap stays on the
    swapping vehicle's route, planned again on its new stops (the charge is not known: kept)."""
    engine, tid, _ = day
    registry.add_vehicle(engine, vin(2), "kaiyun_pickman", tenant="acme", wire_id="PM-OTHER")
    _online(engine, "hki-kallio", False)  # Kamppi, with the pack it holds, is the one choice
    plan = board.accepted_plan(engine, tid)
    (route,) = plan["plan"]["routes"]
    (old,) = _swaps(plan["plan"])
    moved = next(s["order"] for s in route["stops"] if s.get("order"))
    now = time.time() - time.time() % 86_400 + 9.25 * 3600  # 09:15 on the room's day, still at the depot
    result = move.move_order(engine, tid, int(plan["id"]), moved, "PM-OTHER", now=now)
    assert result.accepted, result.reason
    body = board.plan(engine, tid, int(plan["id"]))["plan"]
    mine = next(r for r in body["routes"] if r["vehicle"] == WIRE)
    (swap,) = [s for s in mine["stops"] if s["action"] == "swap"]
    assert moved not in [s.get("order") for s in mine["stops"]]
    assert swap["station"] == "hki-kamppi" and swap["reservation"] == old["reservation"]
    # re-timed: from now (the plan in force) on the new order of stops, consistent either side
    i = mine["stops"].index(swap)
    assert (
        mine["stops"][i - 1]["departure"]
        <= swap["arrival"]
        <= swap["departure"]
        <= mine["stops"][i + 1]["arrival"]
    )
    assert swap["arrival_s"] >= 9.25 * 3600 > old["arrival_s"]
    assert result.swap == [
        f"{WIRE}: swap at hki-kamppi re-timed to {swap['arrival']} (reservation {old['reservation']} kept)"
    ]
    assert result.to_json()["swap"] == result.swap


# --- refit as a property: whatever the route and the charge --------------------------------

POINT = st.tuples(st.floats(0, 4000), st.floats(0, 4000))


def _route(points: list[tuple[float, float]]) -> dict[str, Any]:
    """A round depot -> drops -> depot on the plane (1 m/s), each drop 60 s, from 09:00."""
    m = Planar().matrix(points)
    t0, stops, dist = 9 * 3600.0, [], 0.0
    for i, p in enumerate(points):
        if i:
            t0 += float(m.seconds[i - 1, i])
            dist += float(m.meters[i - 1, i])
        action = "start" if i == 0 else "end" if i == len(points) - 1 else "drop"
        service = 60.0 if action == "drop" else 0.0
        stops.append(Stop(f"o{i}" if action == "drop" else None, action, p, t0, t0, t0 + service, 0.0, ""))
        t0 += service
    doc = {"vehicle": "pm-1", "stops": [s.to_json() for s in stops], "distance_m": dist,
           "duration_s": t0 - 9 * 3600, "energy_kwh": dist / 1000 * 0.09, "soc_end": 0.5}  # fmt: skip
    return doc


@settings(max_examples=60, deadline=None)
@given(
    drops=st.lists(POINT, min_size=1, max_size=6),
    sites=st.lists(st.tuples(POINT, st.booleans(), st.integers(0, 2)), min_size=1, max_size=3),
    usable_kwh=st.floats(0.05, 3.0),
    known=st.booleans(),
    expires_in=st.floats(-3600, 4 * 3600),
)
def test_refit_keeps_the_orders_and_places_at_most_one_swap_it_can_reach(
    drops: list[tuple[float, float]],
    sites: list[tuple[tuple[float, float], bool, int]],
    usable_kwh: float,
    known: bool,
    expires_in: float,
) -> None:
    depot = (2000.0, 2000.0)
    route = _route([depot, *drops, depot])
    stations = [SwapStation(f"s{i}", p, ready, online=on) for i, (p, on, ready) in enumerate(sites)]
    v = PlanVehicle("pm-1", depot, depot, 350.0, 2.2, 15.0, 0.09, soc=0.15 + usable_kwh / 15.0)
    old = {**route["stops"][1], "order": None, "action": "swap", "station": "s0", "reservation": 5,
           "reservation_status": "Accepted", "window": "09:00-10:00"}  # fmt: skip
    held = {5: ("active", 9 * 3600 + expires_in)}
    before = [s["order"] for s in route["stops"][2:] if s["order"]]  # it was planned after the first drop
    fit = swaproute.refit(
        route, old, v, stations, Planar(), held=held, charge_known=known, day_start=0.0, before=before
    )
    need = route["distance_m"] / 1000 * 0.09
    if fit.refused:  # only when a swap is needed (or kept) and no station can take it
        assert fit.route is route and (not known or need > usable_kwh - 1e-9)
        return
    stops = fit.route["stops"]
    assert [s["order"] for s in stops if s["order"]] == [s["order"] for s in route["stops"] if s["order"]]
    swaps = [s for s in stops if s["action"] == "swap"]
    assert len(swaps) <= 1
    assert all(a["arrival_s"] <= b["arrival_s"] + 1e-6 for a, b in itertools.pairwise(stops))
    if not swaps:  # removed: only when the charge is known and enough; its pack released
        assert known and need <= usable_kwh + 1e-6 and "removed: no longer needed" in fit.note
        assert fit.change == {
            "vehicle": "pm-1",
            "release": {"station": "s0", "reservation": 5},
            "reserve": None,
        }
        return
    (swap,) = swaps
    assert swap["station"] in {s.id for s in stations if s.online}
    if not known and before:  # kept without a charge reading: still before the drops it preceded
        assert stops.index(swap) < next(i for i, s in enumerate(stops) if s["order"] == before[0])
    keep = swap["station"] == "s0" and held[5][1] >= swap["arrival_s"] + swap["wait_s"]
    assert (swap["reservation"] == 5) == keep and (fit.change is None) == keep
    if not keep:
        assert fit.change["reserve"]["station"] == swap["station"]
        assert fit.change["release"] == {"station": "s0", "reservation": 5}
