"""SQLite ingest at the goal's rate (sqlite-rate, session 7): the signal_batches texts built
without json.dumps are json.dumps's bytes; the vehicles' last state in one UPDATE a vehicle keeps
every rule (last_seen always, online when said, the last position only forward); ``received`` is a
WITHOUT ROWID table after the migration (and a rowid table again after the downgrade, its rows
kept); two ingest workers on one SQLite file through a real Mosquitto store everything once."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, text

from anycar.bench import fleet
from anycar.cli.bench import bench_fleet
from anycar.cli.main import build_parser
from anycar.errors import ConfigError
from anycar.fleet import registry
from anycar.fleet.migrate import _config, upgrade
from anycar.fleet.store import Accepted, Store, VehicleRef
from anycar.wire import Origin, decode, encode, messages
from fleet_support import fleet_engine, vin

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
LAT, LON, SPEED = "Vehicle.CurrentLocation.Latitude", "Vehicle.CurrentLocation.Longitude", "Vehicle.Speed"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"


def _doc(origin: Origin, seq: int, values: list[tuple[str, float, object]], ts: float) -> dict:
    doc = messages.telemetry(origin, seq, values, campaign="c", version=1, prio=5, ts=ts)
    return decode(encode(doc))  # exactly what a hub sends


@contextlib.contextmanager
def _one_vehicle(tmp_path: Path) -> Iterator[tuple[Engine, str, Store, VehicleRef, Origin]]:
    """A SQLite fleet with one vehicle: (engine, its wire id, a store, its ref, its origin)."""
    with fleet_engine("sqlite", tmp_path) as engine:
        creds = registry.add_vehicle(engine, vin(1), "kaiyun_pickman", tenant="acme")
        store = Store(engine)
        ref = store.vehicle(creds.vehicle)
        assert ref is not None
        yield engine, creds.vehicle, store, ref, Origin(creds.vehicle, "00000000000000aa")


def test_signal_batch_texts_are_what_json_dumps_wrote(tmp_path: Path) -> None:
    with _one_vehicle(tmp_path) as (engine, _wire_id, store, ref, o):
        docs = [
            # all floats, a negative zero, repeated numbers, values at different times
            _doc(o, 1, [(LAT, T0, 48.1), (LON, T0 + 0.25, -0.0), (SPEED, T0 + 0.5, 48.1)], T0 + 0.5),
            _doc(o, 2, [(LAT, T0 + 1, 1e-300), (LON, T0 + 1, 11.5), (SOC, T0 + 1, 55.123456789)], T0 + 1),
            # mixed kinds: an int, a bool, a string, a null
            _doc(
                o,
                3,
                [(SOC, T0 + 2, 7), ("Vehicle.IsMoving", T0 + 2, True), ("X.Text", T0 + 2, 'a"b')],
                T0 + 2,
            ),
            _doc(o, 4, [(LAT, T0 + 3, 48.2), ("X.Nothing", T0 + 3, None)], T0 + 3),
        ]
        store.commit([Accepted(ref, d) for d in docs])
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT ts, paths, tss, nums, vals FROM signal_batches ORDER BY ts")
            ).all()
    assert len(rows) == len(docs)
    for row, doc in zip(rows, docs, strict=True):
        paths = [doc["paths"][i] for i, _, _ in doc["values"]]
        tss = [doc["t0"] + ms / 1000 for _, ms, _ in doc["values"]]
        vals = [v for _, _, v in doc["values"]]
        nums = [None if isinstance(v, str) or v is None else float(v) for v in vals]
        assert row.ts == max(tss)
        assert row.paths == json.dumps(paths) and row.tss == json.dumps(tss)
        assert row.nums == json.dumps(nums) and row.vals == json.dumps(vals)


def test_one_vehicles_update_keeps_last_seen_online_and_the_forward_rule(tmp_path: Path) -> None:
    with _one_vehicle(tmp_path) as (engine, wire_id, store, ref, o):

        def row() -> tuple[object, ...]:
            with engine.connect() as conn:
                return tuple(
                    conn.execute(
                        text(
                            "SELECT online, last_seen, last_ts, last_lat, last_lon, last_speed, last_heading "
                            "FROM vehicles WHERE wire_id = :w"
                        ),
                        {"w": wire_id},
                    ).one()
                )

        store.commit([Accepted(ref, _doc(o, 1, [(LAT, T0, 48.1), (LON, T0, 11.5), (SPEED, T0, 30.0)], T0))])
        online, seen, *last = row()
        assert online is None and seen is not None and last == [T0, 48.1, 11.5, 30.0, None]
        state = decode(encode(messages.state(o, "online", ts=T0 + 5)))
        store.commit([Accepted(ref, state)])  # no position: last_seen and online only
        online2, seen2, *last2 = row()
        assert online2 == 1 and seen2 >= seen and last2 == last
        late = _doc(o, 2, [(LAT, T0 - 60, 1.0), (LON, T0 - 60, 2.0)], T0 - 60)
        store.commit([Accepted(ref, late)])  # an old fix never moves the last position back
        assert row()[0] == 1 and list(row()[2:]) == last
        newer = _doc(o, 3, [(LAT, T0 + 60, 48.2), (LON, T0 + 60, 11.6)], T0 + 60)
        store.commit([Accepted(ref, newer)])  # speed and heading: the last known (30.0 and none)
        assert list(row()[2:]) == [T0 + 60, 48.2, 11.6, 30.0, None]


def _without_rowid(path: Path) -> bool:
    with sqlite3.connect(path) as conn:
        sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'received'").fetchone()[0]
    return "WITHOUT ROWID" in sql.upper()


def test_received_is_without_rowid_and_the_migration_keeps_its_rows_both_ways(tmp_path: Path) -> None:
    path = tmp_path / "fleet.sqlite3"
    with fleet_engine("sqlite", tmp_path, migrate=lambda e: upgrade(e, "late_alerts")) as engine:
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO received (vehicle, boot, seq) VALUES ('v1', 'b', 1), ('v1', 'b', 2)")
            )
        assert not _without_rowid(path)
        upgrade(engine, "sqliterate_received")  # its revision (sqlite-marks' folds the rows into marks)
        assert _without_rowid(path)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT vehicle, boot, seq FROM received ORDER BY seq")).all() == [
                ("v1", "b", 1),
                ("v1", "b", 2),
            ]
        cfg = _config()
        with engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.downgrade(cfg, "late_alerts")
        assert not _without_rowid(path)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM received")).scalar() == 2


def test_two_ingest_workers_on_one_sqlite_file_store_everything_once() -> None:
    run = fleet.ingest("sqlite", workers=2, vehicles=100, rate=800.0, seconds=3.0)
    assert run["published"] >= 2000 and run["stored"] == run["published"]
    assert run["zero_loss"] is True and run["duplicates"] == 0 and run["db_errors"] == 0
    assert len(run["commit_time"]) == 2 and all(c["cpu_s"] > 0 for c in run["commit_time"])  # both wrote


def test_the_bench_takes_sqlite_workers_and_the_latency_part_alone() -> None:
    args = build_parser().parse_args(
        ["bench", "fleet", "--parts", "sqlite-latency", "--sqlite-workers", "2", "--json"]
    )
    assert args.sqlite_workers == 2 and args.parts == "sqlite-latency"
    bad = build_parser().parse_args(["bench", "fleet", "--parts", "sqlite", "--sqlite-workers", "9"])
    with pytest.raises(ConfigError, match="--sqlite-workers 9: 1 to 8"):
        bench_fleet(bad)
    sized = build_parser().parse_args(["bench", "fleet", "--parts", "sqlite", "--batch", "0"])
    with pytest.raises(ConfigError, match="--batch 0: 1 to 20000"):
        bench_fleet(sized)
