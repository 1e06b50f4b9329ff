"""A fleet in motion for the console's benchmark and tests: vehicles driving along the streets of
the console's base map (the OpenStreetMap extract), each second a wire telemetry batch with
position, heading, speed and state of charge, committed through the fleet's real store and
published on its live feed, as the ingest workers do.

``RunningFleet`` runs ``FleetServer`` (the composition root of ``anycar fleet serve``: migrations,
REST API, live feed, console) on its own event loop in a thread, with no MQTT workers: the
positions are fed straight into the store instead of through a broker.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from anycar.fleet.console.app import DATA_DIR
from anycar.fleet.registry import add_user, add_vehicle
from anycar.fleet.server import FleetConfig, FleetServer
from anycar.fleet.store import HEADING, LAT, LON, SPEED, Accepted, Store, Stored, positions_of
from anycar.wire.messages import Origin, new_boot_id, telemetry

SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
DRIVABLE = ("street", "secondary", "primary", "motorway")
BRANDS = (  # (brand profile, tracker?): vehicle i gets BRANDS[i % 10]: six PICKMANs in ten
    *[("kaiyun_pickman", False)] * 6,
    ("byd_seal", False),
    ("nio_et7", False),
    ("hongqi_hs5", False),
    ("tracker_phone", True),
)
PARKED_EVERY = 7  # vehicle i is parked when i % 7 == 3


def streets() -> list[list[tuple[float, float]]]:
    """The drivable lines of the shipped base map, as (lon, lat) lists."""
    doc = json.loads((DATA_DIR / "basemap.geojson").read_text("utf-8"))
    out: list[list[tuple[float, float]]] = []
    for f in doc["features"]:
        props, geom = f["properties"], f["geometry"]
        if props.get("layer") == "road" and props.get("class") in DRIVABLE and geom["type"] == "LineString":
            line = [(float(x), float(y)) for x, y in geom["coordinates"]]
            if len(line) >= 2:
                out.append(line)
    return out


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    k = math.cos(math.radians((a[1] + b[1]) / 2))
    return math.hypot((b[0] - a[0]) * 111_320 * k, (b[1] - a[1]) * 110_574)


def _bearing(a: tuple[float, float], b: tuple[float, float]) -> float:
    k = math.cos(math.radians((a[1] + b[1]) / 2))
    return (math.degrees(math.atan2((b[0] - a[0]) * k, b[1] - a[1])) + 360) % 360


@dataclass
class Mover:
    """One vehicle driving up and down one street at its own speed."""

    line: list[tuple[float, float]]
    speed_kmh: float
    soc: float
    at: float = 0.0  # metres along the line
    forward: bool = True
    parked: bool = False
    lengths: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lengths = [_metres(a, b) for a, b in zip(self.line, self.line[1:], strict=False)]

    def step(self, dt: float) -> tuple[float, float, float, float]:
        """Advance ``dt`` seconds; (lat, lon, heading, speed km/h)."""
        total = sum(self.lengths) or 1.0
        speed = 0.0 if self.parked else self.speed_kmh
        self.at += (speed / 3.6) * dt * (1 if self.forward else -1)
        if self.at >= total or self.at <= 0:
            self.forward = not self.forward
            self.at = min(max(self.at, 0.0), total)
        self.soc = max(3.0, self.soc - speed * dt * 0.00002)
        pos, i = self.at, 0
        while i < len(self.lengths) - 1 and pos > self.lengths[i]:
            pos -= self.lengths[i]
            i += 1
        a, b = self.line[i], self.line[i + 1]
        f = min(1.0, pos / self.lengths[i]) if self.lengths[i] else 0.0
        lon, lat = a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f
        heading = _bearing(a, b) if self.forward else _bearing(b, a)
        return lat, lon, heading, speed


class RunningFleet:
    """``FleetServer`` on SQLite in a thread; ``commit`` feeds it as an ingest worker would."""

    def __init__(self, db_url: str, *, dashboard_url: str | None = None) -> None:
        self.cfg = FleetConfig(
            db_url=db_url, workers=0, api_port=0, osmand_port=None, dashboard_url=dashboard_url
        )
        self.server = FleetServer(self.cfg)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fleet-server", daemon=True)

    @property
    def store(self) -> Store:
        return self.server.store

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.api.port}"

    def _call(self, coro: Any, timeout: float = 60.0) -> Any:
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout)

    def start(self) -> None:
        self.thread.start()
        self._call(self.server.start())

    def stop(self) -> None:
        async def stop_all() -> None:
            await self.server.stop()
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in rest:  # open live-feed WebSockets of browsers that went away
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        try:
            self._call(stop_all())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()

    def publish_only(self, accepted: Sequence[Accepted]) -> None:
        """The batch's positions onto the live feed without storing them: the console's load at
        the full rate when the store cannot keep up (``anycar bench console --feed live``)."""
        positions: list[dict[str, Any]] = []
        for item in accepted:
            ref, doc = item.vehicle, item.doc
            if doc["kind"] == "position":
                fixes = [{k: doc.get(k) for k in ("ts", "lat", "lon", "speed", "heading")}]
            else:
                fixes = positions_of(doc, {})
            positions.extend({"tenant_id": ref.tenant_id, "vehicle": ref.wire_id, **p} for p in fixes)
        self.loop.call_soon_threadsafe(self.server.live.publish, "position", positions)

    def commit(self, accepted: Sequence[Accepted]) -> Stored:
        """One batch into the store (this thread) and onto the live feed (the server's loop)."""
        stored = self.store.commit(accepted)

        def publish() -> None:
            self.server.live.publish("position", stored.positions)
            self.server.live.publish("event", stored.events)

        self.loop.call_soon_threadsafe(publish)
        return stored


@contextmanager
def running_fleet(db_url: str, *, dashboard_url: str | None = None) -> Iterator[RunningFleet]:
    fleet = RunningFleet(db_url, dashboard_url=dashboard_url)
    fleet.start()
    try:
        yield fleet
    finally:
        fleet.stop()


@dataclass
class Vehicle:
    wire_id: str
    origin: Origin
    mover: Mover
    seq: int = 0
    tracker: bool = False


class MovingFleet:
    """``n`` registered vehicles of one tenant, mixed brands, moving along the base map's streets."""

    def __init__(self, fleet: RunningFleet, n: int, *, tenant: str = "demo", seed: int = 14) -> None:
        self.fleet = fleet
        self.store = True  # False: positions go to the live feed only
        rng = random.Random(seed)  # nosec B311 # a reproducible demo fleet, not a secret
        lines = streets()
        self.vehicles: list[Vehicle] = []
        self.refs: dict[str, Any] = {}
        for i in range(n):
            brand, tracker = BRANDS[i % len(BRANDS)]
            vin = f"LKYBENCH{i:09d}"[:17]
            creds = add_vehicle(
                fleet.store.engine,
                vin,
                brand,
                tenant=tenant,
                wire_id=f"{brand.split('_')[0]}-{i:04d}",
                tracker=tracker,
            )
            mover = Mover(
                rng.choice(lines), rng.uniform(12, 40), rng.uniform(8, 98), parked=i % PARKED_EVERY == 3
            )
            mover.at = rng.uniform(0, sum(mover.lengths))
            self.vehicles.append(
                Vehicle(creds.vehicle, Origin(creds.vehicle, new_boot_id()), mover, tracker=tracker)
            )
        self.token = add_user(fleet.store.engine, tenant, "operator", "dispatcher")
        self.committed: list[tuple[float, float]] = []  # (the chunk's sample time, its commit's end)

    def _commit(self, batch: list[Accepted], sampled: float) -> None:
        if self.store:
            self.fleet.commit(batch)
        else:
            self.fleet.publish_only(batch)
        self.committed.append((sampled, time.time()))
        del self.committed[:-2000]

    def committed_at(self, sampled: float) -> float | None:
        """When the chunk sampled at ``sampled`` (to the ms) was committed."""
        return next((end for ts, end in reversed(self.committed) if abs(ts - sampled) < 0.0015), None)

    def tick(self, dt: float = 1.0, chunk: int = 250) -> dict[str, float]:
        """Every vehicle moves ``dt`` and reports; committed in batches of ``chunk`` (an ingest
        worker's batch), each stamped with the time it was sampled. Returns the commit time."""
        now = time.time()
        batch: list[Accepted] = []
        started = time.perf_counter()
        for v in self.vehicles:
            if not batch:
                now = round(time.time(), 3)  # ms, as the wire's telemetry carries it
            lat, lon, heading, speed = v.mover.step(dt)
            ref = self.refs.get(v.wire_id) or self.fleet.store.vehicle(v.wire_id)
            if ref is None:
                raise RuntimeError(f"vehicle {v.wire_id} is not registered")
            self.refs[v.wire_id] = ref
            batch.append(Accepted(ref, self.report(v, now, lat, lon, heading, speed)))
            if len(batch) >= chunk:
                self._commit(batch, now)
                batch = []
        if batch:
            self._commit(batch, now)
        return {"commit_s": time.perf_counter() - started}

    def report(
        self, v: Vehicle, now: float, lat: float, lon: float, heading: float, speed: float
    ) -> dict[str, Any]:
        """The vehicle's next message for a position sampled at ``now``: an OsmAnd fix for a
        tracker, a hub's telemetry otherwise (tests commit one at a time of their choosing)."""
        v.seq += 1
        if v.tracker:  # a phone or tracker: an OsmAnd fix, shaped as anycar.fleet.osmand does
            doc: dict[str, Any] = {
                "kind": "position",
                "boot": "osmand",
                "seq": round(now * 1000),
                "ts": now,
                "lat": lat,
                "lon": lon,
                "speed": speed,
                "heading": heading,
            }
        else:
            samples = [(LAT, now, lat), (LON, now, lon), (HEADING, now, heading), (SPEED, now, speed)]
            samples.append((SOC, now, round(v.mover.soc, 1)))
            doc = telemetry(v.origin, v.seq, samples, campaign="default", version=1, prio=5, ts=now)
        return doc
