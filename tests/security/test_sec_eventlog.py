"""Issue 9.4: the event log cannot take the safety function down, cannot fill the disk, and
cannot be flooded by peers without a token.

A full disk is a size-capped SQLite file (``PRAGMA max_page_count``, the same "database or disk
is full" error) and, where the test may mount, a real 1 MiB tmpfs filled to the last byte; a
read-only database is that tmpfs remounted read-only under the running hub."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from anycar.accessories import load_profile_mounts
from anycar.broker import SignalBroker
from anycar.policy import EventLog, PolicyEngine
from anycar.policy.events import Retention
from anycar.supervisor import Supervisor
from helpers_accessories import running_hub, until

SPEED, GEAR = "Vehicle.Speed", "Vehicle.Powertrain.Transmission.SelectedGear"


@contextlib.asynccontextmanager
async def policy_on(
    db: Path, *, max_file_bytes: int | None = None
) -> AsyncIterator[tuple[PolicyEngine, object]]:
    broker = SignalBroker()
    plan = load_profile_mounts("xiaomi_su7")
    sup = Supervisor()
    events = EventLog(db, on_health=lambda e: sup.report("event-log", e), max_file_bytes=max_file_bytes)
    policy = PolicyEngine(broker, events=events, driving=plan.driving, power=plan.power, supervisor=sup)
    car = broker.register_provider("car", [SPEED, GEAR])
    await policy.start()
    try:
        yield policy, car
    finally:
        await policy.stop()
        policy.close()


def _fill(events: EventLog, n: int = 400) -> None:
    for i in range(n):
        events.log("restore", f"Load{i}", "x" * 2000)


async def _drive_and_park(policy: PolicyEngine, car: object) -> None:
    car.publish_many([(GEAR, 127), (SPEED, 50.0)])  # type: ignore[attr-defined]
    await until(lambda: str(policy.driving_state) == "moving", timeout=10)
    assert policy.restrictions
    car.publish_many([(SPEED, 0.0), (GEAR, 126)])  # type: ignore[attr-defined]
    await until(lambda: str(policy.driving_state) == "parked", timeout=10)
    assert not policy.restrictions or policy.restrictions == policy.driving.restrictions(
        policy.driving_state, 0.0
    )


async def test_a_full_database_does_not_stop_the_driving_state(tmp_path: Path) -> None:
    db = tmp_path / "hub.sqlite3"
    async with policy_on(db, max_file_bytes=160 * 1024) as (policy, car):
        _fill(policy.events)
        await until(lambda: policy.events.status()["persisting"] is False, timeout=10)
        assert "full" in policy.events.status()["last_error"]
        await _drive_and_park(policy, car)  # decided from memory while nothing can be written
        for _ in range(3):
            await _drive_and_park(policy, car)
        assert policy.supervisor.task("policy-engine").state == "running"  # type: ignore[union-attr]
        store = {s["name"]: s for s in policy.supervisor.health()["stores"]}["event-log"]
        assert store["state"] == "failing" and "full" in store["last_error"]
        assert policy.supervisor.health()["ok"] is False
        assert [e.kind for e in policy.events.recent(kind="driving_state")][-1] == "driving_state"
        # space comes back: the log persists again by itself, and says so
        policy.events._writer.cap_file(64 * 1024 * 1024)  # type: ignore[union-attr]
        await until(lambda: policy.events.status()["persisting"], timeout=15)
        assert {s["name"]: s for s in policy.supervisor.health()["stores"]}["event-log"]["state"] == "ok"
        seqs = [e.seq for e in policy.events.history(kind="driving_state", limit=100)]
    assert seqs  # what was queued during the outage reached the disk


def test_retention_caps_rows_and_bytes(tmp_path: Path) -> None:
    db = tmp_path / "hub.sqlite3"
    log = EventLog(db, retention=Retention(max_rows=200, max_bytes=10_000_000))
    for i in range(1000):
        log.log("shed", f"Fan{i}", f"shed {i}")
    rows = log.history(limit=10_000)
    assert len(rows) <= 200 and rows[-1].message == "shed 999"
    assert [e.seq for e in rows] == sorted(e.seq for e in rows)
    log.close()
    log = EventLog(db, retention=Retention(max_rows=1_000_000, max_bytes=50_000))
    for _ in range(500):
        log.log("shed", "Fan", "y" * 400)
    assert log.flush()
    status = log.status()
    assert status["bytes"] <= 50_000 and status["trimmed"] > 0
    conn = sqlite3.connect(db)
    (total,) = conn.execute("SELECT SUM(LENGTH(message) + LENGTH(data) + 60) FROM events").fetchone()
    conn.close()
    assert total <= 60_000
    assert log.log("restore", "Fan", "back").seq == 1501  # numbering goes on after trimming
    log.close()


async def test_refused_hellos_are_rate_limited_in_the_log(tmp_path: Path) -> None:
    """A peer without a token sending bad hellos as fast as it can: a bounded number of rows."""
    db = tmp_path / "hub.sqlite3"
    async with running_hub(db) as hub:

        async def refused_hello() -> None:
            async with connect(hub.url, proxy=None) as ws:
                await ws.recv()
                await ws.send(
                    json.dumps({"type": "hello", "protocol": 1, "serial": "X", "manifest": {"vendor_id": 1}})
                )
                with contextlib.suppress(Exception):
                    await ws.recv()

        sent = 400
        started = time.monotonic()
        for _ in range(sent // 20):
            await asyncio.gather(*(refused_hello() for _ in range(20)))
        elapsed = time.monotonic() - started
        events = hub.manager.events
        rows = events.history(kind="attestation_failed", limit=10_000)
        logged = len([e for e in rows if e.subject != "event-log"])  # not the "N more" summaries
        limits = Retention()
        # the burst plus the refill rate over however long the flood took (a busy machine is slower)
        assert logged <= limits.noisy_burst + limits.noisy_per_s * elapsed + 5, (logged, elapsed)
        assert logged < sent
        assert events.suppressed_total >= sent - logged - 5
        await asyncio.sleep(0.2)  # the bucket refills; the next refusal is logged with a summary
        await refused_hello()
        summary = [
            e for e in events.history(kind="attestation_failed", limit=10_000) if e.subject == "event-log"
        ]
        assert summary and summary[-1].data["suppressed"] > 0
        assert "were not logged" in summary[-1].message


# -- a real disk: tmpfs (needs the right to mount, as root in CI) --------------------------------
@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "disk"
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


async def test_a_really_full_disk(small_disk: Path) -> None:
    db = small_disk / "hub.sqlite3"
    async with policy_on(db) as (policy, car):
        filler = small_disk / "filler"
        with contextlib.suppress(OSError), filler.open("wb") as out:
            while True:
                out.write(b"\0" * 4096)
                out.flush()
        _fill(policy.events, 100)
        await until(lambda: policy.events.status()["persisting"] is False, timeout=15)
        assert "full" in policy.events.status()["last_error"]
        await _drive_and_park(policy, car)
        assert policy.supervisor.task("policy-engine").state == "running"  # type: ignore[union-attr]
        filler.unlink()  # space is freed: persisting resumes by itself
        await until(lambda: policy.events.status()["persisting"], timeout=20)
        assert policy.events.history(kind="driving_state")


async def test_a_database_that_turns_read_only(tmp_path: Path) -> None:
    """SQLite's read-only state (what a file system remounted read-only gives the hub)."""
    async with policy_on(tmp_path / "hub.sqlite3") as (policy, car):
        writer = policy.events._writer  # type: ignore[union-attr]
        assert writer is not None
        with writer._lock:
            writer.conn.execute("PRAGMA query_only = 1")
        policy.events.log("shed", "Fan1", "while read-only")
        await until(lambda: policy.events.status()["persisting"] is False, timeout=15)
        assert "readonly" in policy.events.status()["last_error"]
        await _drive_and_park(policy, car)
        assert policy.supervisor.health()["ok"] is False
        with writer._lock:
            writer.conn.execute("PRAGMA query_only = 0")
        await until(lambda: policy.events.status()["persisting"], timeout=20)
        assert [e.message for e in policy.events.history(kind="shed")] == ["while read-only"]


def test_a_read_only_database_location_is_one_clear_line(tmp_path: Path) -> None:
    """Where the database cannot be written at all, the hub says so in one line (no traceback)."""
    import sys

    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    EventLog(rw / "hub.sqlite3").close()
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root")
    if subprocess.run(["mount", "--bind", str(rw), str(ro)], capture_output=True).returncode != 0:
        pytest.skip("cannot bind-mount here")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(ro)], check=True)
        anycar = str(Path(sys.executable).parent / "anycar")
        for args in (["accessory", "list"], ["hub", "--brand", "xiaomi_su7", "--http-port", "0"]):
            done = subprocess.run(
                [anycar, *args, "--db", str(ro / "hub.sqlite3")], capture_output=True, text=True, timeout=60
            )
            assert done.returncode != 0
            assert "Traceback" not in done.stderr, done.stderr
            lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
            assert len(lines) == 1 and "hub.sqlite3" in lines[0] and "database" in lines[0], done.stderr
    finally:
        subprocess.run(["umount", "-l", str(ro)], check=False)
