"""Dragging an order in the plan in force is checked from where the vehicles are now (issue 15):
the accepted plan's routes are timed from the clock and each vehicle's last position (sent
through the fleet's store as a hub's telemetry) with its goods on board, as a re-dispatch is;
a proposal is still timed as planned, from the shift start at the depot. SQLite, the real
planner and matrix provider."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from anycar.fleet import registry
from anycar.fleet.store import LAT, LON, Accepted, Store
from anycar.logistics import board, service
from anycar.logistics.move import move_order
from anycar.logistics.orders import parse_order
from anycar.logistics.settings import service_area
from anycar.wire.messages import Origin, new_boot_id, telemetry
from fleet_support import fleet_engine, vin

DEPOT = {"lat": 60.170, "lon": 24.945}
NOON = 1_767_268_800.0  # 2026-01-01T12:00:00Z: the planner's clock reads 12:00
AWAY = (60.1755, 24.9330)  # about 900 m from the depot: out on its round


@pytest.fixture
def engine(tmp_path: Path):
    with fleet_engine("sqlite", tmp_path) as e:
        yield e


def _position(store: Store, wire: str, lat: float, lon: float) -> None:
    doc = telemetry(
        Origin(wire, new_boot_id()),
        1,
        [(LAT, NOON, lat), (LON, NOON, lon)],
        campaign="c",
        version=1,
        prio=5,
        ts=NOON,
    )
    store.commit([Accepted(store.vehicle(wire), doc)])


def _routes(plan: dict) -> dict[str, list[str]]:
    return {r["vehicle"]: [s["order"] for s in r["stops"] if s["order"]] for r in plan["plan"]["routes"]}


def test_a_move_in_the_plan_in_force_is_timed_from_now_and_the_vehicles_position(engine) -> None:
    ids = [f"PM-{i}-{uuid.uuid4().hex[:4]}" for i in (1, 2)]
    for i, wire in enumerate(ids):
        registry.add_vehicle(engine, vin(i), "kaiyun_pickman", tenant="acme", wire_id=wire)
    tid = registry.tenant_id(engine, "acme")
    area = service_area()
    rows = [
        {"id": "H1", "lat": 60.172, "lon": 24.948, "weight_kg": 200},
        {"id": "H2", "lat": 60.168, "lon": 24.938, "weight_kg": 200},  # 400 kg: two vehicles
        {"id": "EARLY", "lat": 60.171, "lon": 24.950, "weight_kg": 10, "windows": "08:00-10:00"},
        {"id": "L", "lat": 60.166, "lon": 24.949, "weight_kg": 10, "windows": "08:00-18:00"},
    ]
    board.add_orders(engine, tid, [parse_order(r, area) for r in rows], {})
    options = {"depot": DEPOT, "shift": "08:00-18:00", "time_limit_s": 0.5}
    live = service.propose(engine, tid, options)
    assert service.accept(engine, tid, int(live["id"])) is not None
    routes = _routes(live)
    assert len(routes) == 2, routes
    early_on = next(v for v, refs in routes.items() if "EARLY" in refs)
    away = next(v for v in routes if v != early_on)
    _position(Store(engine), away, *AWAY)  # out on its round since the morning; the other at the depot

    # EARLY (08:00-10:00) would fit on the other route as planned from 08:00; at 12:00 it cannot.
    late = move_order(engine, tid, int(live["id"]), "EARLY", away, now=NOON)
    assert not late.accepted and late.reason.startswith(
        f"{away} cannot take EARLY: it cannot reach it within its time windows (earliest arrival 12:"
    ), late.reason
    proposal = service.propose(engine, tid, options)  # the same day as a proposal: timed as planned
    there = next(v for v, refs in _routes(proposal).items() if "EARLY" not in refs)
    assert move_order(engine, tid, int(proposal["id"]), "EARLY", there, now=NOON).accepted

    # What the away vehicle carries is on board: it cannot be dragged to another vehicle.
    carried = next(r for r in routes[away] if r != "EARLY")
    refused = move_order(engine, tid, int(live["id"]), carried, early_on, now=NOON)
    assert not refused.accepted and refused.reason.startswith(f"{carried} is on board {away}"), refused.reason

    # An order from the vehicle still at the depot onto the one out there: timed from its
    # position at 12:00 (the depot load first), not from the depot at 08:00.
    movable = next(r for r in routes[early_on] if r in ("L", "H1", "H2") and r != "EARLY")
    moved = move_order(
        engine, tid, int(live["id"]), "L" if "L" in routes[early_on] else movable, away, now=NOON
    )
    assert moved.accepted, moved.reason
    (route,) = [r for r in moved.plan["plan"]["routes"] if r["vehicle"] == away]
    start = route["stops"][0]
    assert (start["lat"], start["lon"]) == AWAY and start["arrival_s"] == 12 * 3600
    assert all(s["arrival_s"] >= 12 * 3600 for s in route["stops"])
