"""The fleet demo's battery-swap stations (issue 16 item 9) and the physical world around them.

Two stations from ``data/stations.yaml`` stand in the Helsinki extract: registered with the
CSMS (``anycar.swap``), stocked with charged PICKMAN packs, placed on the console's map. They
run as station simulators in a child process (``python -m anycar.fleetdemo.stations SPEC``),
speaking only OCPP 2.1 over WebSocket to the fleet server's CSMS, as real stations would.

One PICKMAN starts the day low on charge (``swapper``): its planned round is given to
``anycar.logistics.swapstops``, which inserts a swap stop (station, place, arrival) and reserves
a pack through the CSMS (ReserveNow); the stop goes into the day's proposal
(``anycar.logistics.swaproute``), so the route the fleet pushes the vehicle has it in its place
(``kind: swap``, the station, the reservation id, the window), and its driver drives it from there. The rest is the physical world the demo plays: when the hub
process says the vehicle parked within ``NEAR_M`` of a station (its ``parked`` line, whichever
way its route brought it there), the vehicle "drives into the bay" — the station presents its
idToken (Authorize → RequestBatterySwap → BatteryIn → BatteryOut) — and the pack the station
handed out is fitted into the vehicle's simulator (``fit_pack``), as the robot would. From there
the hub reports the new pack and the fleet reconciles it (``anycar.swap.reconcile``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from anycar.errors import AnycarError, ConfigError

NEAR_M = 60.0  # a vehicle parked this close to a station is at its bay
READY_TIMEOUT_S = 60.0
WHERE = "anycar/fleetdemo/data/stations.yaml"


@dataclass(frozen=True, slots=True)
class Site:
    id: str
    name: str
    lat: float
    lon: float
    layout: str
    first_serial: int
    soc: float


@dataclass(frozen=True, slots=True)
class StationsSpec:
    sites: list[Site]
    pack_first: int
    pack_soh: float
    pack_kwh: float
    swapper_index: int
    swapper_soc: float
    park_s: float


def serial(n: int) -> str:
    """A PICKMAN pack serial as the BMS frame's integer becomes it (the profile's mapping)."""
    return f"KYB{n:08d}"


def load_stations(text: str | None = None) -> StationsSpec:
    if text is None:
        text = resources.files("anycar.fleetdemo").joinpath("data/stations.yaml").read_text("utf-8")
    try:
        doc = yaml.safe_load(text)
        sites = [
            Site(str(s["id"]), str(s["name"]), float(s["lat"]), float(s["lon"]), str(s["layout"]),
                 int(s["first_serial"]), float(s["soc"]))
            for s in doc["stations"]
        ]  # fmt: skip
        packs, swapper = doc["packs"], doc["swapper"]
        return StationsSpec(
            sites, int(packs["first_serial"]), float(packs["soh"]), float(packs["capacity_kwh"]),
            int(swapper["index"]), float(swapper["soc"]), float(swapper["park_s"]),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"{WHERE}: {type(exc).__name__}: {exc}".splitlines()[0]) from None


def _clock_s(text: str) -> float:
    parts = [int(x) for x in str(text).split(":")]
    return parts[0] * 3600 + parts[1] * 60 + (parts[2] if len(parts) > 2 else 0)


@dataclass
class SwapDemo:
    """The stations' side of the demo: set up before the hubs start, watched while they drive."""

    server: Any
    tenant: str
    folder: Path
    say: Any
    speedup: float = 1.0
    spec: StationsSpec = field(default_factory=load_stations)
    tokens: dict[str, str] = field(default_factory=dict)
    packs: dict[str, str] = field(default_factory=dict)  # vin -> its pack serial at the start
    points: dict[str, tuple[float, float]] = field(default_factory=dict)  # station -> its bay
    swapper: str | None = None
    planned: dict[str, Any] = field(default_factory=dict)  # the swap stop and its reservation
    events: list[dict[str, Any]] = field(default_factory=list)
    proc: asyncio.subprocess.Process | None = None
    _replies: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _busy: set[str] = field(default_factory=set)
    _hubs: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)

    # before the hubs ---------------------------------------------------------------------------
    async def setup(self, net: Any, pickmans: list[str]) -> None:
        """Register, stock and place the stations; give each PICKMAN its pack and idToken; start
        the stations' process and wait until every station has booted at the CSMS."""
        from anycar.fleet.registry import tenant_id
        from anycar.swap import registry
        from anycar.swap.console_api import set_site

        engine = self.server.engine
        spec = self.spec
        nodes, _ = net.snap([(s.lat, s.lon) for s in spec.sites], "delivery")
        stations = []
        tid = tenant_id(engine, self.tenant, create=True)
        for site, node in zip(spec.sites, nodes, strict=True):
            point = (round(float(net.node_lat[node]), 6), round(float(net.node_lon[node]), 6))
            self.points[site.id] = point
            password = registry.add_station(engine, site.id, tenant=self.tenant, layout=site.layout)
            from anycar.swap.policy import load_layout

            layout = load_layout(site.layout)
            serials = [serial(site.first_serial + i) for i in range(layout.slots - layout.empty_slots)]
            registry.stock_station(engine, site.id, site.layout, serials=serials, soc=site.soc)
            set_site(engine, tid, site.id, point[0], point[1], site.name)
            stations.append(
                {"id": site.id, "password": password, "layout": site.layout,
                 "packs": [{"serial": s, "soc": site.soc, "soh": layout.soh, "capacity_kwh": layout.capacity_kwh}
                           for s in serials]}
            )  # fmt: skip
        if -len(pickmans) <= spec.swapper_index < len(pickmans):
            self.swapper = pickmans[spec.swapper_index]
        for i, vin in enumerate(pickmans):
            self.packs[vin] = serial(spec.pack_first + i)
            registry.add_pack(
                engine, self.packs[vin], chemistry="LFP", capacity_kwh=spec.pack_kwh, soh=spec.pack_soh,
                soc=spec.swapper_soc if vin == self.swapper else 90.0, vehicle=vin,
            )  # fmt: skip
            self.tokens[vin] = registry.add_token(engine, vin)
        spec_file = self.folder / "stations.json"
        spec_file.write_text(
            json.dumps({"url": self.server.csms.url, "speed": self.speedup, "stations": stations}), "utf-8"
        )
        spec_file.chmod(0o600)  # the stations' passwords
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "anycar.fleetdemo.stations", str(spec_file),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        ready = await self._line(self.proc, READY_TIMEOUT_S)
        if "ready" not in ready:
            raise ConfigError(f"swap stations: {ready.get('error', ready)}")
        reader = asyncio.create_task(self._read_stations(), name="demo-stations")
        reader.add_done_callback(self._died)
        self._tasks.append(reader)

    def vehicle_extra(self, vin: str) -> dict[str, Any]:
        """What a PICKMAN's hub spec gets: its pack, and the swapper's low charge."""
        if vin not in self.packs:
            return {}
        extra: dict[str, Any] = {
            "pack": {"serial": self.packs[vin], "soh": self.spec.pack_soh, "capacity_kwh": self.spec.pack_kwh}
        }
        if vin == self.swapper:  # its swap stop comes in the route the fleet pushes it
            extra["soc"] = self.spec.swapper_soc
        return extra

    async def plan_swap(self, day: Any, net: Any, depot: tuple[float, float]) -> None:
        """The swapper's planned round through ``anycar.logistics.swapstops``: a swap stop where its
        charge runs short, and a pack reserved for it at that station (OCPP ReserveNow)."""
        from anycar.logistics import swapstops
        from anycar.logistics.problem import PlanVehicle
        from anycar.logistics.settings import vehicle_type
        from anycar.logistics.swaproute import route_from_plan

        vin = self.swapper
        body = getattr(day, "body", None) or {}
        found = [r for r in body.get("routes", []) if str(r.get("vehicle")) == vin]
        if vin is None or not found:
            self.planned = {"vehicle": vin, "why": "no planned round for the swapping PICKMAN"}
            return
        route = route_from_plan(found[0])
        kind = vehicle_type("kaiyun_pickman")
        vehicle = PlanVehicle(vin, depot, depot, kind.payload_kg, kind.cargo_m3, kind.battery_kwh, kind.kwh_per_km,
                              soc=self.spec.swapper_soc / 100)  # fmt: skip
        now = time.time()
        from anycar.fleetdemo.day import DAY_START

        day_start = now - _clock_s(DAY_START)  # the demo's clock: its first second is DAY_START
        sites = dict(self.points)
        stations = await asyncio.to_thread(
            swapstops.stations_from_tables, self.server.engine, sites, now=now, day_start=day_start
        )
        decision = await asyncio.to_thread(
            swapstops.plan_swap, route, vehicle, stations, swapstops.RoadProvider(net, "delivery")
        )
        if decision.swap is None:
            self.planned = {
                "vehicle": vin,
                "needed": decision.needed,
                "why": decision.reason or "no swap needed",
            }
            return
        stop = decision.swap
        await swapstops.reserve(
            self.server.csms, stop, self.tokens[vin], now_s=now - day_start, day_start=day_start
        )
        customers = sum(
            1 for s in route.stops[: stop.after + 1] if s.order and s.action in ("drop", "pickup")
        )
        self.planned = {**stop.to_json(), "insert_at": customers}
        # demo-route: the swap stop goes into the proposal, so accepting it pushes the swap to the
        # vehicle in its route (kind swap: station, reservation, window) with the deliveries
        from anycar.fleet.registry import tenant_id
        from anycar.logistics.swaproute import add_to_plan

        tid = tenant_id(self.server.engine, self.tenant)
        day.body = await asyncio.to_thread(add_to_plan, self.server.engine, tid, day.plan_id, decision)
        self.planned["in_route"] = True

    def with_swap_stop(self, given: dict[str, list[tuple[float, float]]]) -> dict[str, dict[int, float]]:
        """Put the planned swap stop into the swapper's round (``given``, in place); the stops
        where it parks for the robot (``plan_fleet``'s ``park_s``)."""
        vin, at = self.swapper, self.planned.get("insert_at")
        if vin is None or at is None or vin not in given:
            return {}
        given[vin].insert(int(at), self.points[self.planned["station"]])
        return {vin: {int(at): self.spec.park_s}}

    # while the hubs drive ------------------------------------------------------------------------
    def watch(self, procs: list[asyncio.subprocess.Process], groups: list[list[dict[str, Any]]]) -> None:
        """Which hubs process drives which vehicle (``fit_pack`` goes to its stdin); the lines
        come through ``hub_line`` from the demo's one reader of each process."""
        for proc, group in zip(procs, groups, strict=True):
            for v in group:
                self._hubs[v["vin"]] = proc

    def _died(self, task: asyncio.Task[Any]) -> None:
        """A task that fails is said, in one line, and kept in the summary (never silent)."""
        if not task.cancelled() and task.exception() is not None:
            why = f"{task.get_name()} died: {type(task.exception()).__name__}: {task.exception()}"[:300]
            self.events.append({"at": time.time(), "error": why})
            self.say(f"swap stations: {why}")

    def hub_line(self, doc: dict[str, Any]) -> None:
        """A line of a hubs process (``parked``: a swap when at a station's bay; the robot's
        ``fitted`` / ``refused`` answers)."""
        if doc.get("parked") and doc["parked"] in self.tokens:
            self._parked(doc)
        elif "fitted" in doc or "refused" in doc:
            self.events.append({"at": time.time(), **doc})

    def _parked(self, doc: dict[str, Any]) -> None:
        from anycar.roads.geo import haversine_m

        vin = str(doc["parked"])
        if (
            vin in self._busy
            or not isinstance(doc.get("lat"), float | int)
            or not isinstance(doc.get("lon"), float | int)
        ):
            return
        for sid, (lat, lon) in self.points.items():
            if float(haversine_m(lat, lon, float(doc["lat"]), float(doc["lon"]))) <= NEAR_M:
                self._busy.add(vin)
                task = asyncio.create_task(self._swap(vin, sid, doc), name=f"demo-swap-{vin}")
                task.add_done_callback(self._died)
                self._tasks.append(task)
                return

    async def _swap(self, vin: str, station: str, doc: dict[str, Any]) -> None:
        """The vehicle in the bay: the station's flow, then the handed-out pack into its simulator."""
        try:
            pack = {k: doc[k] for k in ("soc", "soh", "capacity_kwh")} | {"serial": doc["pack"]}
            reply = await self._ask({"arrive": station, "token": self.tokens[vin], "pack": pack})
            event = {
                "at": time.time(),
                "vehicle": vin,
                "station": station,
                "pack_in": pack["serial"],
                **reply,
            }
            self.events.append(event)
            got = reply.get("got")
            if got:
                self.say(
                    f"swap at {station}: {vin} left {pack['serial']}, took {got['serial']} ({got['soc']:.0f} %)"
                )
                hub = self._hubs[vin]
                assert hub.stdin is not None  # nosec B101 # created with stdin=PIPE
                hub.stdin.write((json.dumps({"fit_pack": vin, "pack": got}) + "\n").encode())
                await hub.stdin.drain()
            else:
                self.say(f"swap at {station}: {vin} got no pack ({reply.get('why', 'refused')})")
        except (OSError, KeyError, TimeoutError, AnycarError) as exc:
            self.events.append(
                {"at": time.time(), "vehicle": vin, "station": station, "error": str(exc)[:300]}
            )
        finally:
            self._busy.discard(vin)

    async def _ask(self, doc: dict[str, Any], timeout: float = 300.0) -> dict[str, Any]:
        if self.proc is None or self.proc.stdin is None:
            raise ConfigError("swap stations: not running")
        key = str(doc["token"])
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[key] = future
        self.proc.stdin.write((json.dumps(doc) + "\n").encode())
        await self.proc.stdin.drain()
        return await asyncio.wait_for(future, timeout)

    async def _read_stations(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None  # nosec B101 # started in setup
        while line := await self.proc.stdout.readline():
            with contextlib.suppress(ValueError):
                doc = json.loads(line)
                future = self._replies.pop(str(doc.get("token")), None) if isinstance(doc, dict) else None
                if future is not None and not future.done():
                    future.set_result(doc)

    @staticmethod
    async def _line(proc: asyncio.subprocess.Process, timeout: float) -> dict[str, Any]:
        assert proc.stdout is not None  # nosec B101 # created with stdout=PIPE
        while True:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout)
            if not line:
                return {"error": f"the stations' process ended (exit {await proc.wait()})"}
            with contextlib.suppress(ValueError):
                doc = json.loads(line)
                if isinstance(doc, dict):
                    return doc

    # after ---------------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """What the CSMS recorded, what the fleet reconciled, and what the station pages show."""
        from sqlalchemy import select

        from anycar.fleet.domain_tables import alerts
        from anycar.fleet.registry import tenant_id
        from anycar.swap import tables as t
        from anycar.swap.console_api import stations

        engine = self.server.engine
        sw = t.swaps.c
        with engine.connect() as conn:
            rows = conn.execute(
                select(sw.id, sw.station_id, sw.state, sw.pack_old, sw.pack_new, sw.reconciled, sw.vehicle_pack,
                       sw.energy_kwh, sw.amount, sw.reservation_id)
            ).mappings().all()  # fmt: skip
            pack_alerts = conn.execute(
                select(alerts.c.type, alerts.c.message).where(alerts.c.type.like("pack_%"))
            ).all()
        tid = tenant_id(engine, self.tenant)
        return {
            "stations": [
                {k: s[k] for k in ("id", "name", "lat", "lon", "online", "ready", "swaps_today", "queue")}
                for s in stations(engine, tid)
            ],
            "planned": self.planned,
            "swaps": [dict(r) for r in rows],
            "events": self.events,
            "pack_alerts": [{"type": a.type, "message": a.message} for a in pack_alerts],
        }

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


# --- the stations' process ---------------------------------------------------------------------


async def serve_stations(spec: dict[str, Any]) -> None:
    """The station simulators, connected to the CSMS, each a separate OCPP 2.1 station; stdin
    ``{"arrive": STATION, "token", "pack"}`` lines are vehicles driving into a bay."""
    from anycar.swap.station import Pack, StationSim, Vehicle

    sims = {
        s["id"]: StationSim(
            s["id"], spec["url"], s["layout"], password=s["password"], speed=float(spec.get("speed", 1.0)),
            packs=[Pack(p["serial"], float(p["soc"]), float(p["soh"]), float(p["capacity_kwh"])) for p in s["packs"]],
        )
        for s in spec["stations"]
    }  # fmt: skip
    runs = [asyncio.create_task(sim.run()) for sim in sims.values()]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await asyncio.wait_for(asyncio.gather(*(s.booted.wait() for s in sims.values())), READY_TIMEOUT_S)
    print(json.dumps({"ready": len(sims)}), flush=True)

    async def arrive(doc: dict[str, Any]) -> None:
        token = str(doc.get("token"))
        try:
            sim, p = sims[doc["arrive"]], doc["pack"]
            got = await sim.arrive(
                Vehicle(
                    token, Pack(str(p["serial"]), float(p["soc"]), float(p["soh"]), float(p["capacity_kwh"]))
                ),
                timeout=600,
            )
            answer: dict[str, Any] = {"token": token, "station": sim.ident}
            if got is None:
                answer["why"] = "the CSMS or the station refused the swap"
            else:
                answer["got"] = {
                    "serial": got.serial,
                    "soc": round(got.soc, 2),
                    "soh": got.soh,
                    "capacity_kwh": got.capacity_kwh,
                }
        except (KeyError, TypeError, ValueError, RuntimeError, TimeoutError) as exc:
            answer = {"token": token, "why": f"{type(exc).__name__}: {exc}"[:300]}
        print(json.dumps(answer), flush=True)

    reader = asyncio.StreamReader(limit=65536)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    pending: set[asyncio.Task[None]] = set()

    async def commands() -> None:
        while line := await reader.readline():
            with contextlib.suppress(ValueError):
                doc = json.loads(line)
                if isinstance(doc, dict) and "arrive" in doc:
                    task = asyncio.create_task(arrive(doc))
                    pending.add(task)
                    task.add_done_callback(pending.discard)

    listener = asyncio.create_task(commands())
    await stop.wait()
    listener.cancel()
    for sim in sims.values():
        await sim.stop()
    for task in runs:
        task.cancel()
    await asyncio.gather(*runs, listener, *pending, return_exceptions=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m anycar.fleetdemo.stations SPEC.json", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve_stations(json.loads(Path(args[0]).read_text("utf-8"))))
    except (OSError, ValueError, KeyError, TimeoutError, AnycarError) as exc:
        print(json.dumps({"error": f"{args[0]}: {type(exc).__name__}: {exc}"[:300]}), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
