"""Fleet storage on real SQLite and PostgreSQL: migrations, batched writes (COPY on PostgreSQL),
dedup by (vehicle, boot, seq) across store instances, last positions, one vehicle's day."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select

import anycar.logistics.execution_tables  # noqa: F401  # its tables are in db.metadata too
from anycar.fleet import db, partitions, queries, registry
from anycar.fleet.migrate import current, head, upgrade
from anycar.fleet.store import Accepted, DeadLetter, Store
from anycar.wire import Origin, decode, encode, messages
from fleet_support import fleet_engine, vin

KINDS = ["sqlite", "postgres"]
LAT, LON, SPEED = "Vehicle.CurrentLocation.Latitude", "Vehicle.CurrentLocation.Longitude", "Vehicle.Speed"
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def _telemetry(origin: Origin, seq: int, t: float, lat: float, lon: float, speed: float) -> dict:
    doc = messages.telemetry(
        origin, seq, [(LAT, t, lat), (LON, t, lon), (SPEED, t, speed)], campaign="c", version=1, prio=5, ts=t
    )
    return decode(encode(doc))  # exactly what a hub sends


@pytest.mark.parametrize("kind", KINDS)
def test_migrations_make_the_tables_the_code_queries(kind: str, tmp_path: Path) -> None:
    with fleet_engine(kind, tmp_path) as engine:
        assert current(engine) == head() is not None  # the newest revision, whichever it is
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"include_name": partitions.include_name}), db.metadata
            )
        assert diff == []
        assert upgrade(engine) == head()  # running again on start changes nothing


@pytest.mark.parametrize("kind", KINDS)
def test_batches_dedup_and_queries(kind: str, tmp_path: Path) -> None:
    with fleet_engine(kind, tmp_path) as engine:
        creds = registry.add_vehicle(engine, vin(1), "kaiyun_pickman", tenant="acme")
        other = registry.add_vehicle(engine, vin(2), "kaiyun_pickman", tenant="rival")
        store = Store(engine)
        ref = store.vehicle(creds.vehicle)
        assert ref is not None
        origin = Origin(creds.vehicle, "00000000000000aa")
        docs = [_telemetry(origin, i + 1, T0 + 60 * i, 48.1 + i / 1000, 11.5, 20.0 + i) for i in range(50)]
        bad = DeadLetter("anycar/v1/x/telemetry", "schema", "telemetry: values: bad", b"\xa1\x00")
        stored = store.commit([Accepted(ref, d) for d in docs[:30]], [bad])
        assert (stored.messages, stored.duplicates, stored.dead, len(stored.positions)) == (30, 0, 1, 30)
        # a second store (another worker, or this one restarted) sees messages 20..50 again
        again = Store(engine).commit([Accepted(ref, d) for d in docs[19:]])
        assert (again.messages, again.duplicates) == (20, 11)
        tid = registry.tenant_id(engine, "acme")
        day = queries.track(engine, tid, creds.vehicle, *queries.day_bounds("2026-01-01"))
        assert day is not None and [round(p["lat"], 3) for p in day] == [
            round(48.1 + i / 1000, 3) for i in range(50)
        ]
        assert day[7]["speed"] == 27.0 and day[0]["source"] == "hub"
        (last,) = queries.last_positions(engine, tid)
        assert last["vehicle"] == creds.vehicle and last["ts"] == T0 + 60 * 49
        # an old backlog arriving late never moves the last position back
        late = _telemetry(Origin(creds.vehicle, "00000000000000bb"), 1, T0 - 3600, 1.0, 1.0, 0.0)
        store.commit([Accepted(ref, late)])
        assert queries.last_positions(engine, tid)[0]["ts"] == T0 + 60 * 49
        with engine.connect() as conn:
            rows = conn.execute(select(func.count()).select_from(db.signal_values)).scalar()
        assert rows == 3 * 51  # 50 unique batches + the late one, 3 values each, none twice
        # tenant isolation at the query level: rival sees nothing of acme's
        rid = registry.tenant_id(engine, "rival")
        assert queries.track(engine, rid, creds.vehicle, 0, 2e9) is None
        assert [v["id"] for v in queries.vehicles(engine, rid)] == [other.vehicle]
        assert queries.last_positions(engine, rid) == []
        assert queries.dead_letters(engine, rid) == [] and len(queries.dead_letters(engine, None)) == 1
