"""The whole path with real processes: `anycar hub --simulate --uplink mqtt://127.0.0.1:1883`
→ Mosquitto → `anycar fleet serve` (ingest into PostgreSQL) → rows over the fleet REST API;
then the hub is restarted (a new boot, the same spool) and nothing is stored twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import text

from anycar.fleet.db import make_engine
from fleet_support import postgres_url, vin
from hub_support import FREE_PORTS

CLI = [sys.executable, "-m", "anycar.cli.main"]


def _ready(proc: subprocess.Popen, prefix: str) -> dict:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith(prefix), (line, proc.stderr.read() if proc.stderr else "")
    return json.loads(line[len(prefix) :])


def _hub(vehicle: str, folder: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            *CLI,
            "hub",
            "--brand",
            "kaiyun_pickman",
            "--simulate",
            "--speedup",
            "4",
            "--uplink",
            "mqtt://127.0.0.1:1883",
            "--vehicle-id",
            vehicle,
            *FREE_PORTS,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ANYCAR_HUB_DB": str(folder / "hub.sqlite3")},
    )
    _ready(proc, "anycar hub ready ")
    return proc


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _poll(check, timeout: float = 90.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_hub_to_fleet_api_and_dedup_across_a_hub_restart(tmp_path: Path) -> None:
    vehicle = f"E2E-{uuid.uuid4().hex[:10]}"
    with postgres_url() as url:
        db = ["--db", url]
        subprocess.run(
            [
                *CLI,
                "fleet",
                "vehicle",
                "add",
                vin(1),
                "--brand",
                "kaiyun_pickman",
                "--tenant",
                "acme",
                "--vehicle-id",
                vehicle,
                *db,
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        token = json.loads(
            subprocess.run(
                [*CLI, "fleet", "user", "add", "ann", "--tenant", "acme", "--role", "viewer", "--json", *db],
                check=True,
                capture_output=True,
                text=True,
                timeout=60,
            ).stdout
        )["token"]
        fleet = subprocess.Popen(
            [
                *CLI,
                "fleet",
                "serve",
                *db,
                "--port",
                "0",
                "--osmand-port",
                "0",
                "--vehicle",
                vehicle,
                "--group",
                f"t{uuid.uuid4().hex[:8]}",
                "--worker-id",
                f"w-{vehicle}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        hub = None
        try:
            api = _ready(fleet, "anycar fleet ready ")["api"]
            headers = {"Authorization": f"Bearer {token}"}
            http = httpx.Client(base_url=api, headers=headers, timeout=10)

            def me() -> dict:
                return http.get(f"/api/vehicles/{vehicle}").json()

            hub = _hub(vehicle, tmp_path)
            _poll(lambda: me()["online"] and me()["position"], what="the hub online with a position")
            day = time.strftime("%Y-%m-%d", time.gmtime(me()["position"]["ts"]))
            first = len(http.get(f"/api/vehicles/{vehicle}/track?day={day}").json())
            assert first >= 1
            _stop(hub)
            hub = _hub(vehicle, tmp_path)  # a new boot over the same spool
            _poll(
                lambda: len(http.get(f"/api/vehicles/{vehicle}/track?day={day}").json()) > first + 2,
                what="positions after the restart",
            )
            _stop(hub)
            hub = None
            engine = make_engine(url)
            with engine.connect() as conn:
                boots = conn.execute(
                    text("SELECT count(DISTINCT boot) FROM received WHERE vehicle = :v"), {"v": vehicle}
                ).scalar()
                dup_positions = conn.execute(
                    text(
                        "SELECT count(*) FROM (SELECT ts FROM positions p JOIN vehicles v ON v.id = p.vehicle_id "
                        "WHERE v.wire_id = :v GROUP BY ts HAVING count(*) > 1) d"
                    ),
                    {"v": vehicle},
                ).scalar()
                dead = conn.execute(text("SELECT count(*) FROM dead_letters")).scalar()
            engine.dispose()
            assert boots == 2 and dup_positions == 0 and dead == 0
        finally:
            if hub is not None:
                _stop(hub)
            _stop(fleet)
