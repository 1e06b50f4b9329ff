"""Issue 9.7: commissioning is crash-consistent. Registry row and grant row are one
transaction; a token that never reached the accessory does not lock it out: a retried
commissioning completes, into the same instance."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from anycar.accessories import signing, virtual
from anycar.accessories.sdk import HubError
from anycar.policy.privileges import Grant, Privilege
from helpers_accessories import fit, make, running_hub

FAN = "fff1:8002:F-1"
LAMP = "fff1:8001:L-1"


def _rows(db: Path) -> tuple[set[str], set[str]]:
    """(registry instances, accessory grant subjects) as a second reader of the file sees them."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        instances = {r[0] for r in conn.execute("SELECT instance FROM accessories")}
        grants = {r[0] for r in conn.execute("SELECT subject FROM grants") if r[0][:1].isupper()}
    except sqlite3.OperationalError:  # tables not created yet
        return set(), set()
    finally:
        conn.close()
    return instances, grants


async def test_a_failed_commit_leaves_nothing_and_the_retry_completes(tmp_path: Path) -> None:
    db = tmp_path / "hub.sqlite3"
    async with running_hub(db) as hub:
        fan = make("clip_fan", hub, "F-1")
        fan.start(hub.url)
        await asyncio.wait_for(fan.awaiting.wait(), 5)
        real_put = hub.manager.registry.put

        def disk_full(rec: Any) -> None:
            raise sqlite3.OperationalError("database or disk is full")

        hub.manager.registry.put = disk_full  # type: ignore[method-assign]
        with pytest.raises(sqlite3.OperationalError):
            await hub.manager.commission(FAN, fan.pairing_code, "dash_mount_left")
        assert _rows(db) == (set(), set())  # no orphan grant row
        assert not hub.manager.fitted and hub.manager.board.occupant("dash_mount_left") is None
        assert hub.manager.policy.grants.get("Fan1") is None
        hub.manager.registry.put = real_put  # type: ignore[method-assign]
        rec = await hub.manager.commission(FAN, fan.pairing_code, "dash_mount_left")
        await asyncio.wait_for(fan.running.wait(), 5)
        assert rec.instance == "Fan1" and _rows(db) == ({"Fan1"}, {"Fan1"})
        await fan.stop()


async def test_a_token_that_never_arrived_is_commissioned_again(tmp_path: Path) -> None:
    db = tmp_path / "hub.sqlite3"
    async with running_hub(db) as hub:
        key = hub.key
        fan = make("clip_fan", hub, "F-1", pairing_code="1357-2468")
        fan.start(hub.url)
        await asyncio.wait_for(fan.awaiting.wait(), 5)
        session = hub.manager.pending[FAN]
        real_send = session.send

        async def lost(msg: dict[str, Any]) -> bool:  # the hub dies as it sends the token
            if msg["type"] == "commissioned":
                session.conn.transport.abort()  # type: ignore[attr-defined]
                return False
            return await real_send(msg)

        session.send = lost  # type: ignore[method-assign]
        await hub.manager.commission(FAN, "1357-2468", "dash_mount_left")
        await fan.stop()
        assert fan.token is None
    assert _rows(db) == ({"Fan1"}, {"Fan1"})
    async with running_hub(db, key=key) as hub:
        again = virtual.build("clip_fan", serial="F-1", signing_key=key, pairing_code="1357-2468")
        again.start(hub.url)
        await asyncio.wait_for(again.awaiting.wait(), 5)  # not refused: it may be commissioned again
        rec = await hub.manager.commission(FAN, "1357-2468", "dash_mount_right")
        await asyncio.wait_for(again.running.wait(), 5)
        assert rec.instance == "Fan1" and again.instance == "Fan1" and again.token
        assert [r["instance"] for r in hub.manager.list()] == ["Fan1"]
        assert hub.manager.board.occupant("dash_mount_left") is None  # the first fitting was undone
        token = again.token
        await again.stop()
        # the accessory proves its token once: from then on a hello without one is an impostor
        back = virtual.build("clip_fan", serial="F-1", signing_key=key)
        back.token = token
        back.start(hub.url)
        await asyncio.wait_for(back.running.wait(), 5)
        await back.stop()
        impostor = virtual.build("clip_fan", serial="F-1", signing_key=key)
        with contextlib.suppress(HubError):  # an SDK that raises the hub's refusal
            await asyncio.wait_for(impostor.run(hub.url, reconnect=False), 5)
        assert "auth" in impostor.errors[-1]["message"]
    assert _rows(db) == ({"Fan1"}, {"Fan1"})


async def test_remove_drops_both_rows_together(tmp_path: Path) -> None:
    db = tmp_path / "hub.sqlite3"
    async with running_hub(db) as hub:
        fan = make("clip_fan", hub, "F-1")
        await fit(hub, fan, "dash_mount_left")
        await hub.manager.remove("Fan1")
        assert _rows(db) == (set(), set())
        await fan.stop()


async def test_an_orphan_grant_left_by_an_older_hub_is_dropped_at_start(tmp_path: Path) -> None:
    db = tmp_path / "hub.sqlite3"
    async with running_hub(db) as hub:
        key = hub.key
    conn = sqlite3.connect(db)  # what a crash between the two writes used to leave
    conn.execute(
        "INSERT INTO grants (subject, grant_json, granted_at) VALUES (?, ?, 0)",
        (
            "Fan1",
            json.dumps(Grant("Fan1", "accessory", Privilege.MANAGE, ("**",), ("Vehicle.**",)).to_dict()),
        ),
    )
    conn.commit()
    conn.close()
    async with running_hub(db, key=key) as hub:
        assert hub.manager.policy.grants.get("Fan1") is None
        assert _rows(db) == (set(), set())
        fan = make("clip_fan", hub, "F-1")
        rec = await fit(hub, fan, "dash_mount_left")  # the next Fan1 gets only its own grant
        grant = hub.manager.policy.grants.get("Fan1")
        assert rec.instance == "Fan1" and grant is not None and grant.privilege is Privilege.OPERATE
        await fan.stop()


# -- kill -9 of the console in the middle of commissioning ----------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _serve(db: Path, port: int, key: Any) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "anycar.cli.main",
        "accessory",
        "serve",
        "--port",
        str(port),
        "--db",
        str(db),
        "--trust-key",
        f"{virtual.VIRTUAL_VENDOR_ID}:{signing.public_b64(key)}",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert line, "serve ended early"
        if "listening on" in line:
            return proc


async def _read_until(proc: asyncio.subprocess.Process, pattern: str) -> None:
    assert proc.stdout is not None
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert line, f"serve ended before {pattern!r}"
        if re.search(pattern, line):
            return


@pytest.mark.parametrize("when", ["at_once", "row_written", "commissioned"])
async def test_kill_9_mid_commissioning_then_retry(tmp_path: Path, when: str) -> None:
    db, port, key = tmp_path / "hub.sqlite3", _free_port(), signing.generate_key()
    url = f"ws://127.0.0.1:{port}"
    proc = await _serve(db, port, key)
    try:
        lamp = virtual.build("cabin_light", serial="L-1", signing_key=key, pairing_code="1111-2222")
        lamp.start(url, reconnect=False)
        await asyncio.wait_for(lamp.awaiting.wait(), 10)
        assert proc.stdin is not None
        proc.stdin.write(f"commission {LAMP} 1111-2222 ceiling_mount_rear\n".encode())
        await proc.stdin.drain()
        loop = asyncio.get_running_loop()
        end = loop.time() + 10
        while when != "at_once" and loop.time() < end:
            if when == "row_written" and _rows(db)[0]:
                break
            if when == "commissioned" and lamp.token:
                break
            await asyncio.sleep(0.001)
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
        await lamp.stop()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    instances, grants = _rows(db)
    assert instances == grants  # never a grant without its accessory, nor the other way round
    proc = await _serve(db, port, key)
    try:
        # worst case: the accessory lost whatever it got; it shows its code again
        retry = virtual.build("cabin_light", serial="L-1", signing_key=key, pairing_code="1111-2222")
        retry.start(url, reconnect=False)
        await asyncio.wait_for(retry.awaiting.wait(), 10)
        assert proc.stdin is not None
        proc.stdin.write(f"commission {LAMP} 1111-2222 ceiling_mount_rear\n".encode())
        await _read_until(proc, r"commissioned at ceiling_mount_rear")
        await asyncio.wait_for(retry.running.wait(), 10)
        assert retry.instance == "Light1"
        proc.stdin.write(b"health\n")
        await _read_until(proc, r"health: ok")
        proc.stdin.write(b"quit\n")
        await retry.stop()
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert _rows(db) == ({"Light1"}, {"Light1"})
