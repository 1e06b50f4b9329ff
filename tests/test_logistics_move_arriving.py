"""A live move re-pushes the route of the vehicle an order leaves; the stop that vehicle is
arriving at (the ETA loop said ``delivery_arriving`` once and marked it) stays ``arriving``: it
is still its next stop. SQLite, the real planner; the route push as the console's move does it."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select, update

from anycar.fleet import registry
from anycar.logistics import board, execution, service
from anycar.logistics.execution_tables import deliveries
from anycar.logistics.move import move_order
from anycar.logistics.orders import parse_order
from anycar.logistics.settings import service_area
from fleet_support import fleet_engine, vin

DEPOT = {"lat": 60.170, "lon": 24.945}


@pytest.fixture
def engine(tmp_path: Path):
    with fleet_engine("sqlite", tmp_path) as e:
        yield e


def _routes(plan: dict) -> dict[str, list[str]]:
    return {r["vehicle"]: [s["order"] for s in r["stops"] if s.get("order")] for r in plan["plan"]["routes"]}


def _status(engine, ref: str) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(select(deliveries.c.status).where(deliveries.c.order_ref == ref)).scalar_one()
        )


def test_the_stop_a_vehicle_is_arriving_at_stays_arriving_when_a_move_re_pushes_its_route(engine) -> None:
    a, b = (f"PM-{i}-{uuid.uuid4().hex[:4]}" for i in (1, 2))
    for i, wire in enumerate((a, b)):
        registry.add_vehicle(engine, vin(30 + i), "kaiyun_pickman", tenant="acme", wire_id=wire)
    tid = registry.tenant_id(engine, "acme")
    rows = [
        {"id": "X", "lat": 60.1712, "lon": 24.9480, "weight_kg": 2},
        {"id": "Y", "lat": 60.1735, "lon": 24.9470, "weight_kg": 2},
        {"id": "Z", "lat": 60.1660, "lon": 24.9505, "weight_kg": 300},
    ]
    board.add_orders(engine, tid, [parse_order(r, service_area()) for r in rows], {})
    proposal = service.propose(engine, tid, {"depot": DEPOT, "shift": "00:00-23:59", "time_limit_s": 0.5})
    for ref in ("X", "Y"):  # both light orders on a, the heavy one on b
        if ref not in _routes(proposal).get(a, []):
            moved = move_order(engine, tid, int(proposal["id"]), ref, a)
            assert moved.accepted, moved.reason
            proposal = moved.plan  # type: ignore[assignment]
    if "Z" not in _routes(proposal).get(b, []):
        moved = move_order(engine, tid, int(proposal["id"]), "Z", b)
        assert moved.accepted, moved.reason
    accepted = service.accept(engine, tid, int(proposal["id"]))
    assert accepted is not None
    first, second = _routes(accepted)[a]
    with engine.begin() as conn:  # the ETA loop: a is arriving at its first stop
        conn.execute(update(deliveries).where(deliveries.c.order_ref == first).values(status="arriving"))

    moved = move_order(engine, tid, int(accepted["id"]), second, b, now=time.time())
    assert moved.accepted, moved.reason
    pushed = execution.push_routes(engine, tid, moved.plan, changed_only=True)  # type: ignore[arg-type]
    assert sorted(p["vehicle"] for p in pushed) == sorted([a, b])
    assert _status(engine, first) == "arriving"  # still a's next stop
    assert _status(engine, second) == "planned"  # now b's
