"""Two ingest workers and two API processes on one PostgreSQL and one Mosquitto, and one of each
killed under load: the fleet's own commands (``anycar fleet ingest``, ``anycar fleet serve
--workers 0``), nothing of the bench inside them.

While the load generator publishes, worker A is killed with SIGKILL (mid-batch: at the offered
rate a batch is always open) and started again with its id after ``restart_after_s`` (what a
supervisor does; its broker session holds what it had not acknowledged), and API process 1 is
killed with SIGKILL. Then: every published message is stored exactly once (rows counted against
what was published: the resent ones were dropped by dedup), and a live-feed client of API
process 2 kept receiving positions after API process 1 died.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess  # nosec B404 # the scenario starts the fleet's own processes and kills them
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from anycar.bench.fleet import Broker, counts, database, register
from anycar.errors import ConfigError


def _fleet(*args: str, log: Path) -> subprocess.Popen[str]:
    """One of the fleet's own processes; stderr to ``log`` (an unread pipe could fill and stall it)."""
    return subprocess.Popen(  # nosec B603 # our own interpreter and CLI, fixed arguments
        [sys.executable, "-m", "anycar.cli.main", "fleet", *args],
        stdout=subprocess.PIPE,
        stderr=open(log, "ab"),
        text=True,
    )


def _ready(proc: subprocess.Popen[str], timeout: float = 60.0) -> dict[str, Any]:
    if proc.stdout is None:
        raise ConfigError("no stdout")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise ConfigError(f"fleet process {proc.args!r} exited (its log is beside the broker's)")
        if line.startswith("anycar fleet ready "):
            return dict(json.loads(line[len("anycar fleet ready ") :]))
    raise ConfigError("fleet process not ready in time")


async def _live_client(url: str, token: str, seen: list[float], stop: asyncio.Event) -> None:
    import websockets

    async with websockets.connect(url) as ws:
        await ws.send(token)
        await ws.recv()  # hello
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                msg = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                if msg.get("type") == "position":
                    seen.append(time.time())


def _stop(procs: list[subprocess.Popen[str]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)


async def run(
    *, vehicles: int = 50, rate: float = 300.0, seconds: float = 10.0, restart_after_s: float = 2.0
) -> dict[str, Any]:
    from anycar.fleet import registry
    from anycar.fleet.db import make_engine

    folder = Path(tempfile.mkdtemp(prefix="anycar-fleet-cluster-"))
    broker = Broker(folder, persistence=True).start()
    procs: list[subprocess.Popen[str]] = []
    try:
        with database("postgres", folder) as url:
            engine = make_engine(url)
            prefix = f"K{uuid.uuid4().hex[:6]}-"
            register(engine, prefix, vehicles)
            token = registry.add_user(engine, "bench", "watcher", "viewer")
            mqtt = f"mqtt://127.0.0.1:{broker.port}"
            ids = [f"cluster-{uuid.uuid4().hex[:6]}-{n}" for n in ("a", "b")]
            ingest = {
                wid: _fleet(
                    "ingest", "--db", url, "--mqtt", mqtt, "--worker-id", wid, log=folder / f"{wid}.log"
                )
                for wid in ids
            }
            procs += ingest.values()
            apis = [
                _fleet(
                    "serve",
                    "--db",
                    url,
                    "--mqtt",
                    mqtt,
                    "--workers",
                    "0",
                    "--port",
                    "0",
                    "--osmand-port",
                    "0",
                    log=folder / f"api{n}.log",
                )
                for n in range(2)
            ]
            procs += apis
            for p in ingest.values():
                _ready(p)
            api_urls = [str(_ready(p)["api"]) for p in apis]
            ws = [u.replace("http://", "ws://") + "/api/live" for u in api_urls]
            seen: list[list[float]] = [[], []]
            stop = asyncio.Event()
            clients = [asyncio.create_task(_live_client(ws[i], token, seen[i], stop)) for i in (0, 1)]
            await asyncio.sleep(1.0)
            load0 = os.getloadavg()
            pub = await asyncio.to_thread(
                subprocess.Popen,  # nosec B603 # our own interpreter and module, fixed arguments
                [
                    sys.executable,
                    "-m",
                    "anycar.bench.fleet_procs",
                    "publish",
                    str(broker.port),
                    str(vehicles),
                    str(rate),
                    str(seconds),
                    prefix,
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            started = time.time()
            await asyncio.sleep(seconds * 0.3)
            victim = ingest[ids[0]]
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            killed_worker_at = time.time() - started
            apis[0].send_signal(signal.SIGKILL)
            apis[0].wait(10)
            killed_api_at = time.time()
            await asyncio.sleep(restart_after_s)
            again = _fleet(
                "ingest", "--db", url, "--mqtt", mqtt, "--worker-id", ids[0], log=folder / "again.log"
            )
            procs.append(again)
            _ready(again)
            out, _ = await asyncio.to_thread(pub.communicate, timeout=seconds + 180)
            sent = json.loads(out.strip().splitlines()[-1])
            deadline = time.time() + 90
            rows = counts(engine)
            while rows["positions"] < sent["published"] and time.time() < deadline:
                await asyncio.sleep(0.5)
                rows = counts(engine)
            await asyncio.sleep(1.0)
            rows = counts(engine)
            stop.set()
            for c in clients:
                with contextlib.suppress(Exception):
                    await c
            engine.dispose()
            after = [t for t in seen[1] if t > killed_api_at]
            return {
                "vehicles": vehicles,
                "offered_rate": rate,
                "seconds": seconds,
                "published": sent["published"],
                "acked_by_broker": sent["acked"],
                "rows": rows,
                # one position and 10 signal values per message; ``received`` is no count here:
                # the restarted worker's maintenance prunes it below each boot's floor
                "nothing_lost": rows["positions"] >= sent["published"],
                "stored_once": rows["positions"] == sent["published"]
                and rows["signal_values"] == 10 * sent["published"],
                "worker_killed_at_s": round(killed_worker_at, 2),
                "worker_restarted_after_s": restart_after_s,
                "live_positions_api1_before_kill": len(seen[0]),
                "live_positions_api2_total": len(seen[1]),
                "live_positions_api2_after_api1_killed": len(after),
                "live_last_api2_s_after_kill": round(max(after) - killed_api_at, 2) if after else None,
                "loadavg": {"before": load0, "after": os.getloadavg()},
            }
    finally:
        _stop(procs)
        broker.stop()
        shutil.rmtree(folder, ignore_errors=True)
