"""A real fleet day for the console's logistics and station pages: ``FleetServer`` on SQLite with
the CSMS, in a thread; orders imported through the API, a plan made by the real planner and
accepted, outcomes reported, two swap stations run by the station simulator (OCPP 2.1 over
WebSocket) with one real swap, and their sites set through the API. A rival tenant has its own
orders, plan and station, which acme never sees."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import httpx

from anycar.fleet import registry
from anycar.fleet.server import FleetConfig, FleetServer
from anycar.fleet.store import HEADING, LAT, LON, SPEED, Accepted
from anycar.swap import inventory
from anycar.swap import registry as swap_registry
from anycar.swap.station import Pack, StationSim, Vehicle
from anycar.wire.messages import Origin, new_boot_id, telemetry

SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"

DEPOT = {"lat": 60.1690, "lon": 24.9400}
HEADER = "id,kind,lat,lon,windows,service_s,weight_kg,address\n"
ACME_ORDERS = [
    "o-101,delivery,60.1712,24.9445,08:00-23:59,120,90,Kluuvikatu 4",
    "o-102,delivery,60.1678,24.9480,08:00-23:59,120,120,Eteläranta 8",
    "o-103,delivery,60.1655,24.9375,08:00-09:00,90,60,Bulevardi 12",
    "o-104,delivery,60.1702,24.9520,08:00-23:59,120,100,Kruunuhaka 2",
    "o-105,delivery,60.1728,24.9385,08:00-23:59,150,140,Mannerheimintie 5",
    "o-106,delivery,60.1668,24.9430,08:00-23:59,60,50,Erottaja 1",
    "o-107,delivery,60.1645,24.9460,08:00-23:59,120,110,Korkeavuorenkatu 20",
    "o-108,delivery,60.1735,24.9470,08:00-23:59,120,80,Liisankatu 9",
    "o-109,delivery,60.1690,24.9340,08:00-23:59,120,110,Fredrikinkatu 30",
    "o-110,delivery,60.1660,24.9505,08:00-23:59,90,90,Pohjoisesplanadi 2",
]
RIVAL_ORDERS = ["o-101,delivery,60.1700,24.9410,08:00-23:59,60,5,Rival street 1"]


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@dataclass
class Day:
    url: str
    tokens: dict[str, dict[str, str]]
    vehicles: dict[str, list[str]]
    plan: dict[str, Any]
    swap: dict[str, Any] = field(default_factory=dict)
    fleet: Any = None  # the OpsFleet, for what a hub would send (PODs through its store)


async def _cancel_the_rest() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class DayClock:
    """The fleet's "now" (``FleetConfig.clock``): the wall clock shifted to read ``at`` (seconds
    after midnight UTC) on the date the test starts, running on from there. The day's outcomes,
    its report and the live drag are then inside the 08:00-23:59 shift, with o-101 on time and
    o-103 past its 08:00-09:00 window, whatever the hour CI runs at (and no midnight between the
    outcomes and the report)."""

    def __init__(self, at: float = 12 * 3600.0) -> None:
        self.at = at
        self.anchor()

    def anchor(self) -> None:
        """Read ``at`` on today's date (the wall clock's, now)."""
        wall = time.time()
        self.offset = wall - wall % 86_400 + self.at - wall

    def __call__(self) -> float:
        return time.time() + self.offset

    @property
    def day(self) -> str:
        """The fleet's date, YYYY-MM-DD (the report's day)."""
        return dt.datetime.fromtimestamp(self(), dt.UTC).date().isoformat()


class OpsFleet:
    """``FleetServer`` (API, console, CSMS) in its own event loop thread, on a ``DayClock``."""

    def __init__(self, db_url: str) -> None:
        self.clock = DayClock()
        cfg = FleetConfig(
            db_url=db_url, workers=0, api_port=0, osmand_port=None, ocpp_port=0, clock=self.clock
        )
        self.server = FleetServer(cfg)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="ops-fleet", daemon=True)
        self.sims: list[StationSim] = []
        self.tasks: list[Any] = []

    def call(self, coro: Any, timeout: float = 90.0) -> Any:
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout)

    def start(self) -> None:
        self.clock.anchor()  # the CSMS stamps swaps and reservations on this clock too
        self.thread.start()
        self.call(self.server.start())

    def stop(self) -> None:
        for sim in self.sims:
            self.call(sim.stop())
        self.call(self.server.stop())
        self.call(_cancel_the_rest())  # the live feed's sockets, so the loop closes quietly
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.api.port}"

    def position(self, wire_id: str, lat: float, lon: float, soc: float) -> None:
        """A hub's telemetry (position and charge) through the store, as an ingest worker does."""
        ref = self.server.store.vehicle(wire_id)
        now = round(time.time(), 3)
        samples = [(LAT, now, lat), (LON, now, lon), (HEADING, now, 0.0), (SPEED, now, 0.0), (SOC, now, soc)]
        doc = telemetry(
            Origin(wire_id, new_boot_id()), 1, samples, campaign="default", version=1, prio=5, ts=now
        )
        self.server.store.commit([Accepted(ref, doc)])

    def station(self, ident: str, tenant: str) -> StationSim:
        engine = self.server.engine
        password = swap_registry.add_station(engine, ident, tenant=tenant, layout="pickman-8")
        swap_registry.stock_station(engine, ident, "pickman-8")
        sim = StationSim(
            ident,
            self.server.csms.url,
            "pickman-8",
            password=password,
            speed=200.0,
            meter_s=0.3,
            clock_offset_s=self.clock.offset,  # the station keeps the room's time: no skew alert
        )
        self.sims.append(sim)
        self.tasks.append(asyncio.run_coroutine_threadsafe(sim.run(), self.loop))
        self.call(asyncio.wait_for(sim.booted.wait(), 30))
        return sim


@contextlib.contextmanager
def running_fleet(tmp_path_factory: Any, name: str) -> Iterator[OpsFleet]:
    """A started ``OpsFleet`` on a fresh SQLite file in its own temporary folder, stopped after:
    what each console module's fixture runs its day on."""
    db = tmp_path_factory.mktemp(name) / "fleet.sqlite3"
    fleet = OpsFleet(f"sqlite:///{db}")
    fleet.start()
    try:
        yield fleet
    finally:
        fleet.stop()


def sign_in(page: Any, url: str, token: str) -> None:
    """Open the console, sign in with a user's API token and wait until it is ready and knows
    the user's role (the pages draw their buttons by it)."""
    page.goto(url + "/console/")
    page.wait_for_function("document.body.dataset.ready === 'login'", timeout=30_000)
    page.fill("[data-testid=token]", token)
    page.click("[data-testid=sign-in]")
    page.wait_for_function("document.body.dataset.ready === 'true'", timeout=60_000)
    page.wait_for_function("window.anycarConsole.role", timeout=30_000)


def show(page: Any, hash_: str, loaded: str) -> None:
    """Go to ``hash_`` (``#/logistics``, ``#/stations/ID``) and wait until that page says it has
    loaded ``loaded`` (its ``data-loaded``: ``board``, ``plan``, ``list``, ``station``, ...)."""
    section = hash_.split("/")[1]
    page.evaluate(f"location.hash = '{hash_}'")
    page.wait_for_function(
        f"document.getElementById('page-{section}').dataset.loaded === '{loaded}'", timeout=30_000
    )


def wait(check: Any, what: str, timeout: float = 45.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def make_day(fleet: OpsFleet) -> Day:
    """Everything through the real paths; returns the tokens, vehicles and the accepted plan."""
    engine = fleet.server.engine
    tokens: dict[str, dict[str, str]] = {}
    vehicles: dict[str, list[str]] = {}
    for tenant, n in (("acme", 3), ("rival", 1)):
        vehicles[tenant] = [
            registry.add_vehicle(
                engine, f"LKYZPS{tenant[:2].upper().replace('I', 'J')}{i:09d}"[:17], "kaiyun_pickman", tenant=tenant,
                wire_id=f"{tenant}-pickman-{i}",
            ).vehicle
            for i in range(1, n + 1)
        ]  # fmt: skip
        tokens[tenant] = {
            r: registry.add_user(engine, tenant, f"{r}-{tenant}", r) for r in registry.ROLE_RIGHTS
        }
        for i, wire in enumerate(vehicles[tenant]):
            fleet.position(wire, DEPOT["lat"] + 0.0004 * i, DEPOT["lon"] + 0.0006 * i, 88.0 - 9 * i)
    with httpx.Client(base_url=fleet.url, timeout=90) as http:
        for tenant, rows in (("acme", ACME_ORDERS), ("rival", RIVAL_ORDERS)):
            r = http.post(
                "/api/orders/import?name=orders.csv",
                content=HEADER + "\n".join(rows) + "\n",
                headers=auth(tokens[tenant]["dispatcher"]),
            )
            if r.status_code != 201:
                raise AssertionError(r.text)
            r = http.post(
                "/api/plans",
                json={"depot": DEPOT, "shift": "08:00-23:59", "time_limit_s": 1, "seed": 1},
                headers=auth(tokens[tenant]["dispatcher"]),
            )
            if r.status_code != 201:
                raise AssertionError(r.text)
            accepted = http.post(
                f"/api/plans/{r.json()['id']}/accept", headers=auth(tokens[tenant]["dispatcher"])
            )
            if accepted.status_code != 200:
                raise AssertionError(accepted.text)
            if tenant == "acme":
                plan = accepted.json()
        # The day so far: two delivered (one of them after its 08:00-09:00 window), one failed.
        for ref, status, reason in (
            ("o-101", "delivered", ""),
            ("o-103", "delivered", ""),
            ("o-106", "failed", "recipient not at home, shop closed"),
        ):
            r = http.post(
                f"/api/logistics/orders/{ref}/outcome",
                json={"status": status, "reason": reason},
                headers=auth(tokens["acme"]["driver"]),
            )
            if r.status_code != 200:
                raise AssertionError(r.text)
    day = Day(fleet.url, tokens, vehicles, plan, fleet=fleet)
    # Swap stations, run by the OCPP 2.1 station simulator; one PICKMAN swaps at town-1.
    wire = vehicles["acme"][0]
    swap_registry.add_pack(
        engine, "PM-ACME-7", chemistry="LFP", capacity_kwh=10.0, soh=93.0, soc=14.0, vehicle=wire
    )
    token = swap_registry.add_token(engine, wire)
    town = fleet.station("town-1", "acme")
    fleet.station("harbour-2", "acme")
    fleet.station("rival-depot", "rival")
    town.slots[0].pack.soc = 99.0
    wait(lambda: inventory.station_packs(engine, "town-1")[0]["state"] == "ready", "a ready pack")
    got = fleet.call(town.arrive(Vehicle(token, Pack("PM-ACME-7", 14.0, 93.0, 10.0)), timeout=60))
    if got is None:
        raise AssertionError("the swap did not complete")
    wait(lambda: not fleet.server.csms.swaps, "the swap recorded")
    day.swap = {"old": "PM-ACME-7", "new": got.serial, "vehicle": wire}
    with httpx.Client(base_url=fleet.url, timeout=30) as http:
        for ident, tenant, lat, lon, name in (
            ("town-1", "acme", 60.1705, 24.9415, "Town swap · Kaisaniemi"),
            ("harbour-2", "acme", 60.1662, 24.9525, "Harbour swap · Katajanokka"),
            ("rival-depot", "rival", 60.1700, 24.9400, "Rival swap"),
        ):
            r = http.put(
                f"/api/stations/{ident}/site",
                json={"lat": lat, "lon": lon, "name": name},
                headers=auth(tokens[tenant]["owner"]),
            )
            if r.status_code != 200:
                raise AssertionError(r.text)
    return day
