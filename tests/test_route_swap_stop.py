"""demo-route: a planned battery swap is a stop of the route the fleet pushes. The plan's swap
stop (``swapstops.plan_swap`` on the road network) goes into the proposal, is pushed in its place
with the deliveries as ``kind: swap`` (station, reservation, window), is kept by a re-dispatch
until its reservation ends; the wire takes old routes and new ones; the hub shows it as the next
stop and closes it when the pack's serial changes, without a proof of delivery. SQLite, the real
planner, the shipped Helsinki network."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import insert, select

from anycar.broker import SignalBroker
from anycar.broker.datapoint import Datapoint
from anycar.errors import AnycarError
from anycar.fleet import db, registry
from anycar.fleet.commands import CommandError, check_action
from anycar.logistics import board, execution, service
from anycar.logistics.orders import parse_order
from anycar.logistics.problem import PlanVehicle
from anycar.logistics.settings import service_area, vehicle_type
from anycar.logistics.swaproute import add_to_plan, route_from_plan
from anycar.logistics.swapstops import Reservation, RoadProvider, SwapStation, plan_swap
from anycar.swap import registry as swap_registry
from anycar.swap import tables as t
from anycar.uplink.delivery import DeliveryKeeper
from anycar.wire.routestops import stop_key
from fleet_support import vin
from swap_support import ROUND, swap_engine

DEPOT = {"lat": 60.169, "lon": 24.9372}
ORDERS = ROUND  # six of the demo's addresses (fleetdemo/data/orders.csv)
KAMPPI = (60.168, 24.932)
DROP = {"order": "A", "kind": "drop", "lat": 60.17, "lon": 24.94, "weight_kg": 1.0, "pin_required": False}
SWAP = {"kind": "swap", "station": "hki-kamppi", "reservation": 41, "lat": 60.168, "lon": 24.932}


@pytest.fixture
def planned(tmp_path):
    """A proposal of one PICKMAN's day, and a swap stop planned into it (its charge is low)."""
    with swap_engine("sqlite", tmp_path) as engine:
        wire = "PM-SWAP"
        registry.add_vehicle(engine, vin(1), "kaiyun_pickman", tenant="acme", wire_id=wire)
        tid = registry.tenant_id(engine, "acme")
        rows = [{"id": r, "lat": a, "lon": b, "weight_kg": 5, "windows": "09:00-13:00"} for r, a, b in ORDERS]
        board.add_orders(engine, tid, [parse_order(r, service_area()) for r in rows], {})
        proposal = service.propose(engine, tid, {"depot": DEPOT, "shift": "09:00-17:00", "time_limit_s": 0.5})
        (route_json,) = proposal["plan"]["routes"]
        route = route_from_plan(route_json)
        kind = vehicle_type("kaiyun_pickman")
        depot = (DEPOT["lat"], DEPOT["lon"])
        low = 0.15 + 0.5 * route.energy_kwh / kind.battery_kwh  # half the round above the reserve
        vehicle = PlanVehicle(
            wire, depot, depot, kind.payload_kg, kind.cargo_m3, kind.battery_kwh, kind.kwh_per_km, soc=low
        )
        decision = plan_swap(
            route, vehicle, [SwapStation("hki-kamppi", KAMPPI, 3)], RoadProvider(None, "delivery")
        )
        assert decision.swap is not None, decision.reason
        expires = decision.swap.arrival_s + 1800
        decision.swap.reservation = Reservation("hki-kamppi", 41, "Accepted", expires)
        yield engine, tid, wire, int(proposal["id"]), decision


def test_the_planned_swap_stop_is_pushed_in_its_place_with_the_deliveries(planned) -> None:
    engine, tid, wire, plan_id, decision = planned
    body = add_to_plan(engine, tid, plan_id, decision)
    stored = board.plan(engine, tid, plan_id)["plan"]["routes"][0]["stops"]
    assert stored == body["routes"][0]["stops"]
    (swap,) = [s for s in stored if s["action"] == "swap"]
    assert swap["station"] == "hki-kamppi" and swap["reservation"] == 41 and swap["order"] is None
    start, end = swap["window"].split("-")
    assert start == swap["arrival"][:5] and end > start  # held from the arrival until it expires
    # the console's plan view (GET /api/logistics/plan reads the same body) has it in the route
    accepted = service.accept(engine, tid, plan_id)
    (push,) = accepted["pushed"]
    orders = [s["order"] for s in stored if s.get("order")]
    assert push["stops"] == len(orders) + 1
    pushed = execution.route_of(engine, tid, wire)["stops"]
    assert [s.get("order") or stop_key(s) for s in pushed] == [
        s["order"] or "swap:hki-kamppi:41" for s in stored if s["action"] in ("drop", "swap")
    ]
    at = decision.swap.after  # the route's index it follows (0: the depot's start)
    assert pushed[at] == {
        "kind": "swap",
        "station": "hki-kamppi",
        "reservation": 41,
        "lat": swap["lat"],
        "lon": swap["lon"],
        "window": swap["window"],
        "eta": swap["arrival"],
    }
    # an order's execution rows only: the swap has no delivery, no PIN, no ETA webhook
    assert sorted(r["order"] for r in execution.delivery_rows(engine, tid)) == sorted(orders)
    # accepted plans are never rewritten
    with pytest.raises(ValueError, match="no such proposal"):
        add_to_plan(engine, tid, plan_id, decision)


def test_a_redispatch_keeps_the_swap_until_its_reservation_ends(planned) -> None:
    engine, tid, wire, plan_id, decision = planned
    add_to_plan(engine, tid, plan_id, decision)
    service.accept(engine, tid, plan_id)
    first = next(
        s["order"] for s in board.plan(engine, tid, plan_id)["plan"]["routes"][0]["stops"] if s["order"]
    )
    board.set_status(engine, tid, first, "delivered")
    again = service.propose_redispatch(
        engine, tid, {"depot": DEPOT, "shift": "09:00-17:00", "now": "09:05", "time_limit_s": 0.5}
    )
    (route,) = again["plan"]["routes"]
    swaps = [s for s in route["stops"] if s["action"] == "swap"]
    assert [(s["station"], s["reservation"]) for s in swaps] == [("hki-kamppi", 41)], route["stops"]
    # no charge reading from the vehicle: the swap is kept, planned again on the new route from
    # now (swaproute.follow), its pack still held until the reservation expires
    (note,) = [n for n in again["plan"]["notes"] if "swap at hki-kamppi" in n]
    assert note == f"{wire}: swap at hki-kamppi re-timed to {swaps[0]['arrival']} (reservation 41 kept)"
    assert swaps[0]["arrival_s"] > 9 * 3600 + 5 * 60 and "swap_changes" not in again["plan"]
    assert route["stops"][0]["action"] == "start" and route["stops"][-1]["action"] == "end"
    # the swap was made: the reservation is used, and the next re-plan does not send it there again
    swap_registry.add_station(engine, "hki-kamppi", tenant="acme", layout="pickman-8")
    with engine.begin() as conn:
        vehicle_id = conn.execute(select(db.vehicles.c.id).where(db.vehicles.c.wire_id == wire)).scalar()
        conn.execute(
            insert(t.reservations).values(
                id=41, station_id="hki-kamppi", vehicle_id=vehicle_id, token="tok", expires=time.time() + 600,
                status="used", created=time.time(),
            )
        )  # fmt: skip
    again = service.propose_redispatch(
        engine, tid, {"depot": DEPOT, "shift": "09:00-17:00", "now": "09:05", "time_limit_s": 0.5}
    )
    assert not any(s["action"] == "swap" for r in again["plan"]["routes"] for s in r["stops"])
    assert not any("swap at" in n for n in again["plan"]["notes"])


def test_the_wire_takes_old_routes_and_routes_with_a_swap_stop() -> None:
    check_action("PM-1", "route", {"plan": 1, "version": 1, "stops": [DROP]})  # as before demo-route
    check_action("PM-1", "route", {"plan": 1, "version": 2, "stops": [DROP, SWAP, {**DROP, "order": "B"}]})
    check_action("PM-1", "route", {"plan": 1, "version": 3, "stops": [{**SWAP, "window": "10:05-10:40"}]})
    bad: list[tuple[dict[str, Any], str]] = [
        ({k: v for k, v in SWAP.items() if k != "station"}, "station"),
        ({**SWAP, "order": "A"}, "order"),
        ({**SWAP, "weight_kg": 1.0}, "weight_kg"),
        ({k: v for k, v in DROP.items() if k != "order"}, "order"),
        ({**DROP, "station": "hki-kamppi"}, "station"),
        ({**SWAP, "kind": "charge"}, "kind"),
        ({**SWAP, "reservation": -1}, "reservation"),
    ]
    for stop, field in bad:
        with pytest.raises(CommandError, match=field):
            check_action("PM-1", "route", {"plan": 1, "version": 1, "stops": [DROP, stop]})


async def test_the_hub_shows_the_swap_stop_and_closes_it_when_the_pack_changes(tmp_path) -> None:
    spool = sqlite3.connect(tmp_path / "spool.sqlite3", isolation_level=None)
    sent: list[dict[str, Any]] = []
    keeper = DeliveryKeeper(SignalBroker(), spool, Ed25519PrivateKey.generate(), lambda r, k: sent.append(r))
    swap = {**SWAP, "window": "10:05-10:40", "eta": "10:05"}
    route = {"plan": 1, "version": 1, "stops": [DROP, swap, {**DROP, "order": "B"}]}
    assert (await keeper.receive("c-1", route)).status == "accepted"
    keeper.apply([Datapoint("Vehicle.Accessories.Cargo1.IsOpen", True, 1.0)])
    keeper.apply([Datapoint("Vehicle.Accessories.Cargo1.IsOpen", False, 2.0)])
    assert keeper.done == {"A": "delivered"} and stop_key(keeper.next_stop()) == "swap:hki-kamppi:41"
    await keeper._show(keeper.next_stop())
    assert keeper.shown == "Next: swap at hki-kamppi 10:05 [10:05-10:40] R41"
    other = DeliveryKeeper(SignalBroker(), sqlite3.connect(":memory:"), Ed25519PrivateKey.generate(), print)
    await other.receive("c-9", {"plan": 1, "version": 1, "stops": [DROP]})
    with pytest.raises(AnycarError, match="is not a swap stop"):
        other.complete("swapped")  # the driver's "swapped" at a delivery's stop
    pack = "Vehicle.Powertrain.TractionBattery.Id"
    keeper.apply([Datapoint(pack, "KYB00000101", 3.0)])  # the pack in the bay: the swap is not done
    keeper.apply([Datapoint("Vehicle.Accessories.Cargo1.IsOpen", True, 4.0)])  # no evidence here
    keeper.apply([Datapoint("Vehicle.Accessories.Cargo1.IsOpen", False, 5.0)])
    assert "swap:hki-kamppi:41" not in keeper.done
    keeper.apply([Datapoint(pack, "KYB00000007", 6.0)])  # the robot fitted another pack
    assert keeper.done["swap:hki-kamppi:41"] == "swapped"
    assert [r["order"] for r in sent] == ["A"]  # no proof of delivery for a swap
    assert keeper.next_stop()["order"] == "B"
    # a re-plan keeps the swap done; a restarted hub still knows it
    await keeper.receive("c-2", {**route, "plan": 2, "version": 2})
    assert keeper.done == {"A": "delivered", "swap:hki-kamppi:41": "swapped"}
    again = DeliveryKeeper(SignalBroker(), spool, Ed25519PrivateKey.generate(), lambda r, k: None)
    assert stop_key(again.next_stop()) == "B"
