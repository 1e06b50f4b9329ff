"""A vehicle's route versions are unique (route-push, session 9). Two pushes of a plan's routes at
the same moment (a console move and a route keeper pass) on the real PostgreSQL: each takes its
own next version, none is written twice. The migration renumbers the duplicates an older database
may hold, and the unique index refuses a new one, on SQLite as on PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError

from anycar.fleet import registry
from anycar.fleet.db import make_engine
from anycar.fleet.migrate import current, head, upgrade
from anycar.logistics import board, execution
from anycar.logistics.execution_tables import route_pushes
from anycar.logistics.orders import parse_order
from anycar.logistics.settings import service_area
from fleet_support import fleet_engine, vin

ORDER = {"id": "V-1", "lat": 60.1712, "lon": 24.9480, "weight_kg": 2.0}


def _plan(wire: str) -> dict:
    stop = {"order": "V-1", "action": "drop", "lat": ORDER["lat"], "lon": ORDER["lon"], "arrival": "09:00"}
    return {"id": 1, "plan": {"routes": [{"vehicle": wire, "stops": [stop]}]}}


def _versions(engine, vehicle_id: int) -> list[int]:
    with engine.connect() as conn:
        q = select(route_pushes.c.version).where(route_pushes.c.vehicle_id == vehicle_id)
        return sorted(conn.execute(q).scalars())


@pytest.mark.parametrize("kind", ["postgres", "sqlite"])
def test_two_pushes_at_once_take_two_versions(kind: str, tmp_path: Path) -> None:
    with fleet_engine(kind, tmp_path) as engine:
        wire = f"RV-{uuid.uuid4().hex[:6]}"
        registry.add_vehicle(engine, vin(60), "kaiyun_pickman", tenant="acme", wire_id=wire)
        tid = registry.tenant_id(engine, "acme")
        board.add_orders(engine, tid, [parse_order(ORDER, service_area())], {})
        with engine.connect() as conn:
            vid = conn.execute(text("SELECT id FROM vehicles WHERE wire_id = :w"), {"w": wire}).scalar_one()
        rounds, errors = 6, []

        def push(gate: threading.Barrier) -> None:
            gate.wait()
            try:
                execution.push_routes(engine, tid, _plan(wire))
            except Exception as exc:  # SQLite: the second writer may find the database busy
                errors.append(exc)

        for _ in range(rounds):
            gate = threading.Barrier(2)
            threads = [threading.Thread(target=push, args=(gate,)) for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
        versions = _versions(engine, vid)
        assert versions == list(range(1, len(versions) + 1)), versions  # each version once
        if kind == "postgres":  # the lock makes the second wait, never fail
            assert errors == [] and len(versions) == 2 * rounds


def test_the_migration_renumbers_duplicates_and_the_index_refuses_new_ones(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'fleet.sqlite3'}")
    upgrade(engine, "sqlitemarks_received_marks")  # the revision before the unique index
    wire = f"RV-{uuid.uuid4().hex[:6]}"
    registry.add_vehicle(engine, vin(61), "kaiyun_pickman", tenant="acme", wire_id=wire)
    other = f"RV-{uuid.uuid4().hex[:6]}"
    registry.add_vehicle(engine, vin(62), "kaiyun_pickman", tenant="acme", wire_id=other)
    tid = registry.tenant_id(engine, "acme")
    with engine.connect() as conn:
        vid, oid = (
            conn.execute(text("SELECT id FROM vehicles WHERE wire_id = :w"), {"w": w}).scalar_one()
            for w in (wire, other)
        )
    row = {"tenant_id": tid, "plan_id": 1, "command_id": "c", "created": 1.0, "route": {}}
    with engine.begin() as conn:  # two pushes wrote version 2 (the race); the other vehicle has none
        conn.execute(
            insert(route_pushes),
            [{**row, "vehicle_id": vid, "version": v} for v in (1, 2, 2, 3)]
            + [{**row, "vehicle_id": oid, "version": v} for v in (1, 2)],
        )
    upgrade(engine)
    assert current(engine) == head()
    assert _versions(engine, vid) == [1, 2, 3, 4]  # renumbered in the order written
    assert _versions(engine, oid) == [1, 2]  # no duplicate: unchanged
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(route_pushes).values(**row, vehicle_id=oid, version=2))
