"""Durable timing: a hub process killed with SIGKILL in the middle of a ``for:``, a delay and a
wait picks each up on restart from SQLite and finishes it at the right moment (or at once if the
moment passed while it was down), instead of starting the clock again."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from anycar.brands import ProfileEncoder

DOOR = "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen"
HOLD_S = 8.0  # long enough that a loaded machine kills and restarts the hub well inside it
DEFS = f"""
automations:
  - id: held_open
    triggers: [{{signal: {DOOR}, to: true, for: {HOLD_S}}}]
    actions: [{{notify: held}}]
  - id: delayed
    triggers: [{{signal: {DOOR}, from: false, to: true}}]
    actions: [{{notify: start}}, {{delay: {HOLD_S}}}, {{notify: after delay}}]
  - id: waiting
    triggers: [{{signal: {DOOR}, from: false, to: true}}]
    actions:
      - notify: waiting
      - wait: {{trigger: {{signal: Vehicle.Speed, above: 200}}, timeout: {HOLD_S}}}
      - notify: waited
"""


def _log(path: Path, values: list[tuple[float, bool]]) -> None:
    enc = ProfileEncoder("kaiyun_pickman")
    lines = []
    t0 = 1_700_000_000.0
    for dt, is_open in values:
        for frame in enc.encode({DOOR: is_open}):
            lines.append(f"({t0 + dt:.6f}) can0 {frame.arbitration_id:08X}#{frame.data.hex().upper()} R")
    path.write_text("\n".join(lines) + "\n")


def _start(tmp_path: Path, log: Path) -> tuple[subprocess.Popen[str], float]:
    cmd = [
        sys.executable, "-m", "anycar.cli.main", "hub", "--brand", "kaiyun_pickman", "--can", str(log),
        "--db", str(tmp_path / "hub.sqlite3"), "--automations", str(tmp_path / "defs"),
        "--config", str(tmp_path / "hub.yaml"),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("anycar hub ready"), (line, proc.stderr.read() if proc.poll() is not None else "")
    return proc, time.time()


def _db(tmp_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(tmp_path / "hub.sqlite3", timeout=10)
    conn.row_factory = sqlite3.Row
    return conn


def _poll(query: str, tmp_path: Path, want: int, timeout: float = 30.0) -> list[sqlite3.Row]:
    deadline = time.monotonic() + timeout
    while True:
        with _db(tmp_path) as conn:
            try:
                rows = conn.execute(query).fetchall()
            except sqlite3.OperationalError:
                rows = []
        if len(rows) >= want:
            return rows
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {query} gave {[dict(r) for r in rows]}")
        time.sleep(0.05)


def test_kill_9_mid_for_mid_delay_mid_wait(tmp_path: Path) -> None:
    (tmp_path / "defs").mkdir()
    (tmp_path / "defs" / "timing.yaml").write_text(DEFS)
    (tmp_path / "hub.yaml").write_text("ports: {grpc: null, viss: null, http: null, accessories: 0}\n")
    log = tmp_path / "door.log"
    _log(log, [(0.0, False), (0.3, True)])
    proc, _ = _start(tmp_path, log)
    try:
        since = _poll("SELECT since FROM automation_since", tmp_path, 1)[0]["since"]
        paused = {
            r["automation"]: json.loads(r["state"])
            for r in _poll("SELECT * FROM automation_runs", tmp_path, 2)
        }
        # the event log is written by its own thread every 0.1 s (a paused run synchronously):
        # kill once the runs' first notices are on disk too, not after a fixed second that a
        # loaded machine may not give that thread
        _poll("SELECT seq FROM events WHERE message IN ('start', 'waiting')", tmp_path, 2)
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # both runs paused in SQLite: mid-way
        killed = time.time()
        proc.wait(10)
    assert killed < since + HOLD_S - 1, f"the hub took {killed - since:.1f} s to pause its runs"
    due = paused["delayed"]["due"]
    deadline = paused["waiting"]["deadline"]
    assert abs(due - (since + HOLD_S)) < 2 and abs(deadline - (since + HOLD_S)) < 2
    with _db(tmp_path) as conn:
        assert (
            conn.execute(
                "SELECT COUNT(*) FROM events WHERE message IN ('held', 'after delay', 'waited')"
            ).fetchone()[0]
            == 0
        )

    # the restarted hub replays the log: the door is open again from its first frame on
    _log(log, [(0.0, True)])
    proc, ready = _start(tmp_path, log)
    try:
        rows = _poll(
            "SELECT message, ts FROM events WHERE kind = 'automation_notify' AND message IN ('held', 'after delay', 'waited')",
            tmp_path,
            3,
        )
        at = {r["message"]: r["ts"] for r in rows}
        for message, moment in (("held", since + HOLD_S), ("after delay", due), ("waited", deadline)):
            # not before its moment, and not a fresh full period after the restart: that would
            # count from when the restarted hub first saw the door, after it started, so end no
            # earlier than about ready + HOLD_S (the margin is for reading the ready line late;
            # the rest of HOLD_S is what a loaded machine may take to resume after start-up)
            assert at[message] >= moment - 0.25, (message, at[message] - moment)
            assert at[message] < max(moment, ready) + HOLD_S - 1.0, (
                message,
                at[message] - max(moment, ready),
            )
        with _db(tmp_path) as conn:
            starts = conn.execute(
                "SELECT COUNT(*) FROM events WHERE message IN ('start', 'waiting')"
            ).fetchone()[0]
            assert starts == 2  # the runs resumed; the restart did not start them again
            assert conn.execute("SELECT COUNT(*) FROM automation_runs").fetchone()[0] == 0
        # each run's trace is written after its last notice: wait for the two resumed runs' own
        # (held_open's trace alone could make up a count of two while waiting's is still on its way)
        traces = [
            json.loads(r["body"])
            for r in _poll(
                "SELECT body FROM automation_traces WHERE automation IN ('delayed', 'waiting')", tmp_path, 2
            )
        ]
        resumed = [t for t in traces if t.get("resumed")]
        assert {t["automation"] for t in resumed} == {"delayed", "waiting"}
        waited = next(t for t in resumed if t["automation"] == "waiting")
        assert [a["outcome"] for a in waited["actions"]][-2:] == ["timed out", "done"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


async def test_a_graceful_stop_keeps_a_paused_run_for_the_next_start(tmp_path: Path) -> None:
    import asyncio

    from anycar.automations.engine import Engine
    from anycar.automations.store import Store
    from anycar.broker import SignalBroker
    from automations_support import LIGHT, FakeCar, until, write

    text = f"""
automations:
  - id: later
    triggers: [{{signal: {DOOR}, from: false, to: true}}]
    actions: [{{delay: 0.8}}, {{actuate: {LIGHT}, value: true}}]
"""
    defs = write(tmp_path, "later.yaml", text)
    broker = SignalBroker()
    car = FakeCar(broker)
    store = Store(tmp_path / "hub.sqlite3")
    engine = Engine(broker, store=store)
    engine.load_paths([defs])
    await engine.start()
    car.set(DOOR, False)
    car.set(DOOR, True)
    await until(lambda: store.paused_runs())
    due = store.paused_runs()[0]["due"]
    await engine.stop()  # SIGTERM: the hub stops in the middle of the delay
    store.close()
    assert car.sent(LIGHT) == []

    store = Store(tmp_path / "hub.sqlite3")
    assert [r["automation"] for r in store.paused_runs()] == ["later"]
    engine = Engine(broker, store=store)
    engine.load_paths([defs])
    await engine.start()
    try:
        await until(lambda: car.sent(LIGHT) == [True], what="the resumed delay")
        assert time.time() >= due - 0.05
        trace = await until(lambda: (t := engine.last_run("later")) and t["result"] == "done" and t)
        assert trace["resumed"] and [a["outcome"] for a in trace["actions"]] == ["done", "accepted"]
        await asyncio.sleep(0.1)
        assert store.paused_runs() == []
    finally:
        await engine.stop()
        store.close()


async def test_has_been_true_for_remembers_since_when_across_a_restart(tmp_path: Path) -> None:
    import asyncio

    from anycar.automations.engine import Engine
    from anycar.automations.store import Store
    from anycar.broker import SignalBroker
    from automations_support import LIGHT, FakeCar, until, write

    defs = write(
        tmp_path,
        "standing.yaml",
        f"""
automations:
  - id: standing
    triggers: [{{signal: {DOOR}, from: false, to: true}}]
    conditions: [{{signal: Vehicle.Speed, below: 1, for: 1.0}}]
    actions: [{{actuate: {LIGHT}, value: true}}]
""",
    )
    broker = SignalBroker()
    car = FakeCar(broker)
    car.set("Vehicle.Speed", 0.0)
    store = Store(tmp_path / "hub.sqlite3")
    engine = Engine(broker, store=store)
    engine.load_paths([defs])
    await engine.start()
    await until(lambda: store.since_all())
    (since,) = store.since_all().values()
    await engine.stop()
    store.close()
    await asyncio.sleep(0.6)  # the hub is down for a while: a reset clock would count only from here

    store = Store(tmp_path / "hub.sqlite3")
    engine = Engine(broker, store=store)  # restarted, the car still standing
    engine.load_paths([defs])
    await engine.start()
    try:
        await until(lambda: time.time() >= since + 1.1, timeout=5)
        car.set(DOOR, False)
        car.set(DOOR, True)
        await until(lambda: car.sent(LIGHT) == [True], what="the condition, counted from before the restart")
        assert store.since_all() == {next(iter(store.since_all())): since}
    finally:
        await engine.stop()
        store.close()


def test_a_paused_run_is_on_disk_only_after_its_notices(tmp_path: Path) -> None:
    """SIGKILL the moment a paused run appears in SQLite: the notice the run gave just before
    its delay is there too (the pause flushes the event log first; before, the log's writer
    thread could still hold it for up to 0.1 s, and the restarted hub resumed a run whose start
    was never logged)."""
    (tmp_path / "defs").mkdir()
    (tmp_path / "defs" / "timing.yaml").write_text(DEFS)
    (tmp_path / "hub.yaml").write_text("ports: {grpc: null, viss: null, http: null, accessories: 0}\n")
    log = tmp_path / "door.log"
    _log(log, [(0.0, False), (0.3, True)])
    proc, _ = _start(tmp_path, log)
    try:
        deadline = time.monotonic() + 30
        conn = _db(tmp_path)
        while True:  # a tight look: the kill follows the paused row within a few ms
            try:
                if conn.execute("SELECT 1 FROM automation_runs WHERE automation = 'delayed'").fetchone():
                    break
            except sqlite3.OperationalError:
                pass
            assert time.monotonic() < deadline, "the run never paused"
            time.sleep(0.002)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        conn.close()
    with _db(tmp_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM events WHERE message = 'start'").fetchone()[0] == 1
