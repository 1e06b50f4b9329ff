"""sqlite-marks: SQLite's dedup as one mark a (vehicle, boot) plus ``received`` rows only above a
gap is exact: against a reference set of the keys seen, over batches with out-of-order seqs,
replays, duplicates inside a batch, new boots and the prune's given-up gaps; the invariants of
the marks hold after every batch; the migration folds ``received``/``received_floor`` into the
marks and back without a key seen becoming unseen (SQLite), and goes down and up on
PostgreSQL, where the dedup is still ``received``."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from anycar.fleet import db, retention
from anycar.fleet.migrate import current, head, upgrade
from anycar.fleet.store import _first_time_sqlite, _raw
from fleet_support import fleet_engine
from test_fleet_signal_batches import _downgrade, _engine_at

BEFORE = "pgtail_path_sets"  # the revision before sqlitemarks_received_marks
BOOTS = ("0000000000000001", "0000000000000002")

# a step: a batch of (vehicle 0-1, boot 0-1, seq 1-12) keys, or ("prune",): every open gap given up
_batch = st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1), st.integers(1, 12)), max_size=12)
_steps = st.lists(st.one_of(_batch, st.just(("prune",))), min_size=1, max_size=12)


@pytest.fixture(scope="module")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with fleet_engine("sqlite", tmp_path_factory.mktemp("marks")) as engine:
        yield engine


def _state(engine: Engine, vehicles: list[str]) -> dict[tuple[str, str], tuple[int, int, list[int]]]:
    """Each pair's (hwm, above, the seqs of its received rows)."""
    with engine.connect() as conn:
        marks = conn.execute(text("SELECT vehicle, boot, hwm, above FROM received_marks")).all()
        rows = conn.execute(text("SELECT vehicle, boot, seq FROM received ORDER BY seq")).all()
    out: dict[tuple[str, str], tuple[int, int, list[int]]] = {
        (v, b): (h, a, []) for v, b, h, a in marks if v in vehicles
    }
    for v, b, q in rows:
        if v in vehicles:
            out[(v, b)][2].append(q)
    return out


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=_steps)
@example(steps=[[(0, 0, 1), (0, 0, 3)], [(0, 0, 2)], [(0, 0, 3)]])  # a gap filled, then a resend
@example(steps=[[(0, 0, 2), (0, 0, 2), (0, 0, 1)], [(0, 0, 4)], ("prune",), [(0, 0, 3), (0, 0, 5)]])
def test_the_marks_keep_exactly_the_keys_seen(sqlite_engine: Engine, steps: list) -> None:
    engine = sqlite_engine
    vehicles = [f"M-{uuid.uuid4().hex[:12]}" for _ in range(2)]  # new boots every example
    seen: set[tuple[str, str, int]] = set()
    for step in steps:
        if step == ("prune",):
            # give_up_s=0: every gap open now is given up (its boot's highest seq becomes the mark)
            retention.prune_received(engine, time.time() + 1, give_up_s=0)
            for v in vehicles:
                for b in BOOTS:
                    mine = {q for vv, bb, q in seen if (vv, bb) == (v, b)}
                    if mine:
                        seen |= {(v, b, q) for q in range(1, max(mine) + 1)}
            continue
        keys = [(vehicles[v], BOOTS[b], q) for v, b, q in step]
        with engine.begin() as conn:
            new = _first_time_sqlite(_raw(conn), dict.fromkeys(keys), time.time())
        assert new == set(keys) - seen  # every key new exactly once, duplicates in the batch too
        seen |= new
        for (v, b), (hwm, above, waiting) in _state(engine, vehicles).items():
            mine = {q for vv, bb, q in seen if (vv, bb) == (v, b)}
            run = 0
            while run + 1 in mine:
                run += 1
            # the mark is the gapless run from 1 (or a given-up gap's top), the rest waits as rows
            assert hwm >= run and set(range(1, hwm + 1)) | set(waiting) == mine | set(range(1, hwm + 1))
            assert all(q > hwm + 1 for q in waiting) and above == len(waiting)
            assert mine <= set(range(1, hwm + 1)) | set(waiting)


def test_the_usual_batch_writes_no_received_row(tmp_path: Path) -> None:
    with fleet_engine("sqlite", tmp_path) as engine:
        keys = [(f"v{i}", "b", q) for i in range(5) for q in (1, 2, 3)]
        with engine.begin() as conn:
            assert _first_time_sqlite(_raw(conn), keys, 1.0) == set(keys)
        nxt = [(f"v{i}", "b", 4) for i in range(1, 5)] + [("v0", "b", 2)]  # and a resend
        with engine.begin() as conn:
            raw = _raw(conn)
            before = raw.total_changes
            assert _first_time_sqlite(raw, nxt, 2.0) == set(nxt[:4])
            assert raw.total_changes - before == 4  # one UPDATE of a mark a boot, nothing else
        assert retention.received_count(engine) == 0 and retention.seen_count(engine) == 19
        with engine.connect() as conn:
            marks = conn.execute(
                text("SELECT vehicle, hwm, above, updated FROM received_marks ORDER BY 1")
            ).all()
        assert marks == [("v0", 3, 0, 1.0)] + [(f"v{i}", 4, 0, 2.0) for i in range(1, 5)]


def _seen_before(engine: Engine) -> set[tuple[str, str, int]]:
    """The keys the revision before holds as seen: its rows, and every seq up to a floor."""
    with engine.connect() as conn:
        rows = {tuple(r) for r in conn.execute(text("SELECT vehicle, boot, seq FROM received"))}
        floors = conn.execute(text("SELECT vehicle, boot, floor FROM received_floor")).all()
    return rows | {(v, b, q) for v, b, f in floors for q in range(1, f + 1)}


def _seen_marks(engine: Engine) -> set[tuple[str, str, int]]:
    with engine.connect() as conn:
        rows = {tuple(r) for r in conn.execute(text("SELECT vehicle, boot, seq FROM received"))}
        marks = conn.execute(text("SELECT vehicle, boot, hwm FROM received_marks")).all()
    return rows | {(v, b, q) for v, b, h in marks for q in range(1, h + 1)}


def test_the_migration_folds_received_into_marks_and_back_sqlite(tmp_path: Path) -> None:
    with _engine_at("sqlite", tmp_path, BEFORE) as engine:
        with engine.begin() as conn:
            rows = (
                [("a", "1", q) for q in (1, 2, 3, 5, 6, 9)]  # no floor: a run 1..3, 5-6 and 9 wait
                + [("b", "1", q) for q in (3, 11, 12, 14)]  # floor 10: 3 is under it, 11-12 a run
                + [("c", "1", q) for q in (7, 8)]  # no floor, a gap from 1
            )
            conn.execute(
                text("INSERT INTO received (vehicle, boot, seq) VALUES (:v, :b, :q)"),
                [{"v": v, "b": b, "q": q} for v, b, q in rows],
            )
            conn.execute(
                text("INSERT INTO received_floor (vehicle, boot, floor, updated) VALUES (:v, :b, :f, 5.0)"),
                [{"v": "b", "b": "1", "f": 10}, {"v": "d", "b": "1", "f": 4}],  # d: only a floor
            )
        seen = _seen_before(engine)
        upgrade(engine, "sqlitemarks_received_marks")
        assert current(engine) == "sqlitemarks_received_marks"
        with engine.connect() as conn:
            marks = conn.execute(
                text("SELECT vehicle, boot, hwm, above FROM received_marks ORDER BY 1")
            ).all()
            left = conn.execute(text("SELECT vehicle, seq FROM received ORDER BY 1, 2")).all()
            floors = conn.execute(text("SELECT count(*) FROM received_floor")).scalar()
        assert marks == [("a", "1", 3, 3), ("b", "1", 12, 1), ("c", "1", 0, 2), ("d", "1", 4, 0)]
        assert left == [("a", 5), ("a", 6), ("a", 9), ("b", 14), ("c", 7), ("c", 8)] and floors == 0
        assert _seen_marks(engine) == seen
        with engine.begin() as conn:  # the store goes on from the marks: 4 fills a's gap up to 6
            assert _first_time_sqlite(_raw(conn), [("a", "1", 4), ("a", "1", 5), ("b", "1", 13)], 9.0) == {
                ("a", "1", 4),
                ("b", "1", 13),
            }
        seen |= {("a", "1", 4), ("b", "1", 13)}
        assert _seen_marks(engine) == seen
        _downgrade(engine, BEFORE)
        assert _seen_before(engine) == seen  # as floors again, the rows above them kept
        with engine.connect() as conn:
            assert conn.execute(text("SELECT vehicle, floor FROM received_floor ORDER BY 1")).all() == [
                ("a", 6),
                ("b", 14),
                ("c", 0),
                ("d", 4),
            ]
        upgrade(engine)
        assert _seen_marks(engine) == seen


def test_the_migration_goes_down_and_up_postgres(tmp_path: Path) -> None:
    with _engine_at("postgres", tmp_path, BEFORE) as engine:
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO received (vehicle, boot, seq) VALUES ('a', '1', 1), ('a', '1', 3)")
            )
        upgrade(engine)
        assert current(engine) == head()
        with engine.connect() as conn:  # PostgreSQL's dedup is received as it was; the table empty
            assert conn.execute(text("SELECT count(*) FROM received")).scalar() == 2
            assert conn.execute(text("SELECT count(*) FROM received_marks")).scalar() == 0
        _downgrade(engine, BEFORE)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT to_regclass('received_marks')")).scalar() is None
            assert conn.execute(text("SELECT count(*) FROM received")).scalar() == 2
        upgrade(engine)
        assert current(engine) == head()


def test_db_declares_the_marks_table() -> None:
    assert [c.name for c in db.received_marks.primary_key.columns] == ["vehicle", "boot"]
