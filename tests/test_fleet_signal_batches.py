"""Signal values stored one row per message (``signal_batches``), read one row per value through
the ``signal_values`` view: the migration moves stored values both ways, and the "newest value"
queries stay exact when messages overlap in time."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import select, text
from sqlalchemy.engine import Engine

from anycar.fleet import db, latest, registry
from anycar.fleet.db import make_engine
from anycar.fleet.migrate import _config, current, upgrade
from anycar.fleet.store import Accepted, Store
from anycar.wire import Origin, decode, encode, messages
from fleet_support import fleet_engine, postgres_url, vin

KINDS = ["sqlite", "postgres"]
BEFORE = "position_days"  # the revision before signal_batches


@contextlib.contextmanager
def _engine_at(kind: str, tmp_path: Path, revision: str) -> Iterator[Engine]:
    with contextlib.ExitStack() as stack:
        url = (
            f"sqlite:///{tmp_path / 'f.sqlite3'}" if kind == "sqlite" else stack.enter_context(postgres_url())
        )
        engine = make_engine(url)
        upgrade(engine, revision)
        try:
            yield engine
        finally:
            engine.dispose()


def _downgrade(engine: Engine, revision: str) -> None:
    cfg = _config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)


def _values(engine: Engine) -> list[tuple[object, ...]]:
    sv = db.signal_values.c
    with engine.connect() as conn:
        rows = conn.execute(select(sv.vehicle_id, sv.path, sv.ts, sv.num, sv.value)).all()
    return sorted((tuple(r) for r in rows), key=lambda r: (r[0], r[2], r[1]))


@pytest.mark.parametrize("kind", KINDS)
def test_the_migration_moves_stored_values_and_back(kind: str, tmp_path: Path) -> None:
    t = 1_767_225_600.0
    old = [  # (path, ts, num, value as JSON): two times, every kind of value, a JSON null
        ("Vehicle.Speed", t, 12.5, 12.5),
        ("Vehicle.Cabin.Name", t, None, "tab\there \\N"),
        ("Vehicle.Flag", t, 1.0, True),
        ("Vehicle.List", t, None, [1, "x", None]),
        ("Vehicle.Speed", t + 1, 13.0, 13),
        ("Vehicle.Nothing", t + 1, None, None),
    ]
    with _engine_at(kind, tmp_path, BEFORE) as engine:
        car = registry.add_vehicle(engine, vin(3), "kaiyun_pickman", tenant="mig").vehicle
        with engine.begin() as conn:
            vid = conn.execute(select(db.vehicles.c.id).where(db.vehicles.c.wire_id == car)).scalar_one()
            for path, ts, num, value in old:
                conn.execute(
                    text(
                        "INSERT INTO signal_values (vehicle_id, path, ts, num, value) VALUES (:v, :p, :t, :n, :j)"
                    ),
                    {
                        "v": vid,
                        "p": path,
                        "t": ts,
                        "n": num,
                        "j": None if value is None else json.dumps(value),
                    },
                )
        want = sorted(((vid, p, ts, n, v) for p, ts, n, v in old), key=lambda r: (r[0], r[2], r[1]))
        upgrade(engine, "signal_batches")
        assert current(engine) == "signal_batches"
        assert _values(engine) == want
        with engine.connect() as conn:  # one row per vehicle and time
            assert conn.execute(text("SELECT count(*) FROM signal_batches")).scalar() == 2
        _downgrade(engine, BEFORE)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT vehicle_id, path, ts, num, value FROM signal_values")).all()
        back = sorted(
            (
                (
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    json.loads(r[4]) if kind == "sqlite" and isinstance(r[4], str) else r[4],
                )
                for r in rows
            ),
            key=lambda r: (r[0], r[2], r[1]),
        )
        assert back == want
        upgrade(engine)  # and up again, with the rows the downgrade restored
        assert _values(engine) == want


def _telemetry(origin: Origin, seq: int, samples: list[tuple[str, float, object]]) -> dict:
    doc = messages.telemetry(origin, seq, samples, campaign="c", version=1, prio=5, ts=samples[0][1])
    return decode(encode(doc))


@pytest.mark.parametrize("kind", KINDS)
def test_newest_values_are_exact_when_messages_overlap_in_time(kind: str, tmp_path: Path) -> None:
    """Message A's newest value is later than message B's, but B holds the newer P: the newest
    P is B's (a row's ts bounds its values, not the other way round)."""
    p, q = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current", "Vehicle.Speed"
    t = time.time() - 600
    with fleet_engine(kind, tmp_path) as engine:
        creds = registry.add_vehicle(engine, vin(4), "kaiyun_pickman", tenant="newest")
        store = Store(engine)
        ref = store.vehicle(creds.vehicle)
        assert ref is not None
        origin = Origin(creds.vehicle, "00000000000000dd")
        a = _telemetry(origin, 1, [(p, t + 50, 51.0), (q, t + 100, 10.0)])
        b = _telemetry(origin, 2, [(p, t + 80, 58.0), (q, t + 90, 9.0)])
        store.commit([Accepted(ref, a), Accepted(ref, b)])
        assert latest.last_values(engine, ref.tenant_id, p) == [{"vehicle": creds.vehicle, "value": 58.0}]
        assert latest.last_values(engine, ref.tenant_id, q) == [{"vehicle": creds.vehicle, "value": 10.0}]
        got = latest.vehicle_signals(engine, ref.tenant_id, creds.vehicle)
        assert got is not None
        assert [(s["path"], s["value"]) for s in got] == sorted([(p, 58.0), (q, 10.0)])
        with engine.connect() as conn:
            newest_p = conn.execute(select(latest.newest(ref.id, p, db.signal_values.c.ts))).scalar()
        assert newest_p == pytest.approx(t + 80)


@pytest.mark.parametrize("kind", KINDS)
def test_paths_that_need_quoting_in_an_array_round_trip(kind: str, tmp_path: Path) -> None:
    """COPY text of a PostgreSQL array: a path that is NULL or has a comma, brace, quote, space or
    backslash in it is quoted; each comes back as it went in. (The wire admits only
    ``[A-Za-z0-9_.]`` paths, of which only ``NULL`` needs it; the store does not rely on that.)"""
    paths = ["NULL", "null", "a,b", "{x}", 'say "hi"', "two words", "back\\slash", "Vehicle.Speed"]
    t = 1_767_225_600.0
    with fleet_engine(kind, tmp_path) as engine:
        creds = registry.add_vehicle(engine, vin(5), "kaiyun_pickman", tenant="quote")
        store = Store(engine)
        ref = store.vehicle(creds.vehicle)
        assert ref is not None
        origin = Origin(creds.vehicle, "00000000000000ee")
        doc = _telemetry(origin, 1, [(f"Vehicle.P{i}", t + i, f"v{i}") for i, p in enumerate(paths)])
        doc["paths"] = [paths[int(name.rsplit("P", 1)[1])] for name in doc["paths"]]
        assert store.commit([Accepted(ref, doc)]).messages == 1
        sv = db.signal_values.c
        with engine.connect() as conn:
            rows = conn.execute(select(sv.path, sv.value).order_by(sv.ts)).all()
        assert [(r.path, r.value) for r in rows] == [(p, f"v{i}") for i, p in enumerate(paths)]
