"""SQLite ingest path (sqlite-ingest, session 6): checkpoints run off the commit, in a thread of the
engine's own, and a log that readers or a writer that never pauses keep from starting over is made
to start over, so the WAL stays bounded; a process killed between checkpoints loses no commit; the
rollup's fixed SQLite upsert gives the query's numbers whatever its chunking."""

from __future__ import annotations

import contextlib
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from anycar.fleet import daily, registry
from anycar.fleet.db import checkpointer, make_engine
from anycar.fleet.store import Accepted, Store
from fleet_support import fleet_engine, vin

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class _OverlappingReaders(threading.Thread):
    """Two connections taking turns so that a read snapshot is always open: the next one begins
    before the last one ends (an API under steady load looks like this to the WAL)."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.conns = [sqlite3.connect(path, isolation_level=None, check_same_thread=False) for _ in range(2)]
        self.stop = threading.Event()

    def run(self) -> None:
        turn = 0
        while not self.stop.is_set():
            now, last = self.conns[turn], self.conns[1 - turn]
            now.execute("BEGIN")
            now.execute("SELECT count(*) FROM t").fetchone()  # the snapshot is taken here
            if last.in_transaction:
                last.execute("COMMIT")
            time.sleep(0.005)
            turn = 1 - turn
        for conn in self.conns:
            if conn.in_transaction:
                conn.execute("COMMIT")
            conn.close()


def _wal_pages_under_overlapping_readers(path: Path, restart_pages: int, commits: int = 2000) -> int:
    """Commit ``commits`` one-page rows through an engine while readers overlap; the log's length
    (pages since it last started over) at the end."""
    engine = make_engine(f"sqlite:///{path}")
    ck = checkpointer(engine)
    assert ck is not None
    ck.interval_s, ck.restart_pages = 0.01, restart_pages
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)"))
    readers = _OverlappingReaders(path)
    readers.start()
    try:
        for n in range(commits):  # a writer that never pauses
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO t (body) VALUES (:b)"), {"b": bytes([n % 251]) * 3000})
    finally:
        readers.stop.set()
        readers.join(10)
    with contextlib.closing(sqlite3.connect(path)) as probe:
        rows = probe.execute("SELECT count(*) FROM t").fetchone()[0]
    engine.dispose()
    assert rows == commits
    return ck.max_log_pages  # the longest the log was at a pass


def test_overlapping_readers_starve_passive_checkpoints_and_the_restart_bounds_the_wal(
    tmp_path: Path,
) -> None:
    # control: with only PASSIVE checkpoints (the restart never due) the log never starts over
    unbounded = _wal_pages_under_overlapping_readers(tmp_path / "a.sqlite3", restart_pages=10**9)
    # 2,000 commits of 3 pages each: ~6,000 if it never starts over (3,300-6,000 seen at load 10-13:
    # a descheduled writer now and then leaves a gap the readers let it start over in)
    assert unbounded > 2500, unbounded
    bounded = _wal_pages_under_overlapping_readers(tmp_path / "b.sqlite3", restart_pages=200)
    # started over past 200: the bound plus what commits add while the thread makes one pass
    # (a loaded machine slows its passes: 640-860 pages seen at load 10-13)
    assert bounded < 2500, bounded


def test_commits_do_not_checkpoint_and_the_checkpointer_copies_them(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    ck = checkpointer(engine)
    assert ck is not None
    ck.interval_s = 3600.0  # one pass after the first commit, then none: what is left is the commits'
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)"))
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    deadline = time.monotonic() + 10
    while ck.passes == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ck.passes >= 1
    for _n in range(1500):  # 1,500+ pages: SQLite's own checkpoint would have run in a commit
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t (body) VALUES (:b)"), {"b": b"x" * 3000})
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as probe:
        _busy, log, done = probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert done == log > 1500  # all of it was left to copy: no commit ran a checkpoint
        ck.checkpoint(probe)  # what the thread's pass does
    assert ck.last_log_pages == log
    engine.dispose()
    assert not (ck._thread and ck._thread.is_alive())  # dispose ends the thread


def test_an_in_memory_database_has_no_checkpointer() -> None:
    engine = make_engine("sqlite://")
    assert checkpointer(engine) is None
    engine.dispose()


_KILLED = """
import sys, time
from sqlalchemy import text
from anycar.fleet.db import make_engine
engine = make_engine(sys.argv[1])
with engine.begin() as conn:
    conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)"))
for n in range(300):
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t (body) VALUES (:b)"), {"b": b"y" * 3000})
print("committed", flush=True)
time.sleep(60)
"""


def test_a_process_killed_between_checkpoints_loses_no_commit(tmp_path: Path) -> None:
    path = tmp_path / "k.sqlite3"
    proc = subprocess.Popen(  # nosec B603 # our interpreter, a fixed script
        [sys.executable, "-c", _KILLED, f"sqlite:///{path}"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "committed"
        proc.send_signal(signal.SIGKILL)  # no checkpoint, no close: the commits are in the WAL only
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 300


@pytest.mark.parametrize("chunk", [3, 2000])
def test_the_sqlite_rollup_upsert_gives_the_query_s_numbers_in_any_chunking(
    chunk: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(daily, "_SQLITE_CHUNK", chunk)
    rnd = random.Random(chunk)
    with fleet_engine("sqlite", tmp_path) as engine:
        store = Store(engine)
        wire_ids = [registry.add_vehicle(engine, vin(n), "generic", tenant="t").vehicle for n in range(7)]
        fixes = []
        for ref in map(store.vehicle, wire_ids):
            assert ref is not None
            lat, lon, t = 48.1 + rnd.random() / 100, 11.5 + rnd.random() / 100, T0 + 85_800
            for _ in range(60):  # across midnight, some speeds unknown
                t += rnd.choice((20.0, 45.0, 300.0))
                lat, lon = lat + rnd.uniform(-0.002, 0.002), lon + rnd.uniform(-0.002, 0.002)
                speed = None if rnd.random() < 0.2 else rnd.uniform(0, 70)
                doc = {"kind": "position", "ts": t, "lat": lat, "lon": lon, "speed": speed, "heading": None}
                fixes.append(Accepted(ref, doc))
        late = fixes[::9]  # some arrive after the rest: the recompute path
        order = [f for i, f in enumerate(fixes) if i % 9] + late
        for i in range(0, len(order), 25):
            store.commit(order[i : i + 25])
        for day in (int(T0 // 86_400), int(T0 // 86_400) + 1):
            with engine.connect() as conn:
                old = conn.execute(
                    text(daily.FROM_POSITIONS), {"a": day * 86_400, "b": (day + 1) * 86_400}
                ).all()
                new = conn.execute(text(daily.FROM_ROLLUP), {"d": day}).all()
            assert len(old) == 7
            assert [tuple(r[:5]) for r in new] == [tuple(r[:5]) for r in old]
            for a, b in zip(old, new, strict=True):
                assert b[5] == pytest.approx(a[5], rel=1e-12, abs=1e-9)


def test_a_process_that_exits_leaves_the_one_file_as_sqlite_does(tmp_path: Path) -> None:
    path = tmp_path / "e.sqlite3"
    script = _KILLED.replace("time.sleep(60)", "")  # commit, then exit without disposing
    subprocess.run([sys.executable, "-c", script, f"sqlite:///{path}"], check=True, timeout=60)  # nosec B603
    assert not path.with_name(path.name + "-wal").exists()  # checkpointed and removed at the last close
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 300
