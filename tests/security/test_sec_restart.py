"""Issue 9.5: a hub with ``--virtual-accessories`` starts again on the database it wrote.

The root cause was that the virtual fleet was commissioned afresh on every start: a new vendor
key, no token kept, and the registry already held every virtual accessory's identity, so each
hello without a reconnection proof was refused and fitting waited until TimeoutError."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent


def _start(tmp_path: Path, db: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    config = tmp_path / "hub.yaml"
    config.write_text("ports: {grpc: null, viss: null, http: 0, accessories: 0}\n")
    args = ["hub", "--config", str(config), "--brand", "xiaomi_su7", "--virtual-accessories", "--db", str(db)]
    proc = subprocess.Popen(
        [str(BIN / "anycar"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    line = proc.stdout.readline()
    if not line.startswith("anycar hub ready "):
        proc.kill()
        raise AssertionError(f"hub did not start: {line!r}\n{proc.stderr.read()[-3000:]}")
    return proc, json.loads(line.removeprefix("anycar hub ready "))


def _fitted(endpoints: dict[str, str]) -> dict[str, str]:
    body = httpx.get(endpoints["http"] + "/api/v1/accessories", timeout=10).json()
    return {a["id"]: a["state"] for a in body["accessories"]}


def _sigterm(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert proc.stderr is not None
    assert "Traceback" not in proc.stderr.read()


def test_a_second_start_on_the_same_database(tmp_path: Path) -> None:
    db = tmp_path / "hub.sqlite3"
    proc, endpoints = _start(tmp_path, db)
    try:
        first = _fitted(endpoints)
    finally:
        _sigterm(proc)
    assert len(first) >= 5 and set(first.values()) <= {"running", "restricted", "shed"}
    proc, endpoints = _start(tmp_path, db)  # the second start crashed with TimeoutError
    try:
        again = _fitted(endpoints)
    finally:
        _sigterm(proc)
    assert again.keys() == first.keys()  # the same instances, reconnected, not re-commissioned
    assert set(again.values()) <= {"running", "restricted", "shed"}
    keys = subprocess.run(
        [str(BIN / "anycar"), "accessory", "list", "--db", str(db), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert len(json.loads(keys.stdout)["trusted_keys"]) == 1  # one virtual vendor key, not one per start
