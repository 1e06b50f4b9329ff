"""`anycar fleet plan --accept` pushes the routes as the API's accept does (issue 15, one code
path: ``service.accept``): the CLI, in its own process on the fleet's PostgreSQL database, makes
the plan in force and one signed ``route`` command per vehicle; the running fleet server's command
sender (it polls for pending commands) publishes it over the system Mosquitto and the real hub
(PICKMAN, uplink) accepts it. A second ``--accept`` sends version 2, which replaces the first."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from test_delivery_exec_e2e import DEPOT, ORDERS, system, until

pytestmark = pytest.mark.timeout(150)


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ANYCAR_FLEET_DB=url)
    return subprocess.run(
        [str(Path(sys.executable).parent / "anycar"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


async def test_cli_accept_pushes_the_routes_to_the_hub(tmp_path: Path) -> None:
    async with system(tmp_path) as s:
        r = await s.api.post("/api/orders", json=ORDERS, headers=s.auth("dispatcher"))
        assert r.status_code == 201, r.text
        url = s.engine.url.render_as_string(hide_password=False)
        plan_args = ("fleet", "plan", "--tenant", "acme", "--depot", f"{DEPOT['lat']},{DEPOT['lon']}")
        done = await asyncio.to_thread(
            _cli, url, *plan_args, "--shift", "08:00-18:00", "--time-limit", "0.5", "--accept"
        )
        assert done.returncode == 0, done.stderr
        route = await s.get(f"/api/vehicles/{s.vehicle}/route")
        assert route["version"] == 1 and sorted(x["order"] for x in route["stops"]) == ["D-1", "D-2"]
        line = f"route v1 pushed to {s.vehicle}: 2 stops, command {route['command']}"
        assert line in " ".join(done.stdout.split()), done.stdout

        # The server sends what the CLI left pending; the hub checks the signature and takes it.
        await until(
            lambda: s.get(f"/api/commands/{route['command']}"),
            lambda c: c["status"] == "accepted",
            "the hub accepting the CLI's route",
        )
        shown = s.keeper.view()["route"]
        assert shown["version"] == 1 and [x["order"] for x in shown["stops"]] == [
            x["order"] for x in route["stops"]
        ]

        # Plan and accept again from the CLI (JSON): version 2 replaces version 1 on the hub.
        done = await asyncio.to_thread(_cli, url, *plan_args, "--time-limit", "0.5", "--accept", "--json")
        assert done.returncode == 0, done.stderr
        body: dict[str, Any] = json.loads(done.stdout)
        (pushed,) = body["pushed"]
        assert body["status"] == "accepted" and pushed["vehicle"] == s.vehicle and pushed["version"] == 2
        await until(
            lambda: s.get(f"/api/commands/{pushed['command']}"),
            lambda c: c["status"] == "accepted",
            "version 2 accepted",
        )
        assert s.keeper.view()["route"]["version"] == 2
