"""Planning: orders + vehicles + travel matrix -> routes, with every left-out order explained.

The one entry point, ``plan(request, provider)``, is what the API, the CLI and the benchmark call.
It lays out the points, asks the matrix provider for travel times, rules out what no vehicle
could serve alone (``precheck``), hands the rest to the solver library, then times every route
itself on the unscaled matrix and checks it (windows, shift, load, battery): a route the checks
refuse is reported, never passed off as feasible.

Solver choice (measured, see docs/logistics.md): PyVRP for depot rounds (VRPTW: clearly better
on Solomon); with paired pickup-delivery jobs VROOM first (fast, close to the BKS where it finds
a solution), then PyVRP on the time left (it finds a solution more often), the better checked
plan kept; VROOM alone when a vehicle has a driver's break (PyVRP has none).
"""

from __future__ import annotations

import math
import time
from typing import NamedTuple

from anycar.logistics.layout import Layout, build_layout
from anycar.logistics.matrix import MatrixProvider
from anycar.logistics.orders import Order, Place, clock
from anycar.logistics.precheck import check
from anycar.logistics.problem import Plan, PlanRequest, PlanVehicle, Route, Stop
from anycar.logistics.solvers import FleetVehicle, Job, Solved, solve_pyvrp, solve_vroom

EPS = 1e-3  # seconds of rounding slack when checking the solver's routes on the float matrix


def _load(order: Order) -> tuple[int, int]:
    return (round(order.weight_kg * 10), round(order.volume_m3 * 1000))


def _windows(place: Place) -> tuple[tuple[int, int], ...]:
    return tuple((w.start, w.end) for w in place.windows)


def _out_on_round(v: PlanVehicle, request: PlanRequest) -> bool:
    return v.start != request.depot


class _Common(NamedTuple):
    ref: str
    load: tuple[int, int]
    prize: int
    required: bool
    vehicles: frozenset[int]
    priority: int


class _Problem:
    """The solver's view of the request: jobs, fleet, and which layout point is whose."""

    def __init__(self, request: PlanRequest, layout: Layout, allowed: dict[str, set[int]]) -> None:
        self.request, self.layout = request, layout
        self.jobs: list[Job] = []
        self.notes: list[str] = []
        far = float(layout.meters.max()) if layout.meters.size else 1.0
        base = max(1, int(far * 4 * 1000))  # a prize worth more than any detour it costs
        away = any(_out_on_round(v, request) for v in request.vehicles)
        for order in request.orders:
            if order.ref not in allowed:
                continue
            onboard = any(order.ref in v.onboard for v in request.vehicles)
            prize = base * (1 + order.priority)
            vehicles = frozenset(allowed[order.ref])
            common = _Common(order.ref, _load(order), prize, request.all_required, vehicles, order.priority)
            if order.kind == "courier" and not onboard:
                pickup, drop = order.pickup, order.drop
                if pickup is None or drop is None:
                    raise ValueError(f"order {order.ref}: a courier job needs a pickup and a drop-off")
                self.jobs.append(
                    Job(
                        kind="shipment",
                        points=(layout.place[(order.ref, "pickup")], layout.place[(order.ref, "drop")]),
                        windows=(_windows(pickup), _windows(drop)),
                        services=(pickup.service_s, drop.service_s),
                        **common._asdict(),
                    )
                )
            elif order.kind == "delivery" and away and not onboard:
                # Some vehicle is out on its round: the goods are at the depot, so the job is a
                # shipment from the depot (a vehicle must pass there first).
                drop = order.drop
                if drop is None:
                    raise ValueError(f"order {order.ref}: a delivery needs a drop-off")
                depot_stop = layout.add(request.depot)
                layout.place[(order.ref, "load")] = depot_stop
                self.jobs.append(
                    Job(
                        kind="shipment",
                        points=(depot_stop, layout.place[(order.ref, "drop")]),
                        windows=(((0, 2 * 86_400),), _windows(drop)),
                        services=(0, drop.service_s),
                        **common._asdict(),
                    )
                )
            else:
                action = "pickup" if order.kind == "pickup" else "drop"
                place = order.pickup if action == "pickup" else order.drop
                if place is None:
                    raise ValueError(f"order {order.ref}: no {action} place")
                self.jobs.append(
                    Job(
                        kind="pickup" if action == "pickup" else "delivery",
                        points=(layout.place[(order.ref, action)],),
                        windows=(_windows(place),),
                        services=(place.service_s,),
                        **common._asdict(),
                    )
                )
        self.fleet = [
            FleetVehicle(
                id=v.id,
                start=layout.vehicle_start[i],
                end=layout.vehicle_end[i],
                capacity=(round(v.payload_kg * 10), round(v.cargo_m3 * 1000)),
                shift=(v.shift.start, v.shift.end),
                max_distance_m=v.range_m,
                count=v.count,
                breaks=tuple((b.earliest, b.latest, b.duration_s) for b in v.breaks),
            )
            for i, v in enumerate(request.vehicles)
        ]

    def earliest_windows(self, ji: int) -> tuple[int, int]:
        """For a paired job with several windows: the (pickup, drop) window indices a vehicle
        reaches first, from the earliest start of the vehicles that may serve it (what PyVRP,
        which takes one window per shipment stop, is given when VROOM did not choose)."""
        job, layout, fleet = self.jobs[ji], self.layout, self.fleet
        sec = layout.seconds
        pickup, drop = job.points
        t = min(
            (fleet[vi].shift[0] + float(sec[fleet[vi].start, pickup]) for vi in job.vehicles), default=0.0
        )
        pi = next((i for i, (_, b) in enumerate(job.windows[0]) if t <= b), len(job.windows[0]) - 1)
        t = max(t, job.windows[0][pi][0]) + job.services[0] + float(sec[pickup, drop])
        di = next((i for i, (_, b) in enumerate(job.windows[1]) if t <= b), len(job.windows[1]) - 1)
        return pi, di

    def windows_used(self, routes: list[Route]) -> dict[int, tuple[int, int]]:
        """The window each served paired job's stops fell in, in a timed plan (VROOM's)."""
        index = {job.ref: ji for ji, job in enumerate(self.jobs) if job.kind == "shipment"}
        seen: dict[int, list[int]] = {}
        for route in routes:
            for stop in route.stops:
                ji = index.get(stop.order or "")
                if ji is None or stop.action not in ("pickup", "load", "drop"):
                    continue
                side = 0 if stop.action in ("pickup", "load") else 1
                texts = [f"{clock(a)}-{clock(b)}" for a, b in self.jobs[ji].windows[side]]
                if stop.window in texts:
                    seen.setdefault(ji, [0, 0])[side] = texts.index(stop.window)
        return {ji: (p, d) for ji, (p, d) in seen.items()}


def _time_route(
    request: PlanRequest, problem: _Problem, vi: int, label: str, seq: list[tuple[int, str]]
) -> tuple[Route, list[str]]:
    """Times one solver route on the float matrix and lists what it breaks, if anything."""
    layout, v = problem.layout, request.vehicles[vi]
    orders = {o.ref: o for o in request.orders}
    sec, met = layout.seconds, layout.meters
    at = layout.vehicle_start[vi]
    load = sum(
        orders[problem.jobs[ji].ref].weight_kg
        for ji, _ in seq
        if ji >= 0 and problem.jobs[ji].kind == "delivery"
    )
    t = float(v.shift.start)
    stops = [Stop(None, "start", layout.points[at], t, t, t, load)]
    distance = 0.0
    broken: list[str] = []
    for ji, action in seq:
        if ji < 0:
            continue  # a break VROOM placed: its time is in the next leg's waiting
        job = problem.jobs[ji]
        order = orders[job.ref]
        if job.kind == "shipment":
            point = job.points[0] if action == "pickup" else job.points[1]
            windows = job.windows[0] if action == "pickup" else job.windows[1]
            service = job.services[0] if action == "pickup" else job.services[1]
        else:
            point, windows, service = job.points[0], job.windows[0], job.services[0]
        is_depot_load = (job.ref, "load") in layout.place and point == layout.place[(job.ref, "load")]
        t += float(sec[at, point])
        distance += float(met[at, point])
        arrival = t
        window = next(((a, b) for a, b in windows if t <= b + EPS), None)
        if window is None:
            broken.append(f"{job.ref}: arrives after its last window")
            window = windows[-1]
        begin = max(t, float(window[0]))
        t = begin + service
        if job.kind == "shipment":
            load += order.weight_kg if action == "pickup" else -order.weight_kg
            kind = ("load" if is_depot_load else "pickup") if action == "pickup" else "drop"
        elif job.kind == "delivery":
            load -= order.weight_kg
            kind = "drop"
        else:
            load += order.weight_kg
            kind = "pickup"
        if load > v.payload_kg + 1e-6:
            broken.append(f"{job.ref}: load {load:g} kg over the payload {v.payload_kg:g} kg")
        stops.append(
            Stop(
                job.ref,
                kind,
                layout.points[point],
                arrival,
                begin,
                t,
                load,
                f"{clock(window[0])}-{clock(window[1])}",
            )
        )
        at = point
    end = layout.vehicle_end[vi]
    t += float(sec[at, end])
    distance += float(met[at, end])
    stops.append(Stop(None, "end", layout.points[end], t, t, t, load))
    if t > v.shift.end + EPS:
        broken.append(f"{label}: back after the shift ends")
    energy = distance / 1000 * v.kwh_per_km
    soc_end = v.soc - (energy / v.battery_kwh if v.battery_kwh > 0 else 0.0)
    if soc_end < v.reserve - 1e-9 and math.isfinite(v.range_m):
        broken.append(f"{label}: the charge ends at {soc_end:.0%}, below the {v.reserve:.0%} reserve")
    route = Route(label, stops, distance, t - v.shift.start, energy, soc_end)
    return route, broken


MIN_SECOND_TRY_S = 0.5  # less time left than this after VROOM: PyVRP is not tried


class _Outcome(NamedTuple):
    solved: Solved
    routes: list[Route]
    feasible: bool
    notes: list[str]
    unservable: dict[str, str]


def _outcome(request: PlanRequest, problem: _Problem, solved: Solved, unservable: dict[str, str]) -> _Outcome:
    """A solver's answer timed, checked, and its left-out orders explained."""
    routes: list[Route] = []
    notes = problem.notes + solved.notes
    feasible = not any("no feasible" in n for n in solved.notes)
    used: dict[int, int] = {}
    for vi, seq in solved.routes:
        if not seq:
            continue
        used[vi] = used.get(vi, 0) + 1
        v = request.vehicles[vi]
        label = v.id if v.count == 1 else f"{v.id}#{used[vi]}"
        route, broken = _time_route(request, problem, vi, label, seq)
        routes.append(route)
        if broken:
            feasible = False
            notes.extend(broken)
    priority = {o.ref: o.priority for o in request.orders}
    for ji in solved.unassigned:
        ref = problem.jobs[ji].ref
        unservable[ref] = (
            "left out by the solver: it does not fit into any route together with the other orders "
            f"(capacity, time windows, shift or battery); priority {priority[ref]}"
        )
    if request.all_required and unservable:
        feasible = False
    return _Outcome(solved, routes, feasible, notes, unservable)


def plan(request: PlanRequest, provider: MatrixProvider) -> Plan:
    """Plan ``request``: the best routes the solver found in the time limit, each one checked."""
    started = time.perf_counter()
    layout = build_layout(request, provider)
    unservable, allowed = check(request, layout)
    problem = _Problem(request, layout, allowed)
    if problem.jobs and len(layout.points) != len(layout.matrix.seconds if layout.matrix is not None else []):
        layout.matrix = provider.matrix(layout.points)  # depot stops were added: measure them too
    has_breaks = any(v.breaks for v in request.vehicles)
    paired = any(j.kind == "shipment" for j in problem.jobs)
    if request.solver not in ("auto", "pyvrp", "vroom"):
        raise ValueError(f"solver {request.solver!r}: one of auto, pyvrp, vroom")
    if request.solver == "pyvrp" and has_breaks:
        raise ValueError("PyVRP cannot model drivers' breaks; use the vroom solver")
    limit = request.time_limit_s

    def pyvrp(seconds: float, chosen: dict[int, tuple[int, int]] | None = None) -> Solved:
        # PyVRP 0.14's shipments take one window per stop and its client groups single clients
        # only, so a paired job with several windows gets one pair: VROOM's where it chose, else
        # the earliest a vehicle reaches (said in the notes; VROOM models every window).
        picks = {
            ji: (chosen or {}).get(ji) or problem.earliest_windows(ji)
            for ji, job in enumerate(problem.jobs)
            if job.kind == "shipment" and (len(job.windows[0]) > 1 or len(job.windows[1]) > 1)
        }
        return solve_pyvrp(
            problem.jobs,
            problem.fleet,
            layout.seconds,
            layout.meters,
            layout.points,
            seconds,
            request.seed,
            shipment_windows=picks,
        )

    if not problem.jobs:
        candidates = [Solved([], [], "converged", 0.0, "none")]
    elif request.solver == "vroom" or (request.solver == "auto" and has_breaks):
        candidates = [solve_vroom(problem.jobs, problem.fleet, layout.seconds, layout.meters, limit)]
    elif request.solver == "pyvrp" or not paired:
        candidates = [pyvrp(limit)]
    else:
        # Paired jobs, measured: VROOM is fast and close to the BKS where it finds a solution,
        # PyVRP finds one more often given the time. VROOM first, PyVRP on what time is left,
        # and the better checked plan kept.
        candidates = [solve_vroom(problem.jobs, problem.fleet, layout.seconds, layout.meters, limit)]
        left = limit - (time.perf_counter() - started)
        if left >= MIN_SECOND_TRY_S:
            first = _outcome(request, problem, candidates[0], dict(unservable))
            candidates.append(pyvrp(left, problem.windows_used(first.routes)))
    outcomes = [_outcome(request, problem, solved, dict(unservable)) for solved in candidates]
    best = min(
        outcomes, key=lambda o: (not o.feasible, len(o.unservable), sum(r.distance_m for r in o.routes))
    )
    solved, routes, feasible, notes = best.solved, best.routes, best.feasible, best.notes
    unservable = best.unservable
    if len(outcomes) > 1:
        others = [o.solved.solver for o in outcomes if o is not best]
        notes.append(f"{solved.solver} kept; also tried: {', '.join(others)}")
    matrix = layout.matrix
    return Plan(
        routes=routes,
        unservable=unservable,
        feasible=feasible,
        stopped_by="time_limit"
        if any(c.stopped_by == "time_limit" for c in candidates)
        else solved.stopped_by,
        solver=solved.solver,
        elapsed_s=time.perf_counter() - started,
        matrix_source=matrix.source if matrix is not None else "",
        estimate=bool(matrix.estimate) if matrix is not None else False,
        notes=notes,
    )
