"""The whole system in one command: the fleet cloud, an MQTT broker and a mixed fleet of hubs.

This is the composition root that assembles both sides, so it lives beside them, not in them:
it starts the embedded MQTT broker (``anycar.embedded_broker``), the fleet cloud
(``anycar.fleet.server`` on SQLite: ingest, API, live feed, console), registers the tenant, an
operator and every vehicle in the fleet registry (each vehicle gets its MQTT credentials), plans
the rounds on real streets (``anycar.fleetdemo.plan`` on ``anycar.roads``) and starts the hubs
in child processes (``anycar.fleetdemo.hubs``), which talk to the fleet only over MQTT.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from anycar.errors import AnycarError, ConfigError
from anycar.fleetdemo import day as demo_day
from anycar.fleetdemo.plan import VehiclePlan, fleet_members, load_spec, plan_fleet
from anycar.fleetdemo.stations import SwapDemo

DEFAULT_API_PORT = 8090
FOLLOW_S = 1.0  # how often the demo reads the route outcomes and proofs of delivery
ETA_INTERVAL_S = 1.0  # the fleet's live ETA pass (its first ETA webhook carries the PIN)
READY_TIMEOUT_S = 180.0


class HubProcessError(AnycarError):
    """A hub process that did not come up: the demo says which and why, in one line."""

    code = 500
    reason = "hub_process"


@dataclass
class DemoOptions:
    duration: float = 0.0  # seconds; 0: until Ctrl-C
    seed: int = 0
    vehicles: int | None = None  # cap on the shipped fleet (default: all of it)
    hub_processes: int = 1
    speedup: float = 1.0
    api_port: int = DEFAULT_API_PORT
    host: str = "127.0.0.1"
    status_every_s: float = 15.0  # a line on what the fleet sees; 0: quiet (--json)


def _split(items: list[Any], parts: int) -> list[list[Any]]:
    parts = max(1, min(parts, len(items)))
    return [items[i::parts] for i in range(parts)]


def _rss_mb(pid: int) -> float:
    """Resident memory of a live process in MB, from /proc (Linux)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return float("nan")


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of a live process, from /proc (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _ready(proc: asyncio.subprocess.Process, timeout: float) -> dict[str, Any]:
    if proc.stdout is None:
        raise HubProcessError("hub process without stdout")
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise HubProcessError(f"hub process {proc.pid}: not ready after {timeout:.0f} s")
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), left)
        except TimeoutError:
            raise HubProcessError(f"hub process {proc.pid}: not ready after {timeout:.0f} s") from None
        if not line:
            raise HubProcessError(
                f"hub process {proc.pid} ended before it was ready (exit {await proc.wait()})"
            )
        with contextlib.suppress(ValueError):
            doc = json.loads(line)
            if isinstance(doc, dict) and "error" in doc:
                raise HubProcessError(f"hub process {proc.pid}: {doc['error']}")
            if isinstance(doc, dict) and "ready" in doc:
                return doc


async def run_fleet_demo(opts: DemoOptions, out: Any = None) -> dict[str, Any]:
    """Run the whole system until ``opts.duration`` passes or SIGINT/SIGTERM; return a summary."""
    from anycar.cli.ports import port_free
    from anycar.embedded_broker import EmbeddedBroker
    from anycar.fleet import queries
    from anycar.fleet.keys import load_or_create, public_b64
    from anycar.fleet.migrate import upgrade
    from anycar.fleet.registry import add_user, add_vehicle, tenant_id
    from anycar.fleet.server import FleetConfig, FleetServer
    from anycar.fleetdemo.delivery import load_delivery
    from anycar.fleetdemo.follow import DayFollower
    from anycar.fleetdemo.recipients import EVENTS, Recipients
    from anycar.roads import load_network

    say = out or (lambda text: print(text, flush=True))
    spec = load_spec()
    delivery = load_delivery()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    api_port = opts.api_port if opts.api_port and port_free(opts.host, opts.api_port) else 0
    with tempfile.TemporaryDirectory(prefix="anycar-fleetdemo-") as tmp:
        folder = Path(tmp)
        # the broker starts once the vehicles' logins are minted: it lets in only those and the fleet's
        broker = EmbeddedBroker()
        fleet_login = ("fleet", secrets.token_urlsafe(24))
        signing = folder / "fleet-signing.pem"  # the fleet's key: it signs the route commands
        day_clock = demo_day.DayClock(opts.speedup)  # demo-route: the delivery day's "now"
        server = FleetServer(
            FleetConfig(
                db_url=f"sqlite:///{folder / 'fleet.sqlite3'}",
                mqtt=broker.url,
                mqtt_username=fleet_login[0],
                mqtt_password=fleet_login[1],
                worker_id=f"fleetdemo-{os.getpid()}",
                # plain subscriptions: the embedded broker (rumqttd) serves only the first filter of
                # a shared group, so events, command results and proofs of delivery never came
                group="",
                host=opts.host,
                api_port=api_port,
                osmand_port=0,
                signing_key=signing,
                eta_interval_s=ETA_INTERVAL_S,
                ocpp_port=0,  # swap-vehicle: the CSMS the demo's swap stations connect to
                # the logistics room lives the demo's day (failures, retry times, outcomes); the
                # CSMS stays on the wall clock its station simulators speak
                logistics_clock=day_clock,
            )
        )
        recipients = Recipients(delivery, opts.host)
        procs: list[asyncio.subprocess.Process] = []
        readers: list[asyncio.Task[None]] = []
        hub_lines: list[dict[str, Any]] = []
        http: httpx.Client | None = None
        swaps: SwapDemo | None = None
        try:
            upgrade(server.engine)
            members = fleet_members(spec, opts.vehicles)
            creds = {vin: add_vehicle(server.engine, vin, g.brand, tenant=spec.tenant) for vin, g in members}
            broker.allow(dict([fleet_login], **{c.username: c.password for c in creds.values()}))
            broker.start()
            await server.start()
            await recipients.start()
            api = server.ready()["api"]
            say(f"console: {api}/")
            engine = server.engine
            tid = tenant_id(engine, spec.tenant, create=True)
            token = add_user(engine, spec.tenant, "operator", "owner")
            say(f"operator token (tenant {spec.tenant}, role owner): {token}")
            say(f"api: {api}/api/positions/last  (Authorization: Bearer TOKEN)   mqtt: {broker.url}")
            pickmans = [vin for vin, g in members if g.brand == "kaiyun_pickman"]
            http = httpx.Client(base_url=api, timeout=60.0, headers={"Authorization": f"Bearer {token}"})
            # the recipients' phones: the customer webhooks (ETA with the PIN, delivered, failed)
            hook = await asyncio.to_thread(
                http.post, "/api/webhooks", json={"url": f"{recipients.url}/hook", "events": EVENTS}
            )
            if hook.status_code != 201:
                raise HubProcessError(f"the recipients' webhook was refused: {hook.text[:200]}")
            recipients.secret = hook.json()["secret"]
            day = None
            if pickmans:  # the day's orders, planned by the logistics room on the road network
                day = await asyncio.to_thread(demo_day.plan_day, http, spec.depot, pickmans, seed=opts.seed)
                say(
                    f"orders: {day.imported} imported, {sum(len(r) for r in day.rounds.values())} planned "
                    f"on {len(day.rounds)} PICKMANs ({day.solver}, {day.matrix}), plan {day.plan_id} proposed"
                    + (f", {len(day.unservable)} unservable" if day.unservable else "")
                )
            given = {vin: [p for _, p in stops] for vin, stops in (day.rounds if day else {}).items()}
            park: dict[str, dict[int, float]] = {}
            if pickmans:  # swap-vehicle: two swap stations; the low PICKMAN's round gets a swap stop
                swaps = SwapDemo(server, spec.tenant, folder, say, opts.speedup)
                net = load_network(spec.network)
                await swaps.setup(net, pickmans)
                if day is not None:
                    await swaps.plan_swap(day, net, spec.depot)
                    park = swaps.with_swap_stop(given)
                say(f"swap stations: {', '.join(swaps.points)}; planned: {swaps.planned}")
            plans = plan_fleet(
                spec, folder / "routes", seed=opts.seed, vehicles=opts.vehicles, given=given, park_s=park
            )
            fleet_key = public_b64(load_or_create(signing))
            vehicles = []
            for plan in plans:
                cred = creds[plan.vin]
                vehicles.append(
                    {
                        "vin": plan.vin,
                        "brand": plan.brand,
                        "route_file": plan.route_file,
                        "cycle": plan.cycle,
                        "seed": plan.seed,
                        "username": cred.username,
                        "password": cred.password,
                        "fleet_keys": [fleet_key],
                        "driver": plan.planned,  # drives the route the fleet pushes it
                        **(swaps.vehicle_extra(plan.vin) if swaps else {}),
                    }
                )
            spawned = time.monotonic()
            groups = _split(vehicles, opts.hub_processes)
            for i, group in enumerate(groups):
                spec_file = folder / f"hubs-{i}.json"
                spec_file.write_text(
                    json.dumps(
                        {
                            "broker": broker.url,
                            "folder": str(folder / "hubs"),
                            "speedup": opts.speedup,
                            "vehicles": group,
                            "depot": list(spec.depot),
                            "doorbell": recipients.url,
                            "doorbell_token": recipients.token,
                            "commands": True,  # the day's clock; the swap stations' robot
                        }
                    ),
                    "utf-8",
                )
                spec_file.chmod(0o600)  # it holds the vehicles' MQTT passwords and the doorbell token
                procs.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable,
                        "-m",
                        "anycar.fleetdemo.hubs",
                        str(spec_file),
                        stdout=asyncio.subprocess.PIPE,
                        stdin=asyncio.subprocess.PIPE,
                    )
                )
            dashboards: dict[str, str] = {}
            pod_keys: dict[str, str] = {}
            for proc in procs:
                ready = await _ready(proc, READY_TIMEOUT_S)
                dashboards.update(ready["dashboards"])
                pod_keys.update(ready.get("pod_keys") or {})
            if swaps is not None:
                swaps.watch(procs, groups)
            started, cpu0 = time.monotonic(), {p.pid: _cpu_of(p.pid) for p in procs}
            startup_s = started - spawned
            main0 = time.process_time()
            wall0 = day_clock.start()  # the day starts: DAY_START now, and the drivers know it
            for proc in procs:
                assert proc.stdin is not None  # nosec B101 # created with stdin=PIPE
                day_line = {"day": {"wall0": wall0, "start": demo_day.DAY_START, "speedup": opts.speedup}}
                proc.stdin.write((json.dumps(day_line) + "\n").encode())
                await proc.stdin.drain()

            def clock() -> str:
                return day_clock.hhmm()

            readers = [
                asyncio.create_task(
                    _hub_lines(proc, hub_lines, say, clock, swaps.hub_line if swaps else None),
                    name="fleetdemo-hub-lines",
                )
                for proc in procs
            ]
            say(
                f"{len(plans)} vehicles driving on the streets of {spec.network} ({len(procs)} hub process(es)):"
            )
            for plan in plans:
                orders = " ".join(o for o, _ in day.rounds.get(plan.vin, [])) if day else ""
                say(
                    f"  {plan.vin}  {plan.brand:<15} {plan.roads:<8} round {plan.round_m / 1000:.1f} km"
                    f"  cabin {dashboards.get(plan.vin, '')}" + (f"  orders {orders}" if orders else "")
                )
            follower = None
            if day is not None:  # once the hubs listen, accepting the plan pushes their routes
                await _online(http, sorted(day.rounds), READY_TIMEOUT_S)
                pushed = await asyncio.to_thread(demo_day.accept, http, day)
                say(
                    f"{clock()} plan {day.plan_id} accepted: routes pushed to "
                    + ", ".join(f"{p['vehicle']} (v{p['version']}, {p['stops']} stops)" for p in pushed)
                )
                follower = DayFollower(http, day, spec.depot, clock, say)
            if opts.duration > 0:
                loop.call_later(opts.duration, stop.set)
            last_status = time.monotonic()
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), FOLLOW_S)
                if stop.is_set():
                    break
                if follower is not None:
                    await asyncio.to_thread(follower.poll)
                if opts.status_every_s and time.monotonic() - last_status >= opts.status_every_s:
                    last_status = time.monotonic()
                    seen = await asyncio.to_thread(queries.last_positions, engine, tid)
                    moving = sum(1 for p in seen if (p.get("speed") or 0) > 0)
                    say(f"fleet: {len(seen)} of {len(plans)} vehicles reporting, {moving} moving")
            if follower is not None:  # what arrived in the last moments
                await asyncio.to_thread(follower.poll)
            wall = time.monotonic() - started
            hub_cpu = sum(_cpu_of(p.pid) - cpu0[p.pid] for p in procs)
            main_cpu = time.process_time() - main0
            rss = sum(_rss_mb(p.pid) for p in procs)
            net = load_network(spec.network)
            summary = _summary(queries, engine, tid, plans, net)
            if day is not None:
                summary["orders"] = day.summary()
                summary["orders"]["board"] = await asyncio.to_thread(_board, http)
            if follower is not None:
                summary["delivery"] = follower.summary()
                summary["delivery"]["rounds"] = [e for e in hub_lines if e.get("event") == "round"]
                summary["delivery"]["stops"] = [e for e in hub_lines if e.get("event") == "stop"]
                summary["delivery"]["driver_crashes"] = [e for e in hub_lines if e.get("event") == "crash"]
                summary["delivery"]["pins_sent"] = len(recipients.pins)
                summary["delivery"]["hub_keys"] = pod_keys
                proofs = await asyncio.to_thread(http.get, "/api/logistics/proofs")  # the console's viewer
                summary["delivery"]["proofs_in_console"] = len(proofs.json().get("proofs", []))
            summary["cpu"] = {
                "wall_s": round(wall, 1),
                "hub_processes": len(procs),
                "hubs_startup_s": round(startup_s, 1),
                "hubs_cpu_percent": round(100 * hub_cpu / wall, 1) if wall else None,
                "per_vehicle_cpu_percent": round(100 * hub_cpu / wall / len(plans), 1) if wall else None,
                "fleet_cloud_cpu_percent": round(100 * main_cpu / wall, 1) if wall else None,
                "hubs_rss_mb": round(rss, 1),
            }
            summary["console"] = f"{api}/"
            if swaps is not None:
                await asyncio.sleep(0)
                summary["swap"] = await asyncio.to_thread(swaps.summary)
            return summary
        finally:
            if swaps is not None:
                await swaps.stop()
            for proc in procs:
                if proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    await asyncio.wait_for(proc.wait(), 30)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
            for reader in readers:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
            if http is not None:
                http.close()
            await recipients.stop()
            await server.stop()
            broker.stop()


async def _online(http: httpx.Client, vins: list[str], timeout: float) -> None:
    """Wait until the fleet has seen each of ``vins`` come online: a hub says so only once it
    has subscribed to its commands, and a command sent before that is lost with no session."""
    deadline = time.monotonic() + timeout
    while True:
        rows = (await asyncio.to_thread(http.get, "/api/vehicles")).json()
        missing = sorted(set(vins) - {r["id"] for r in rows if r.get("online")})
        if not missing:
            return
        if time.monotonic() > deadline:
            raise HubProcessError(f"not online after {timeout:.0f} s: {', '.join(missing)}")
        await asyncio.sleep(0.2)


async def _hub_lines(
    proc: asyncio.subprocess.Process, into: list[dict[str, Any]], say: Any, clock: Any, also: Any = None
) -> None:
    """The hubs process's lines after it is ready (so its pipe never fills): the drivers' rounds
    are said as they are taken; everything is kept for the summary and handed to ``also`` (the
    swap stations' view of where vehicles park)."""
    if proc.stdout is None:
        return
    while line := await proc.stdout.readline():
        with contextlib.suppress(ValueError):
            doc = json.loads(line)
            if not isinstance(doc, dict):
                continue
            into.append(doc)
            if also is not None:
                also(doc)
            if doc.get("event") == "round":
                stops = " ".join(str(s) for s in doc.get("stops", [])) or "back to the depot"
                say(
                    f"{clock()} {doc['vehicle']} drives route v{doc['version']} (plan {doc['plan']}): {stops}"
                )


def _board(http: httpx.Client) -> dict[str, int]:
    """How many of the day's orders are in each status on the logistics room's board."""
    counts: dict[str, int] = {}
    for row in http.get("/api/orders").raise_for_status().json():
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return counts


def _summary(queries: Any, engine: Any, tid: int, plans: list[VehiclePlan], net: Any) -> dict[str, Any]:
    """Per vehicle: positions stored, distinct places, how far from the nearest road they were."""
    out: dict[str, Any] = {"vehicles": {}}
    for plan in plans:
        track = queries.track(engine, tid, plan.vin, 0.0, 1e13) or []
        points = [
            (p["lat"], p["lon"]) for p in track if p.get("lat") is not None and p.get("lon") is not None
        ]
        off = net.distance_to_roads(points[-4000:]) if points else []
        visited = _visited(points, plan.stops[1:] if plan.brand == "kaiyun_pickman" else plan.stops)
        out["vehicles"][plan.vin] = {
            "planned": plan.planned,
            "stops": len(plan.stops) - (1 if plan.brand == "kaiyun_pickman" else 0),
            "stops_visited": visited,
            "brand": plan.brand,
            "positions": len(track),
            "distinct": len({(round(a, 6), round(b, 6)) for a, b in points}),
            "max_off_road_m": round(float(max(off)), 2) if len(off) else None,
            "round_m": plan.round_m,
        }
    out["reporting"] = sum(1 for v in out["vehicles"].values() if v["positions"])
    return out


def _visited(points: list[tuple[float, float]], stops: list[list[float]], near_m: float = 25.0) -> int:
    """How many of the stops the stored track came within ``near_m`` of."""
    if not points or not stops:
        return 0
    from anycar.roads.geo import haversine_m

    track = np.asarray(points, dtype=float)
    return sum(
        1 for lat, lon in stops if float(np.min(haversine_m(track[:, 0], track[:, 1], lat, lon))) <= near_m
    )


def main_options(args: Any) -> DemoOptions:
    if args.hub_processes < 1:
        raise ConfigError("--hub-processes: at least 1")
    return DemoOptions(
        duration=args.duration,
        seed=args.seed,
        vehicles=args.vehicles,
        hub_processes=args.hub_processes,
        speedup=args.speedup,
        api_port=args.fleet_port,
        status_every_s=0.0 if args.json else 15.0,
    )
