"""The value of planning swaps into the day: one simulated delivery day, two swap policies.

A seeded generator puts the day's orders on the streets of the shipped Helsinki extract (points
of its street map, each with a two-hour window); the logistics planner (PyVRP on road metres and
seconds) routes them for N PICKMANs from one depot, once, as if each had a full pack. Each vehicle
then starts the day with a seeded lower charge, and the same routes are driven in one simpy
simulation per policy, against the same stations (``anycar.swap.simulate``'s station model: one
bay, chargers sharing the grid limit, a store of ready packs):

* ``planned``: ``anycar.logistics.swapstops`` inserts a swap stop into each route that needs one
  (station by detour, queue and ready packs at the arrival, the forecast updated by every
  reservation before it) and reserves the pack: in the simulation the pack is set aside 15
  minutes before the planned arrival and the vehicle waits only for the bay;
* ``nearest``: the vehicle drives the route and, after the first stop where its charge is below
  20 %, goes to the station nearest by road, queues and swaps there, then goes on.

Reported per policy: swaps, the total and longest wait at the stations, the detour in km, drops
delivered within their window, and vehicles that went under the 15 % reserve.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from typing import Any

import simpy

from anycar.logistics.orders import Order, Place, Window
from anycar.logistics.planner import plan
from anycar.logistics.problem import PlanRequest, PlanVehicle, Route, Stop
from anycar.logistics.settings import vehicle_type
from anycar.logistics.swapstops import RoadProvider, SwapStation, plan_swap
from anycar.swap.policy import load_layout
from anycar.swap.simulate import Station

HOLD_BEFORE_S = 15 * 60.0  # the reserved pack is set aside this long before the planned arrival
THRESHOLD = 0.20  # the nearest-station policy swaps after a stop below this charge
RESERVE = 0.15
WEIGHT_KG = 22.0  # per order: at most 15 on a 350 kg PICKMAN, so every vehicle is used
READY_SOC = 95.0


def _street_points(network: Any, rng: random.Random, count: int) -> list[tuple[float, float]]:
    """``count`` distinct points on the extract's streets (vertices of its street map) that snap
    to the car network within 25 m."""
    from anycar.roads import base_map_path

    doc = json.loads(base_map_path().read_text(encoding="utf-8"))
    vertices = sorted(
        {
            (round(lat, 6), round(lon, 6))
            for f in doc["features"]
            if f["geometry"]["type"] == "LineString"
            for lon, lat in f["geometry"]["coordinates"]
        }
    )
    _, dist = network.snap(vertices)
    usable = [v for v, d in zip(vertices, dist, strict=True) if d <= 25.0]
    return rng.sample(usable, count)


def _window(stop: Stop) -> tuple[float, float] | None:
    if not stop.window or "-" not in stop.window:
        return None
    a, b = stop.window.split("-")
    return tuple(int(x.split(":")[0]) * 3600 + int(x.split(":")[1]) * 60 for x in (a, b))  # type: ignore[return-value]


def _charge_s(layout: Any, soc: float) -> float:
    power = min(layout.charger_kw, layout.grid_limit_kw / layout.chargers)
    return max(0.0, READY_SOC - soc * 100) / 100 * layout.capacity_kwh / power * 3600


@dataclasses.dataclass
class _Tally:
    swaps: int = 0
    waits: list[float] = dataclasses.field(default_factory=list)
    detour_m: float = 0.0
    drops: int = 0
    on_time: int = 0
    under_reserve: int = 0
    not_planned: list[str] = dataclasses.field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "swaps": self.swaps,
            "wait_total_min": round(sum(self.waits) / 60, 1),
            "wait_max_min": round(max(self.waits, default=0.0) / 60, 1),
            "detour_km": round(self.detour_m / 1000, 2),
            "drops": self.drops,
            "on_time": self.on_time,
            "on_time_share": round(self.on_time / self.drops, 4) if self.drops else 1.0,
            "under_reserve": self.under_reserve,
            "swap_not_found": self.not_planned,
        }


def _drive(env: simpy.Environment, stops: list[Stop], leg_s: list[float], tally: _Tally,
           stations: dict[str, Station], swap_soc: dict[int, float], hold: dict[int, simpy.Event]) -> Any:  # fmt: skip
    """A vehicle driving a timed route: legs as planned, service at each stop no earlier than its
    window; at a swap stop the station's bay (the pack was set aside by the reservation)."""
    for k, stop in enumerate(stops[1:], 1):
        yield env.timeout(max(0.0, leg_s[k - 1]))
        if stop.action == "swap":
            arrived = env.now
            yield hold[k]
            station = stations[stop.window]
            yield env.process(station.vehicle(swap_soc[k] * 100, reserved=True))
            tally.waits.append(env.now - arrived - station.layout.mechanical_s)  # hold + bay
            tally.swaps += 1
            continue
        if stop.action == "end":
            break
        window = _window(stop)
        if window is not None and env.now < window[0]:
            yield env.timeout(window[0] - env.now)
        _serve(env, stop, tally)
        yield env.timeout(stop.departure_s - stop.start_s)


def _serve(env: simpy.Environment, stop: Stop, tally: _Tally) -> None:
    """Count a drop, on time when its service starts within the window."""
    window = _window(stop)
    if stop.action == "drop":
        tally.drops += 1
        if window is None or env.now <= window[1] + 1e-3:
            tally.on_time += 1


def _reserve_hold(env: simpy.Environment, station: Station, at: float, done: simpy.Event) -> Any:
    yield env.timeout(max(0.0, at - env.now))
    yield station.ready.get(1)
    done.succeed()


def _nearest(env: simpy.Environment, route: Route, vehicle: PlanVehicle, m: Any, n_stops: int,
             stations: list[tuple[str, Station]], tally: _Tally) -> Any:  # fmt: skip
    """The same route with the 'nearest station below 20 %' rule."""
    stops = route.stops
    soc, swapped, low = vehicle.soc, False, False
    kpk = vehicle.kwh_per_km / 1000 / vehicle.battery_kwh
    for k in range(1, n_stops):
        prev = k - 1
        if not swapped and soc < THRESHOLD:
            j = min(range(len(stations)), key=lambda s: m.meters[prev, n_stops + s])
            _, station = stations[j]
            yield env.timeout(float(m.seconds[prev, n_stops + j]))
            soc -= float(m.meters[prev, n_stops + j]) * kpk
            low = low or soc < RESERVE
            arrived = env.now
            yield env.process(station.vehicle(max(0.0, soc) * 100))
            tally.waits.append(env.now - arrived - station.layout.mechanical_s)  # bay + pack
            tally.swaps += 1
            swapped, soc = True, READY_SOC / 100
            tally.detour_m += float(
                m.meters[prev, n_stops + j] + m.meters[n_stops + j, k] - m.meters[prev, k]
            )
            yield env.timeout(float(m.seconds[n_stops + j, k]))
            soc -= float(m.meters[n_stops + j, k]) * kpk
        else:
            yield env.timeout(float(m.seconds[prev, k]))
            soc -= float(m.meters[prev, k]) * kpk
        low = low or soc < RESERVE
        stop = stops[k]
        if stop.action == "end":
            break
        window = _window(stop)
        if window is not None and env.now < window[0]:
            yield env.timeout(window[0] - env.now)
        _serve(env, stop, tally)
        yield env.timeout(stop.departure_s - stop.start_s)
    tally.under_reserve += int(low)


def run(
    *, vehicles: int = 20, orders_per_vehicle: int = 15, stations: int = 2, layout: str = "pickman-8",
    seed: int = 1, time_limit_s: float = 10.0, soc: tuple[float, float] = (0.155, 0.21),
) -> dict[str, Any]:  # fmt: skip
    """One day, both policies; returns the figures of each and what the day was."""
    from anycar.roads import load_network

    started = time.perf_counter()
    rng = random.Random(seed)  # nosec B311 # a benchmark's reproducible randomness, not a secret
    network = load_network()
    provider = RoadProvider(network)
    shape = load_layout(layout)
    pickman = vehicle_type("kaiyun_pickman")  # the planner's figures for the vehicle type
    pts = _street_points(network, rng, 1 + stations + vehicles * orders_per_vehicle)
    depot, sites, drops = pts[0], pts[1 : 1 + stations], pts[1 + stations :]
    orders = []
    for i, (lat, lon) in enumerate(drops):
        start = rng.randrange(8 * 3600, 14 * 3600, 900)
        orders.append(
            Order(
                f"o{i + 1}",
                "delivery",
                Place(lat, lon, (Window(start, start + 7200),), 180),
                None,
                WEIGHT_KG,
                0.02,
            )
        )
    fleet = tuple(
        PlanVehicle(
            id=f"pickman-{i + 1}", start=depot, end=depot, soc=1.0, reserve=RESERVE,
            shift=Window(7 * 3600 + 1800, 19 * 3600), payload_kg=pickman.payload_kg,
            cargo_m3=pickman.cargo_m3, battery_kwh=pickman.battery_kwh, kwh_per_km=pickman.kwh_per_km,
        )
        for i in range(vehicles)
    )  # fmt: skip
    day = plan(PlanRequest(depot, tuple(orders), fleet, time_limit_s=time_limit_s, seed=seed), provider)
    by_id = {v.id: v for v in fleet}
    start_soc = {v.id: round(rng.uniform(*soc), 3) for v in fleet}
    packs = shape.slots - shape.empty_slots
    names = [f"station-{i + 1}" for i in range(stations)]

    # planned: swap stops chosen against the forecast, each reservation updating it
    forecast = [SwapStation(n, p, packs, mechanical_s=shape.mechanical_s, ready_soc=READY_SOC / 100)
                for n, p in zip(names, sites, strict=True)]  # fmt: skip
    planned: list[tuple[Route, dict[int, tuple[str, float, float]]]] = []
    t_planned = _Tally()
    for route in day.routes:
        v = dataclasses.replace(by_id[route.vehicle], soc=start_soc[route.vehicle])
        decision = plan_swap(route, v, forecast, provider)
        swaps: dict[int, tuple[str, float, float]] = {}
        if decision.swap is not None:
            s = decision.swap
            k = names.index(s.station)
            begin = s.arrival_s + s.wait_s
            forecast[k] = forecast[k].reserved(begin, begin + s.swap_s + _charge_s(shape, s.soc_arrival))
            swaps[s.after + 1] = (s.station, s.soc_arrival, s.arrival_s)
            t_planned.detour_m += s.detour_m
            if decision.route.soc_end < RESERVE - 1e-9:
                t_planned.under_reserve += 1
        elif decision.needed:
            t_planned.not_planned.append(f"{route.vehicle}: {decision.reason}")
            t_planned.under_reserve += 1
        planned.append((decision.route, swaps))

    def simulate_planned() -> None:
        env = simpy.Environment()
        srng = random.Random(seed)  # nosec B311 # reproducible simulation
        st = {n: Station(env, n, shape, packs, READY_SOC, srng) for n in names}
        for route, swaps in planned:
            stops = route.stops
            legs = [stops[k].arrival_s - stops[k - 1].departure_s for k in range(1, len(stops))]
            hold: dict[int, simpy.Event] = {}
            soc_at: dict[int, float] = {}
            for k, (name, soc_in, arrival) in swaps.items():
                hold[k] = env.event()
                soc_at[k] = soc_in
                env.process(_reserve_hold(env, st[name], arrival - HOLD_BEFORE_S, hold[k]))
            env.process(
                _start_at(env, stops[0].departure_s, _drive(env, stops, legs, t_planned, st, soc_at, hold))
            )
        env.run(until=2 * 86400)

    def simulate_nearest() -> _Tally:
        tally = _Tally()
        env = simpy.Environment()
        srng = random.Random(seed)  # nosec B311 # reproducible simulation
        st = [(n, Station(env, n, shape, packs, READY_SOC, srng)) for n in names]
        for route in day.routes:
            v = dataclasses.replace(by_id[route.vehicle], soc=start_soc[route.vehicle])
            m = provider.matrix([s.point for s in route.stops] + list(sites))
            env.process(
                _start_at(
                    env, route.stops[0].departure_s, _nearest(env, route, v, m, len(route.stops), st, tally)
                )
            )
        env.run(until=2 * 86400)
        return tally

    simulate_planned()
    t_nearest = simulate_nearest()
    return {
        "vehicles": vehicles,
        "stations": stations,
        "layout": shape.name,
        "orders": len(orders),
        "routed": sum(len(r.orders()) for r in day.routes),
        "unrouted": len(day.unservable),
        "routes": len(day.routes),
        "route_km": round(day.distance_m / 1000, 1),
        "start_soc": [round(min(start_soc.values()), 3), round(max(start_soc.values()), 3)],
        "matrix": day.matrix_source,
        "seed": seed,
        "planned": t_planned.to_json(),
        "nearest_below_20": t_nearest.to_json(),
        "elapsed_s": round(time.perf_counter() - started, 2),
    }


def _start_at(env: simpy.Environment, at: float, process: Any) -> Any:
    yield env.timeout(max(0.0, at - env.now))
    yield env.process(process)


def table(result: dict[str, Any]) -> str:
    """Both columns side by side."""
    a, b = result["planned"], result["nearest_below_20"]
    rows = [
        ("swaps", a["swaps"], b["swaps"]),
        ("total wait (min)", a["wait_total_min"], b["wait_total_min"]),
        ("longest wait (min)", a["wait_max_min"], b["wait_max_min"]),
        ("detour (km)", a["detour_km"], b["detour_km"]),
        ("drops on time", f"{a['on_time']}/{a['drops']}", f"{b['on_time']}/{b['drops']}"),
        ("under the reserve", a["under_reserve"], b["under_reserve"]),
    ]
    out = [f"{'':22}{'planned + reserved':>20}{'nearest below 20 %':>20}"]
    out += [f"{name:22}{x!s:>20}{y!s:>20}" for name, x, y in rows]
    out.append(
        f"{result['vehicles']} PICKMANs, {result['stations']} x {result['layout']}, {result['orders']} orders "
        f"({result['routed']} routed, {result['route_km']} km), start SoC {result['start_soc'][0]:.0%}-"
        f"{result['start_soc'][1]:.0%}, {result['matrix']}, seed {result['seed']}"
    )
    return "\n".join(out)
