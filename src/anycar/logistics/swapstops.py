"""Swap stops planned into the delivery day: when a route needs more energy than its pack has.

A route's energy is its road metres times the vehicle type's kWh per km; the pack's usable
charge is (SoC - reserve) x capacity. When the first exceeds the second, one swap stop is
inserted between two of the route's stops, at the station and place that cost the least time:
the detour (road network), the queue at the bay at the expected arrival and the wait for a ready
pack then (from the station's inventory and its charging packs, or the charging plan's ready
packs per hour). The chosen stop is then reserved through the CSMS (OCPP ReserveNow), and
re-planned from the vehicle's current time and place when it runs late. A route that cannot
reach any station with the charge it has is reported with the reason, never passed off.

The fleet side reads the swap room's tables (``anycar.swap.tables``) for the station state.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from anycar.logistics.matrix import Matrix, Point
from anycar.logistics.problem import PlanVehicle, Route, Stop

RESERVE_MARGIN_S = 30 * 60.0  # a reservation expires this long after the expected arrival


class RoadProvider:
    """The planner's matrix from ``anycar.roads`` (``load_network().matrix``): road metres and
    seconds, with the straight-line estimate where a point is off the extract (and said so)."""

    name = "road network"

    def __init__(self, network: Any = None, profile: str = "car") -> None:
        if network is None:
            from anycar.roads import load_network

            network = load_network()
        self.network, self.profile = network, profile

    def matrix(self, points: Sequence[Point]) -> Matrix:
        m = self.network.matrix(list(points), self.profile)
        estimate = bool(np.asarray(m.estimate).any())
        return Matrix(
            np.asarray(m.seconds, dtype=float),
            np.asarray(m.meters, dtype=float),
            estimate,
            "road network" + (" + estimate" if estimate else ""),
        )


@dataclass(frozen=True)
class SwapStation:
    """A station as the planner sees it at one moment (``now_s``, seconds of the day)."""

    id: str
    point: Point
    ready: int  # packs ready now and not reserved
    ready_at: tuple[float, ...] = ()  # when further packs finish charging (seconds of the day)
    busy: tuple[tuple[float, float], ...] = ()  # bay taken (queue now, other reservations)
    mechanical_s: float = 90.0
    ready_soc: float = 0.95
    online: bool = True

    def packs_at(self, t: float) -> int:
        return self.ready + sum(1 for r in self.ready_at if r <= t)

    def wait_at(self, t: float) -> float | None:
        """Seconds from arriving at ``t`` to the robot starting: the bay and a ready pack; None when
        no pack will be ready at all."""
        start = t
        if self.packs_at(start) < 1:  # none ready now: the first one that finishes charging
            later = sorted(r for r in self.ready_at if r > start)
            if not later:
                return None
            start = later[0]
        for a, b in sorted(self.busy):
            if a <= start < b:
                start = b
        return start - t

    def reserved(self, start: float, returns_at: float | None = None) -> SwapStation:
        """This station after one more vehicle is booked to swap at ``start``: one pack fewer, the
        bay taken for one swap, and the vehicle's old pack ready again at ``returns_at`` when the
        charging model says so (the forecast the next vehicle's planning sees)."""
        busy = (*self.busy, (start, start + self.mechanical_s))
        later = tuple(sorted(self.ready_at))
        if self.ready > 0:
            ready = self.ready - 1
        else:
            ready, later = 0, later[1:]
        if returns_at is not None:
            later = tuple(sorted((*later, returns_at)))
        return dataclasses.replace(self, ready=ready, ready_at=later, busy=busy)


@dataclass
class Reservation:
    station: str
    reservation_id: int | None
    status: str  # Accepted / Rejected / ... from the station; "Queued": held by the CSMS until it connects
    expires_s: float  # seconds of the day
    detail: str = ""


@dataclass
class SwapStop:
    vehicle: str
    station: str
    after: int  # index in the route's stops the swap follows
    arrival_s: float
    wait_s: float
    swap_s: float
    detour_m: float
    detour_s: float
    soc_arrival: float
    late_orders: list[str] = field(default_factory=list)  # windows the swap makes late
    reservation: Reservation | None = None

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in dataclasses.asdict(self).items() if k != "reservation"}
        out["reservation"] = dataclasses.asdict(self.reservation) if self.reservation else None
        return out


@dataclass
class SwapDecision:
    route: Route  # with the swap stop in it, when one was needed and found
    swap: SwapStop | None
    needed: bool
    reason: str = ""  # why no swap was found when one is needed
    need_kwh: float = 0.0  # the route's energy from the first stop planned (road metres x kWh/km)
    usable_kwh: float = 0.0  # the pack's charge above the reserve there


def _window_end(stop: Stop) -> float | None:
    """The end of an order stop's window (``HH:MM[:SS]-HH:MM[:SS]``), seconds of the day."""
    if stop.order is None or not stop.window or "-" not in stop.window:
        return None
    parts = [int(x) for x in stop.window.split("-")[1].split(":")]
    return parts[0] * 3600 + parts[1] * 60 + (parts[2] if len(parts) > 2 else 0)


def _propagate(stops: list[Stop], k: int, arrive: float) -> list[Stop]:
    """The stops with ``stops[k]`` reached at ``arrive`` and every later one following on its
    planned leg; a service starts no earlier than planned (waiting for the window absorbs a delay
    first), so this is exact when arrivals only move later."""
    out = list(stops[:k])
    t = arrive
    for idx in range(k, len(stops)):
        s = stops[idx]
        if idx > k:
            t = out[-1].departure_s + (s.arrival_s - stops[idx - 1].departure_s)
        begin = max(t, s.start_s)
        out.append(
            dataclasses.replace(s, arrival_s=t, start_s=begin, departure_s=begin + s.departure_s - s.start_s)
        )
    return out


def _shifted(route: Route, after: int, station: SwapStation, arrival: float, wait: float,
             back_s: float, soc_arrival: float, energy_kwh: float, distance_m: float) -> Route:  # fmt: skip
    """The route with the swap stop after stop ``after`` and every later stop moved later (the
    service still starts no earlier than it did: waiting for a window absorbs the delay first)."""
    stops = route.stops
    start = arrival + wait
    depart = start + station.mechanical_s
    swap = Stop(None, "swap", station.point, arrival, start, depart, stops[after].load_kg, station.id)
    later = _propagate(stops, after + 1, depart + back_s)[after + 1 :] if after + 1 < len(stops) else []
    out = [*stops[: after + 1], swap, *later]
    end = out[-1].departure_s
    return dataclasses.replace(
        route, stops=out, distance_m=distance_m, duration_s=end - stops[0].departure_s,
        energy_kwh=energy_kwh, soc_end=soc_arrival,
    )  # fmt: skip


def plan_swap(
    route: Route,
    vehicle: PlanVehicle,
    stations: Sequence[SwapStation],
    provider: Any,
    *,
    delay_s: float = 0.0,
    first: int = 0,
    force: bool = False,
    latest: int | None = None,
) -> SwapDecision:
    """Insert one swap stop into ``route`` when its energy exceeds the pack's usable charge.

    ``first``: the stop the vehicle is at now (a re-plan); ``delay_s``: how late it runs against
    the route's times from there on (a re-plan with the current time). ``vehicle.soc`` is the
    charge at stop ``first``. The choice minimises detour time + wait at the station; a choice
    that makes no order late beats one that does. ``force``: place the swap even when the charge
    seems enough (the vehicle's charge is not known, so a swap already planned is kept);
    ``latest``: the last stop of the route the swap may follow (it stays before the deliveries it
    was planned before).
    """
    stops = route.stops[first:]
    usable = (vehicle.soc - vehicle.reserve) * vehicle.battery_kwh
    online = [s for s in stations if s.online]
    points = [s.point for s in stops] + [s.point for s in online]
    m = provider.matrix(points)
    n = len(stops)
    leg_m = [float(m.meters[i, i + 1]) for i in range(n - 1)]
    total_m = sum(leg_m)
    need = total_m / 1000 * vehicle.kwh_per_km
    base = dataclasses.replace(route, stops=route.stops)
    if need <= usable + 1e-9 and not force:
        return SwapDecision(base, None, False, need_kwh=need, usable_kwh=usable)
    if not online:
        return SwapDecision(
            base, None, True, _no_station_reason(need, usable, stations), need_kwh=need, usable_kwh=usable
        )
    timed = list(stops)
    if delay_s > 0 and n > 1:  # the vehicle leaves its stop late; the rest follows
        timed[0] = dataclasses.replace(stops[0], departure_s=stops[0].departure_s + delay_s)
        timed = _propagate(timed, 1, stops[1].arrival_s + delay_s)
    timed_route = dataclasses.replace(route, stops=timed)
    best: tuple[tuple[int, float], SwapStop, Route] | None = None
    cum = 0.0
    reachable = False
    kpk = vehicle.kwh_per_km / 1000
    for i in range(n - 1):
        if latest is not None and first + i > latest:
            break
        for k, st in enumerate(online):
            j = n + k
            to_m, back_m = float(m.meters[i, j]), float(m.meters[j, i + 1])
            if (cum + to_m) * kpk > usable + 1e-9:
                continue
            reachable = True
            after_m = back_m + total_m - cum - leg_m[i]
            if after_m * kpk > (st.ready_soc - vehicle.reserve) * vehicle.battery_kwh + 1e-9:
                continue
            arrival = timed[i].departure_s + float(m.seconds[i, j])
            wait = st.wait_at(arrival)
            if wait is None:
                continue
            detour_m = to_m + back_m - leg_m[i]
            detour_s = float(m.seconds[i, j] + m.seconds[j, i + 1] - m.seconds[i, i + 1])
            soc_arrival = vehicle.soc - (cum + to_m) * kpk / vehicle.battery_kwh
            soc_end = st.ready_soc - after_m * kpk / vehicle.battery_kwh
            new = _shifted(timed_route, i, st, arrival, wait, float(m.seconds[j, i + 1]), soc_end,
                           (total_m + detour_m) / 1000 * vehicle.kwh_per_km, total_m + detour_m)  # fmt: skip
            late = [
                s.order for s in new.stops
                if s.order and (end := _window_end(s)) is not None and s.start_s > end + 1e-3
            ]  # fmt: skip
            cost = (len(late), detour_s + wait)
            stop = SwapStop(vehicle.id, st.id, first + i, arrival, wait, st.mechanical_s, detour_m,
                            detour_s, soc_arrival, [x for x in late if x])  # fmt: skip
            if best is None or cost < best[0]:
                best = (cost, stop, new)
        cum += leg_m[i]
    if best is None:
        if not reachable:
            reason = _no_station_reason(need, usable, stations)
        else:
            reason = (
                f"energy: the route needs {need:.2f} kWh, the pack has {usable:.2f} kWh usable; the "
                "stations in reach have no ready pack at the arrival or leave too little for the rest"
            )
        return SwapDecision(base, None, True, reason, need_kwh=need, usable_kwh=usable)
    _, stop, new = best
    if first:
        new = dataclasses.replace(new, stops=[*route.stops[:first], *new.stops])
    return SwapDecision(new, stop, True, need_kwh=need, usable_kwh=usable)


def _no_station_reason(need: float, usable: float, stations: Sequence[SwapStation]) -> str:
    offline = [s.id for s in stations if not s.online]
    tail = f" (offline: {', '.join(offline)})" if offline else ""
    return (
        f"energy: the route needs {need:.2f} kWh, the pack has {usable:.2f} kWh usable above the "
        f"reserve, and no swap station is reachable with it{tail}"
    )


# --- the station state from the swap room's tables ------------------------------------------


def stations_from_tables(
    engine: Any,
    sites: dict[str, Point],
    *,
    now: float,
    day_start: float,
    ready_soc: float = 95.0,
) -> list[SwapStation]:
    """Each station of ``sites`` (id -> (lat, lon)) as the planner sees it: ready packs less the
    active reservations, when each charging pack will be ready (its SoC, the station's chargers
    and grid limit from its layout), the queue of swaps in progress. Times in seconds of the day
    that starts at epoch ``day_start``."""
    from sqlalchemy import func, select

    from anycar.swap import tables as t
    from anycar.swap.policy import load_layout

    out = []
    p, r, s = t.packs.c, t.reservations.c, t.swaps.c
    with engine.connect() as conn:
        for ident, point in sites.items():
            row = conn.execute(select(t.stations).where(t.stations.c.id == ident)).one_or_none()
            if row is None:
                raise ValueError(f"swap station {ident!r}: not registered")
            layout = load_layout(row.layout)
            packs = conn.execute(select(p.state, p.soc, p.capacity_kwh).where(p.station_id == ident)).all()
            held = conn.execute(
                select(func.count()).where(
                    r.station_id == ident, r.status.in_(("queued", "pending", "active")), r.expires >= now
                )
            ).scalar()
            queued = conn.execute(
                select(func.count()).where(s.station_id == ident, s.state == "requested")
            ).scalar()
            power = min(layout.charger_kw, float(row.grid_limit_kw) / layout.chargers)
            charging = sorted(
                max(0.0, (ready_soc - float(x.soc)) / 100 * float(x.capacity_kwh)) / power * 3600
                for x in packs
                if x.state == "charging"
            )
            # chargers work in parallel; the k-th pack starts when a charger frees up
            free = [0.0] * layout.chargers
            ready_at = []
            for need_s in charging:
                free.sort()
                free[0] += need_s
                ready_at.append(now - day_start + free[0])
            t0 = now - day_start
            out.append(
                SwapStation(
                    id=ident, point=point,
                    ready=max(0, sum(1 for x in packs if x.state == "ready") - int(held or 0)),
                    ready_at=tuple(ready_at),
                    busy=((t0, t0 + int(queued or 0) * layout.mechanical_s),) if queued else (),
                    mechanical_s=layout.mechanical_s, ready_soc=ready_soc / 100, online=bool(row.online),
                )
            )  # fmt: skip
    return out


# --- the reservation --------------------------------------------------------------------------


async def reserve(csms: Any, stop: SwapStop, token: str, *, now_s: float, day_start: float) -> Reservation:
    """ReserveNow at the chosen station until ``RESERVE_MARGIN_S`` after the expected arrival.

    The CSMS records the reservation (``swap_reservations``) and sends it; for a station that is
    not connected it holds it (status ``Queued``) and sends it when the station connects: the stop
    stays planned on the last known inventory, the pack is not guaranteed until the station
    accepts it. An unknown station or token comes back with the CSMS's reason and no id."""
    from anycar.swap.csms import SwapError

    expires = stop.arrival_s + stop.wait_s + RESERVE_MARGIN_S
    minutes = max(1.0, (expires - now_s) / 60)
    try:
        rid, status = await csms.reserve(stop.station, token, minutes=minutes)
    except SwapError as exc:
        stop.reservation = Reservation(stop.station, None, exc.reason, expires, str(exc))
        return stop.reservation
    stop.reservation = Reservation(stop.station, rid, str(status), expires)
    return stop.reservation


async def replan(
    csms: Any,
    route: Route,
    vehicle: PlanVehicle,
    stations: Sequence[SwapStation],
    provider: Any,
    previous: SwapStop | None,
    token: str,
    *,
    at_stop: int,
    now_s: float,
    day_start: float,
) -> SwapDecision:
    """The vehicle is at stop ``at_stop`` of the route as first planned, at ``now_s`` (seconds of
    the day) with ``vehicle.soc``: plan the swap again from there with its delay, and move the
    reservation (OCPP has no amend: cancel the old one, ReserveNow the new one)."""
    delay = max(0.0, now_s - route.stops[at_stop].departure_s)
    decision = plan_swap(route, vehicle, stations, provider, delay_s=delay, first=at_stop)
    old = previous.reservation if previous else None
    if old and old.reservation_id is not None and old.status in ("Accepted", "Queued"):
        await csms.cancel_reservation(old.station, old.reservation_id)
    if decision.swap is not None:
        await reserve(csms, decision.swap, token, now_s=now_s, day_start=day_start)
    return decision


def route_points(route: Route) -> list[Point]:
    return [s.point for s in route.stops]


def soc_after(route: Route, vehicle: PlanVehicle) -> float:
    """The charge left at the end of ``route`` without a swap (for reports)."""
    if vehicle.battery_kwh <= 0:
        return math.inf
    return vehicle.soc - route.energy_kwh / vehicle.battery_kwh
