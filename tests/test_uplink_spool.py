"""The spool: bounded by a quota (least important, oldest first, counted), a full disk, and
entries that survive the process being killed with SIGKILL in the middle of writing."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from anycar.uplink.spool import Spool

BOOT = "00112233445566aa"


def put(spool: Spool, n: int, prio: int, size: int = 1000, start: int = 0) -> list[int | None]:
    return [spool.put("telemetry", b"x" * size, prio=prio, qos=1, boot=BOOT, seq=start + i) for i in range(n)]


def test_entries_come_back_in_order_and_go_only_when_acknowledged(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite3")
    ids = put(spool, 5, 5)
    entries = spool.after(0, 10)
    assert [e.id for e in entries] == ids and [e.seq for e in entries] == [0, 1, 2, 3, 4]
    spool.ack(entries[0])
    spool.ack(entries[0])  # a second PUBACK for the same entry changes nothing
    assert spool.depth == 4 and spool.counters["published"] == 1
    assert [e.id for e in spool.after(entries[1].id, 10, until=entries[3].id)] == ids[2:4]
    spool.close()
    again = Spool(tmp_path / "s.sqlite3")
    assert again.depth == 4 and again.counters["published"] == 1


def test_quota_drops_least_important_oldest_first_and_counts_them(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite3", quota_bytes=10 * 1064)
    low = put(spool, 4, 9)
    high = put(spool, 4, 1, start=10)
    mid = put(spool, 2, 5, start=20)
    assert spool.depth == 10
    put(spool, 3, 5, start=30)  # room is made from the prio-9 entries, oldest first
    left = {e.id for e in spool.after(0, 100)}
    assert not {low[0], low[1], low[2]} & left and low[3] in left
    assert set(high) <= left and set(mid) <= left
    assert spool.counters["dropped_prio_9"] == 3 and spool.counters["dropped_quota"] == 3
    # a prio-9 message does not push out more important ones: it is the one dropped
    assert put(spool, 2, 9, start=40)[1] is None or spool.counters["dropped_prio_9"] >= 4
    assert set(high) <= {e.id for e in spool.after(0, 100)}
    stats = spool.stats()
    assert stats["dropped"] == spool.counters["dropped"] and stats["drops"]["quota"] >= 3


def test_in_flight_entries_are_never_chosen_to_make_room(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite3", quota_bytes=3 * 1064)
    first, second, _ = put(spool, 3, 9)
    assert first is not None and second is not None
    spool.put("telemetry", b"y" * 1000, prio=9, qos=1, boot=BOOT, seq=9, protect={first})
    left = [e.id for e in spool.after(0, 10)]
    assert first in left and second not in left


def test_a_campaign_quota_bounds_that_campaign_alone(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite3")
    spool.campaign_quota["chatty"] = 2 * 1064
    for i in range(5):
        spool.put("telemetry", b"c" * 1000, prio=5, qos=1, boot=BOOT, seq=i, campaign="chatty")
    other = spool.put("events", b"e" * 1000, prio=1, qos=1, boot=BOOT, seq=99)
    assert spool.depth == 3 and other is not None
    assert spool.counters["dropped_campaign_quota"] == 3


def test_full_disk_drops_by_priority_and_keeps_going(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite3")
    put(spool, 5, 9, size=4000)
    # the file may not grow any further: SQLite answers SQLITE_FULL as on a full disk
    pages = spool.db.execute("PRAGMA page_count").fetchone()[0]
    spool.db.execute(f"PRAGMA max_page_count = {pages}")
    results = put(spool, 10, 1, size=4000, start=100)
    assert spool.counters.get("disk_full", 0) > 0
    assert spool.counters.get("dropped_disk_full", 0) > 0
    assert "disk full" in spool.stats()["last_error"]
    kept = [e for e in spool.after(0, 100)]
    assert any(e.prio == 1 for e in kept)  # important entries got in by pushing out prio 9
    assert sum(1 for r in results if r is not None) >= 1
    assert len(kept) == spool.depth


def test_nothing_committed_is_lost_when_the_process_is_killed(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite3"
    code = f"""
import os, signal
from anycar.uplink.spool import Spool
s = Spool({str(db)!r})
for i in range(1, 2001):
    s.put("telemetry", b"v" * 300, prio=5, qos=1, boot={BOOT!r}, seq=i)
    if i == 1500:
        print("1500", flush=True)
    if i == 1800:
        os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert "1500" in proc.stdout
    spool = Spool(db)
    seqs = [e.seq for e in spool.after(0, 5000)]
    assert seqs == list(range(1, 1801))  # every put that returned is there, in order, once
    assert spool.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert os.path.exists(db)
