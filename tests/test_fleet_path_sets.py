"""pg-tail: on PostgreSQL a message's list of paths is stored once (``signal_path_sets``) and its
``signal_batches`` row names it; the ``signal_values`` view reads old rows (their own ``paths``)
and new ones alike, the migration goes down and up with both kinds of rows, two workers share a
set, and a path PostgreSQL cannot hold is refused for its data as before."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select, text

from anycar.fleet import db, registry
from anycar.fleet.maintenance import Maintenance
from anycar.fleet.migrate import current, head, upgrade
from anycar.fleet.store import Accepted, Store, VehicleRef, refused_for_its_data
from fleet_support import fleet_engine, vin
from test_fleet_signal_batches import _downgrade, _engine_at, _values

BEFORE = "sqliterate_received"  # the revision before pgtail_path_sets
PATHS = ["Vehicle.Speed", "Vehicle.CurrentLocation.Latitude", 'a "quoted", {braced} path']


def _doc(wire_id: str, seq: int, t: float, paths: list[str]) -> dict[str, object]:
    return {
        "kind": "telemetry",
        "vehicle": wire_id,
        "boot": "00000000000000ab",
        "seq": seq,
        "ts": t,
        "t0": t,
        "paths": paths,
        "values": [[i, 10 * i, float(seq) + i / 8] for i in range(len(paths))] + [[0, 50, "text"]],
    }


def _car(engine: object, store: Store) -> tuple[str, VehicleRef]:
    wire = f"PS-{uuid.uuid4().hex[:10]}"
    registry.add_vehicle(engine, vin(11), "kaiyun_pickman", wire_id=wire)  # type: ignore[arg-type]
    ref = store.vehicle(wire)
    assert ref is not None
    return wire, ref


def _want(ref: VehicleRef, seq: int, t: float, paths: list[str]) -> list[tuple[object, ...]]:
    doc = _doc(ref.wire_id, seq, t, paths)
    rows = []
    for i, ms, v in doc["values"]:  # type: ignore[attr-defined]
        num = v if isinstance(v, float) else None
        rows.append((ref.id, paths[i], t + ms / 1000, num, v))
    return rows


def test_rows_name_their_set_and_read_back_through_the_view(tmp_path: Path) -> None:
    with fleet_engine("postgres", tmp_path) as engine:
        Maintenance(engine).run_once()
        one, two = Store(engine), Store(engine)  # two workers, each with its own cache
        wire, ref = _car(engine, one)
        t = time.time() - 600
        want = []
        for seq, store in ((1, one), (2, two), (3, one)):
            assert store.commit([Accepted(ref, _doc(wire, seq, t + seq, PATHS))]).messages == 1
            want += _want(ref, seq, t + seq, PATHS)
        other = ["Vehicle.Speed"]
        assert one.commit([Accepted(ref, _doc(wire, 4, t + 4, other))]).messages == 1
        want += _want(ref, 4, t + 4, other)
        assert _values(engine) == sorted(want, key=lambda r: (r[0], r[2], r[1]))
        with engine.connect() as conn:
            sets = conn.execute(select(db.signal_path_sets.c.paths)).scalars().all()
            rows = conn.execute(text("SELECT paths, path_set FROM signal_batches")).all()
        # a set is the path of each value in order (the last value is the first path's again)
        assert sorted(sets) == sorted([[*PATHS, PATHS[0]], [*other, other[0]]])  # shared by both workers
        assert all(paths == [] and path_set is not None for paths, path_set in rows)


@pytest.mark.parametrize(("path", "state"), [("p" * 257, "22001"), ("a\x00b", None)])
def test_a_path_postgresql_cannot_hold_is_refused_for_its_data(
    path: str, state: str | None, tmp_path: Path
) -> None:
    with fleet_engine("postgres", tmp_path) as engine:
        Maintenance(engine).run_once()
        store = Store(engine)
        wire, ref = _car(engine, store)
        with pytest.raises(Exception) as caught:
            store.commit([Accepted(ref, _doc(wire, 1, time.time() - 60, [path]))])
        assert refused_for_its_data(caught.value), caught.value  # a dead letter, the rest stored
        if state is not None:
            assert getattr(caught.value, "sqlstate", None) == state
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM signal_batches")).scalar() == 0
            assert conn.execute(text("SELECT count(*) FROM received")).scalar() == 0


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_the_migration_goes_down_and_up_with_both_kinds_of_rows(kind: str, tmp_path: Path) -> None:
    t = time.time() - 3600
    with _engine_at(kind, tmp_path, BEFORE) as engine:
        if kind == "postgres":  # today's partitions (SQLite has none; its prune needs the head's marks)
            Maintenance(engine).run_once()
        store = Store(engine)
        wire, ref = _car(engine, store)
        with engine.begin() as conn:  # a row as the revision before wrote it (this Store writes path_set)
            conn.execute(
                db.signal_batches.insert().values(
                    vehicle_id=ref.id,
                    ts=t + 0.05,
                    paths=PATHS[:2],
                    tss=[t, t + 0.05],
                    nums=[1.5, None],
                    vals=["1.5", '"x"'] if kind == "postgres" else [1.5, "x"],
                )
            )
        before = _values(engine)
        assert [r[1:] for r in before] == [(PATHS[0], t, 1.5, 1.5), (PATHS[1], t + 0.05, None, "x")]
        upgrade(engine)
        assert current(engine) == head()  # the newest revision (sqlite-marks came after)
        assert _values(engine) == before  # the old row through the new view
        new = Store(engine)
        assert new.commit([Accepted(ref, _doc(wire, 2, t + 1, PATHS))]).messages == 1
        both = _values(engine)
        assert both == sorted(before + _want(ref, 2, t + 1, PATHS), key=lambda r: (r[0], r[2], r[1]))
        _downgrade(engine, BEFORE)
        assert _values(engine) == both  # the new row's paths back in the row
        upgrade(engine)
        assert _values(engine) == both
