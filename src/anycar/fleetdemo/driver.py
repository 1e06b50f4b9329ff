"""The fleet demo's drivers: each PICKMAN drives the round its hub was pushed, and at each stop its
driver does what a driver does with the car's own accessories.

A ``Driver`` runs in the hubs process beside one PICKMAN's hub. It reads the route the uplink's
delivery keeper holds (the fleet's signed ``route`` command, ``anycar.uplink.delivery``), routes
its open stops on the streets (``anycar.roads``, the delivery profile) from where the vehicle
stands and back to the depot, and gives the simulator that round (``Simulator.drive``): the
simulator parks at each stop. Until a route comes the vehicle waits at the depot, parked; a newer
route version (a re-dispatch) is taken at the next standstill, so a re-plan changes what it
drives. At a stop the driver holds the vehicle and calls the handler of the stop's kind
(``STOP_KINDS``):

- ``drop``: ring the recipient (``anycar.fleetdemo.recipients``); home: open the cargo door, the
  parcel leaves the load cell, close the door, the recipient types the PIN on the button panel,
  and the hub closes the stop with its signed proof (camera still taken when the door opened);
  nobody home: report the delivery failed with the reason on the hub's REST API
  (``POST /api/v1/delivery/complete``, the driver's "failed").
- ``pickup``: open, the parcel onto the load cell, close (no PIN).
- ``swap``: the battery swap planned into the pushed route (``kind: swap``: station, reservation,
  window): parked in the station's bay until the robot has fitted another pack and the hub has
  closed the stop (it sees the pack's serial change).

Any other kind is driven to like every stop and left after the stop's time, with a log line
saying no handler does its work there: ``STOP_KINDS[kind] = handler`` is the hook (the battery
swap's stop, for one). The timings and the recipients are data (``data/delivery.yaml``).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from anycar.fleetdemo.delivery import DriverTimes
from anycar.roads.geo import haversine_m
from anycar.wire.routestops import stop_key

log = logging.getLogger("anycar.fleetdemo.driver")
POLL_S = 0.05
SWAP_WAIT_S = 180.0  # wall seconds in the bay before the driver gives up on the robot
WINDOW_WAIT_S = 120.0  # wall seconds at most at a door before its window opens
MIN_LEG_M = 5.0  # a stop where the vehicle already stands (a second attempt at the same door)

StopHandler = Callable[["Driver", dict[str, Any]], Awaitable[str]]


@dataclass
class Round:
    """What the simulator is driving: a route version's open stops, in order."""

    version: int
    stops: list[dict[str, Any]]
    handled: set[int] = field(default_factory=set)


class Driver:
    """One PICKMAN's simulated driver (see the module docstring)."""

    def __init__(
        self,
        vin: str,
        hub: Any,
        depot: tuple[float, float],
        times: DriverTimes,
        doorbell: str,
        token: str,
        say: Callable[[dict[str, Any]], None] = lambda event: None,
    ) -> None:
        self.vin, self.hub, self.depot, self.times = vin, hub, depot, times
        self.doorbell, self.token, self.say = doorbell, token, say
        self.sim = next(c for c in hub.components if c.name == "simulator").sim
        self.round: Round | None = None
        self.onboard: dict[str, float] = {}  # order -> kg on the load cell
        self.crashes = 0
        self.day: tuple[float, float, float] | None = None  # (wall0, start s of day, speedup)
        self.log: list[dict[str, Any]] = []  # what happened at each stop
        self._http: httpx.AsyncClient | None = None
        # parked at the depot, ignition on, until a route comes (set before the hub starts)
        self.sim.drive(self.sim.route, self.sim.cycle)
        self.sim.held = True

    def set_day(self, wall0: float, start: str, speedup: float) -> None:
        """The demo's day clock: it read ``start`` (HH:MM) at wall epoch ``wall0``."""
        h, m = (int(x) for x in start.split(":"))
        self.day = (wall0, float(h * 3600 + m * 60), speedup)

    def day_s(self) -> float | None:
        """The demo's time of day now (seconds), None until the demo said when its day started."""
        if self.day is None:
            return None
        wall0, start, speedup = self.day
        return start + (time.time() - wall0) * speedup

    async def until_window(self, stop: dict[str, Any]) -> float:
        """At the door before the stop's window opens (a failed order's retry time cuts it): wait,
        parked, until it does (at most ``WINDOW_WAIT_S`` wall seconds); the wall seconds waited."""
        opens = _window_start(str(stop.get("window") or ""))
        now = self.day_s()
        if opens is None or now is None or now >= opens or self.day is None:
            return 0.0
        wait = min(WINDOW_WAIT_S, (opens - now) / self.day[2])
        await asyncio.sleep(wait)
        return wait

    # -- the hub's parts ------------------------------------------------------------------------
    @property
    def keeper(self) -> Any:
        uplink = next((c for c in self.hub.components if c.name == "uplink"), None)
        return getattr(uplink, "delivery", None)

    def pod_key_id(self) -> str | None:
        """The id of the key this vehicle's hub signs its proofs of delivery with (public)."""
        from anycar.wire import signature

        keeper = self.keeper
        if keeper is None:
            return None
        return str(signature.key_id(signature.parse_public_key(keeper.public_key, "public_key")))

    def _accessory(self, method: str) -> Any:
        """The fitted virtual accessory that can ``method`` (the cargo sensor: ``load``; the
        button panel: ``press``), or None when the cabin has none fitted."""
        cabin = next((c for c in self.hub.components if c.name == "cabin"), None)
        return next((a for a in getattr(cabin, "virtual", []) if hasattr(a, method)), None)

    def here(self) -> tuple[float, float]:
        pos = self.sim.route.at(self.sim.route_m)
        return (pos.latitude, pos.longitude)

    # -- the loop -------------------------------------------------------------------------------
    async def run(self) -> None:
        """Drive until cancelled; a crash is logged, counted and the driver carries on."""
        self._http = httpx.AsyncClient(timeout=10.0)
        try:
            while True:
                try:
                    await self._drive()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    self.crashes += 1
                    log.exception("demo driver %s failed; carrying on", self.vin)
                    self.say({"event": "crash", "vehicle": self.vin, "crashes": self.crashes})
                    self.sim.held = False
                    await asyncio.sleep(1.0)
        finally:
            await self._http.aclose()

    async def _drive(self) -> None:
        while True:
            await asyncio.sleep(POLL_S)
            keeper = self.keeper
            route = keeper.route if keeper is not None else None
            if route is not None and (self.round is None or route["version"] != self.round.version):
                if self.sim.speed_kmh == 0.0:  # at a standstill: the driver reads the new round
                    self._take(keeper, route)
                continue
            if self.round is None:
                continue
            lap, tc, phase = self.sim.now_in_lap()
            if phase is None or lap > 0:  # the round is driven: wait at the depot, parked
                if lap > 0 or tc - self.sim.cycle.duration_s >= self.times.home_after_s:
                    self.sim.held = True
                continue
            if phase.kind != "delivery" or phase.leg in self.round.handled:
                continue
            if tc - phase.start < self.times.work_after_s or phase.leg >= len(self.round.stops):
                continue
            self.round.handled.add(phase.leg)
            stop = self.round.stops[phase.leg]
            self.sim.held = True
            # what the driver read on the dash display as the vehicle parked (the hub's next stop)
            shown = {"display": keeper.shown, "display_status": keeper.display_status} if keeper else {}
            try:
                outcome = await self._at(stop)
            finally:
                self.sim.held = False
            done = {"order": stop.get("order"), "kind": stop.get("kind"), "outcome": outcome, **shown}
            if stop.get("kind") == "swap":
                done |= {"station": stop.get("station"), "reservation": stop.get("reservation")}
            self.log.append(done)
            self.say({"event": "stop", "vehicle": self.vin, "version": self.round.version, **done})

    def _take(self, keeper: Any, route: dict[str, Any]) -> None:
        """A new route version: its open stops from here, and home to the depot."""
        stops = [s for s in route["stops"] if stop_key(s) not in keeper.done]
        here = self.here()
        at_depot = float(haversine_m(*here, *self.depot)) <= self.times.near_depot_m
        for s in stops:  # the round's parcels: loaded at the depot (a re-plan keeps what is on board)
            if s.get("kind") == "drop" and s.get("order") not in self.onboard:
                self.onboard[str(s["order"])] = float(s.get("weight_kg") or 0.0)
                self._later(self._load(float(s.get("weight_kg") or 0.0)))
                if not at_depot:
                    log.warning("%s: parcel %s is not on board away from the depot", self.vin, s["order"])
        self.round = Round(int(route["version"]), stops)
        points = [here, *[(float(s["lat"]), float(s["lon"])) for s in stops], self.depot]
        self.sim.drive(*self._street_round(points))
        self.sim.held = False
        self.say(
            {
                "event": "round",
                "vehicle": self.vin,
                "version": self.round.version,
                "plan": route["plan"],
                "stops": [s.get("order") or f"swap@{s.get('station')}" for s in stops],
            }
        )

    def _street_round(self, points: list[tuple[float, float]]) -> tuple[Any, Any]:
        """The simulator's route (street geometry) and delivery cycle (it parks after each leg)."""
        from anycar.roads import load_network
        from anycar.sim.cycles import delivery_cycle, delivery_parameters
        from anycar.sim.route import Route

        net = load_network()
        line: list[tuple[float, float, float]] = []
        legs: list[float] = []
        for a, b in itertools.pairwise(points):
            leg = net.route(a, b, "delivery")
            coords = [(float(c[1]), float(c[0]), 0.0) for c in leg.coordinates]
            line.extend(coords if not line else coords[1:])
            legs.append(max(MIN_LEG_M, float(leg.meters)))
        if len(line) < 2 or len({p[:2] for p in line}) < 2:
            line = [(*points[0], 0.0), (points[0][0] + 1e-5, points[0][1], 0.0)]
        params = {
            **delivery_parameters(),
            "leg_lengths_m": legs,
            "start_idle_s": 3,
            "name": f"round-{self.vin}",
        }
        if len(legs) < 2:
            params["leg_lengths_m"] = [*legs, MIN_LEG_M]
        return Route(f"round-{self.vin}", line, closed=False), delivery_cycle(self.sim.seed, params)

    def _later(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        task.add_done_callback(_log_failure)

    async def _load(self, kg: float) -> None:
        cargo = self._accessory("load")
        if cargo is not None:
            await cargo.load(kg)

    # -- at a stop ------------------------------------------------------------------------------
    async def _at(self, stop: dict[str, Any]) -> str:
        kind = str(stop.get("kind") or "")
        handler = STOP_KINDS.get(kind)
        if handler is None:
            log.info("%s: no handler for a %r stop here: parked for the stop's time", self.vin, kind)
            return "driven"
        return await handler(self, stop)

    async def gap(self) -> None:
        await asyncio.sleep(self.times.act_gap_s)

    async def ring(self, order: str) -> dict[str, Any]:
        """The recipient's answer at the door (``waiting`` for the PIN: ring again)."""
        if self._http is None:
            raise RuntimeError("the driver is not running")
        deadline = asyncio.get_running_loop().time() + self.times.answer_wait_s
        while True:
            try:
                r = await self._http.post(
                    f"{self.doorbell}/door/{order}", headers={"Authorization": f"Bearer {self.token}"}
                )
                doc: dict[str, Any] = r.json()
            except (httpx.HTTPError, ValueError) as exc:
                doc = {"answer": "waiting", "why": f"doorbell: {exc}"}
            if doc.get("answer") != "waiting" or asyncio.get_running_loop().time() > deadline:
                return doc
            await asyncio.sleep(0.5)

    async def report_failed(self, why: str) -> None:
        """The driver's "failed" on the hub (``POST /api/v1/delivery/complete``, as a cab app or
        the driver's phone on the hub's network does): the hub signs and sends the failed POD."""
        if self._http is None:
            raise RuntimeError("the driver is not running")
        url = self.hub.endpoints().get("http")
        if url is None:
            raise RuntimeError(f"{self.vin}: the hub serves no REST API to report the stop on")
        r = await self._http.post(
            f"{url}/api/v1/delivery/complete",
            json={"outcome": "failed", "reason": why},
        )
        if r.status_code != 200:
            raise RuntimeError(f"{self.vin}: the hub refused the failed stop: {r.status_code} {r.text[:200]}")

    async def finish(self, order: str) -> str:
        """Wait for the hub to close the stop (its proof sent); the outcome it recorded."""
        keeper = self.keeper
        deadline = asyncio.get_running_loop().time() + self.times.done_wait_s
        while keeper is not None and order not in keeper.done:
            if asyncio.get_running_loop().time() > deadline:
                log.warning("%s: the hub did not close the stop of %s", self.vin, order)
                return "not closed"
            await asyncio.sleep(POLL_S)
        return str(keeper.done[order]) if keeper is not None else "no hub"


async def deliver(driver: Driver, stop: dict[str, Any]) -> str:
    """A drop: the recipient at the door (not before the stop's window opens), the parcel out,
    the door closed, the PIN typed."""
    order = str(stop["order"])
    await driver.until_window(stop)
    answer = await driver.ring(order)
    keeper = driver.keeper
    if answer.get("answer") != "home":
        why = str(answer.get("why") or "no answer at the door")
        if keeper is not None and keeper.watch is not None and keeper.watch.stop.get("order") == order:
            await driver.report_failed(why)
        return "failed"
    cargo, panel = driver._accessory("load"), driver._accessory("press")
    if cargo is None:
        log.warning("%s: no cargo sensor fitted: the stop of %s closes without the door", driver.vin, order)
    else:
        await cargo.open_door(True)
        await driver.gap()
        kg = driver.onboard.pop(order, float(stop.get("weight_kg") or 0.0))
        await cargo.load(-kg)
        await driver.gap()
        await cargo.open_door(False)
        await driver.gap()
    pin = str(answer.get("pin") or "")
    if stop.get("pin_required") and panel is not None:
        for digit in pin:
            await panel.press(f"B{digit}")
            await driver.gap()
    elif keeper is not None and keeper.watch is not None and stop.get("pin_required"):
        keeper.complete("delivered", pin=pin)  # no button panel: the PIN typed on the hub's page
    return await driver.finish(order)


async def pick_up(driver: Driver, stop: dict[str, Any]) -> str:
    """A pickup: the parcel onto the load cell; the hub closes the stop when the door closes."""
    order = str(stop["order"])
    await driver.until_window(stop)
    cargo = driver._accessory("load")
    if cargo is not None:
        await cargo.open_door(True)
        await driver.gap()
        await cargo.load(float(stop.get("weight_kg") or 0.0))
        await driver.gap()
        await cargo.open_door(False)
    return await driver.finish(order)


# The work at a stop, by the stop's kind in the pushed route. Another room's stop (the battery
# swap at a station) registers its handler here; without one the stop is driven to and left.
async def swap(driver: Driver, stop: dict[str, Any]) -> str:
    """In the swap station's bay: wait, parked, until the robot has fitted another pack (the
    station's flow runs on the demo's side, ``anycar.fleetdemo.stations``) and the hub has closed
    the stop; or give up, and tell the hub the swap failed (a re-plan does not drive there again)."""
    key, keeper = stop_key(stop), driver.keeper
    deadline = asyncio.get_running_loop().time() + SWAP_WAIT_S
    while asyncio.get_running_loop().time() < deadline:
        if keeper is None or key in keeper.done:
            break
        await asyncio.sleep(POLL_S * 4)
    if keeper is None:
        return "no hub"
    if key not in keeper.done and keeper.watch is not None and stop_key(keeper.watch.stop) == key:
        keeper.complete("failed", "no pack fitted in the bay")
    return "swapped" if keeper.done.get(key) == "swapped" else "no swap"


STOP_KINDS: dict[str, StopHandler] = {"drop": deliver, "pickup": pick_up, "swap": swap}


def _window_start(window: str) -> float | None:
    """``09:07-11:00`` -> seconds of the day its first window opens (None: no window)."""
    head = window.split(";", 1)[0].split("-", 1)[0].strip()
    parts = head.split(":")
    if len(parts) < 2 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]) * 3600 + int(parts[1]) * 60 + (int(parts[2]) if len(parts) > 2 else 0)


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("demo driver: a background act failed: %s", task.exception())
