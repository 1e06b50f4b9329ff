"""The solver libraries behind the planner: PyVRP (hybrid genetic search) for depot rounds, VROOM
(pyvroom) for paired pickup-delivery jobs and drivers' breaks, and as the benchmark's peer.

Each backend takes the same ``Job``/``Fleet`` lists the planner built and returns, per used
vehicle, the sequence of ``(job index, action)`` it chose; the planner times and checks the
routes itself. Distances and times are scaled to integers (``SCALE`` units per metre and per
second), as both libraries work in integers.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np

SCALE = 1000  # integer units per metre and per second: 1 mm, 1 ms
FORBIDDEN = 10**12  # an arc into a stop the vehicle may not make (a missing cargo feature, ...)


@dataclass
class Job:
    """One order as a solver sees it: one or two stops (points in the layout), the load."""

    ref: str
    kind: str  # delivery (from the vehicle's start) | pickup (to the end) | shipment (pickup -> drop)
    points: tuple[int, ...]  # delivery/pickup: the stop; shipment: (pickup, drop)
    windows: tuple[tuple[tuple[int, int], ...], ...]  # per stop, its windows (seconds)
    services: tuple[int, ...]  # per stop
    load: tuple[int, int]  # (0.1 kg, litres)
    prize: int
    required: bool
    vehicles: frozenset[int]  # fleet indices that may serve it
    priority: int = 0  # 0..9, the order's


@dataclass
class FleetVehicle:
    id: str
    start: int
    end: int
    capacity: tuple[int, int]
    shift: tuple[int, int]
    max_distance_m: float
    count: int = 1
    breaks: tuple[tuple[int, int, int], ...] = ()  # (earliest, latest, duration)


@dataclass
class Solved:
    routes: list[tuple[int, list[tuple[int, str]]]]  # (fleet index, [(job index, pickup|drop|visit)])
    unassigned: list[int]
    stopped_by: str
    elapsed_s: float
    solver: str
    notes: list[str] = field(default_factory=list)
    iterations: int | None = None  # PyVRP's search iterations (the tuning tool's CPU measure)


def _ints(a: np.ndarray) -> np.ndarray:
    return np.rint(a * SCALE).astype(np.int64)


def solve_pyvrp(
    jobs: list[Job],
    fleet: list[FleetVehicle],
    seconds: np.ndarray,
    meters: np.ndarray,
    coords: list[tuple[float, float]],
    time_limit_s: float,
    seed: int = 0,
    shipment_windows: dict[int, tuple[int, int]] | None = None,
    *,
    stop: Any = None,
    params: Any = None,
) -> Solved:
    """PyVRP 0.14: clients (several windows as a mutually exclusive group), shipments, per-vehicle
    capacity, shift, start and end, the battery as ``max_distance``, and stops a vehicle may not
    make as a routing profile whose arcs into them are forbidden. A shipment stop has one window
    in PyVRP (and shipments cannot be in a client group): ``shipment_windows`` says which (pickup, drop)
    window of a job with several to give it (default the first of each); the notes say so."""
    import pyvrp
    from pyvrp.stop import MaxRuntime

    started = time.perf_counter()
    dist, dur = _ints(meters), _ints(seconds)
    depot_points = sorted({0} | {v.start for v in fleet} | {v.end for v in fleet})
    stop_points = [p for j in jobs for p in j.points]
    # PyVRP wants depots' locations first; every client stop gets its own location too.
    order = depot_points + [p for p in stop_points if p not in depot_points]
    location_of = {p: i for i, p in enumerate(order)}
    locations = [pyvrp.Location(x=float(coords[p][1]), y=float(coords[p][0])) for p in order]
    idx = np.asarray(order)
    base_d, base_t = dist[np.ix_(idx, idx)], dur[np.ix_(idx, idx)]
    depots = [pyvrp.Depot(location=location_of[p]) for p in depot_points]
    depot_index = {p: i for i, p in enumerate(depot_points)}

    clients: list[pyvrp.Client] = []
    client_job: list[tuple[int, str]] = []
    groups: list[pyvrp.ClientGroup] = []
    shipments: list[pyvrp.Shipment] = []
    shipment_job: list[int] = []
    group_members: list[list[int]] = []
    group_required: list[bool] = []
    one_window: list[str] = []
    for ji, job in enumerate(jobs):
        load = list(job.load)
        if job.kind == "shipment":
            pi, di = (shipment_windows or {}).get(ji, (0, 0))
            (pe, pl), (de, dl) = job.windows[0][pi], job.windows[1][di]
            if len(job.windows[0]) > 1 or len(job.windows[1]) > 1:
                one_window.append(f"{job.ref} {_hhmm(pe)}-{_hhmm(pl)} > {_hhmm(de)}-{_hhmm(dl)}")
            shipments.append(
                pyvrp.Shipment(
                    pickup_location=location_of[job.points[0]],
                    delivery_location=location_of[job.points[1]],
                    pickup_tw_early=pe * SCALE,
                    pickup_tw_late=pl * SCALE,
                    pickup_service_duration=job.services[0] * SCALE,
                    delivery_tw_early=de * SCALE,
                    delivery_tw_late=dl * SCALE,
                    delivery_service_duration=job.services[1] * SCALE,
                    amount=load,
                    prize=job.prize,
                    required=job.required,
                    name=job.ref,
                )
            )
            shipment_job.append(ji)
            continue
        windows = job.windows[0]
        group = None
        if len(windows) > 1:
            group = len(group_members)
            group_members.append([])
            group_required.append(job.required)
        for early, late in windows:
            if group is not None:
                group_members[group].append(len(clients))
            clients.append(
                pyvrp.Client(
                    location=location_of[job.points[0]],
                    delivery=load if job.kind == "delivery" else [0, 0],
                    pickup=load if job.kind == "pickup" else [0, 0],
                    service_duration=job.services[0] * SCALE,
                    tw_early=early * SCALE,
                    tw_late=late * SCALE,
                    prize=job.prize,
                    required=job.required and group is None,
                    group=group,
                    name=job.ref,
                )
            )
            client_job.append((ji, "drop" if job.kind == "delivery" else "pickup"))
    groups = [pyvrp.ClientGroup(m, required=r) for m, r in zip(group_members, group_required, strict=True)]

    # Routing profiles: one per distinct set of stops some vehicles may not make.
    forbidden_of: list[frozenset[int]] = []
    for vi in range(len(fleet)):
        forbidden_of.append(
            frozenset(location_of[p] for job in jobs if vi not in job.vehicles for p in job.points)
        )
    profiles: list[frozenset[int]] = []
    for forbidden in forbidden_of:
        if forbidden not in profiles:
            profiles.append(forbidden)
    dist_m, dur_m = [], []
    for banned in profiles:
        d, t = base_d.copy(), base_t.copy()
        if banned:
            cols = np.asarray(sorted(banned))
            d[:, cols] = FORBIDDEN
            t[:, cols] = FORBIDDEN
            np.fill_diagonal(d, 0)
            np.fill_diagonal(t, 0)
        dist_m.append(d)
        dur_m.append(t)

    vehicle_types = []
    for vi, v in enumerate(fleet):
        max_distance = (
            np.iinfo(np.int64).max if not np.isfinite(v.max_distance_m) else int(v.max_distance_m * SCALE)
        )
        vehicle_types.append(
            pyvrp.VehicleType(
                num_available=v.count,
                capacity=list(v.capacity),
                start_depot=depot_index[v.start],
                end_depot=depot_index[v.end],
                tw_early=v.shift[0] * SCALE,
                tw_late=v.shift[1] * SCALE,
                max_distance=max_distance,
                profile=profiles.index(forbidden_of[vi]),
                name=v.id,
            )
        )
    data = pyvrp.ProblemData(
        locations=locations,
        clients=clients,
        depots=depots,
        vehicle_types=vehicle_types,
        distance_matrices=dist_m,
        duration_matrices=dur_m,
        groups=groups,
        shipments=shipments,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # stop/params: the tuning tool's fixed iteration budget and variants (tools/pyvrp_budget.py)
        result = pyvrp.solve(
            data,
            stop=stop if stop is not None else MaxRuntime(max(0.05, time_limit_s)),
            seed=seed,
            collect_stats=False,  # never read; measured about 5 % of the search's CPU on RC105
            display=False,
            **({"params": params} if params is not None else {}),
        )
        iterations = getattr(result, "num_iterations", None)
    best = result.best
    routes: list[tuple[int, list[tuple[int, str]]]] = []
    served: set[int] = set()
    for route in best.routes():
        seq: list[tuple[int, str]] = []
        for act in route.schedule():
            kind = act.type
            if kind == pyvrp.ActivityType.CLIENT:
                ji, action = client_job[act.idx]
            elif kind in (pyvrp.ActivityType.PICKUP, pyvrp.ActivityType.DELIVERY):
                ji = shipment_job[act.idx]
                action = "pickup" if kind == pyvrp.ActivityType.PICKUP else "drop"
            else:
                continue  # the depot at either end
            seq.append((ji, action))
            served.add(ji)
        routes.append((route.vehicle_type(), seq))
    notes = [] if best.is_feasible() else ["PyVRP found no feasible solution within the time limit"]
    if one_window:
        notes.append(
            "PyVRP: a paired job's stop takes one window, so these were given one each: "
            + ", ".join(one_window[:10])
            + (f" and {len(one_window) - 10} more" if len(one_window) > 10 else "")
        )
    if any(w.category.__name__ == "PenaltyBoundWarning" for w in caught):
        notes.append("PyVRP: its penalty for broken constraints reached its bound during the search")
    return Solved(
        routes=routes,
        unassigned=[i for i in range(len(jobs)) if i not in served],
        stopped_by="time_limit",
        elapsed_s=time.perf_counter() - started,
        solver=f"pyvrp {_version('pyvrp')}",
        notes=notes,
        iterations=iterations,
    )


def solve_vroom(
    jobs: list[Job],
    fleet: list[FleetVehicle],
    seconds: np.ndarray,
    meters: np.ndarray,
    time_limit_s: float,
    threads: int = 1,
    exploration: int = 5,
) -> Solved:
    """VROOM (pyvroom): jobs with several windows, shipments, skills for who may serve what (a
    cargo feature, goods on board: a delivery job is loaded at the vehicle's start, which for a
    vehicle out on its round is where it is now, with those goods), breaks, ``max_distance`` for
    the battery; it minimises travel time."""
    import vroom

    started = time.perf_counter()
    problem = vroom.Input()
    limit = np.iinfo(np.uint32).max
    dur = np.minimum(np.rint(seconds * SCALE), limit).astype(np.uint32)  # VROOM: 32-bit integers
    dist = np.minimum(np.rint(meters * SCALE), limit).astype(np.uint32)
    problem.set_durations_matrix("car", dur)
    problem.set_distances_matrix("car", dist)
    restricted = [ji for ji, j in enumerate(jobs) if len(j.vehicles) < len(fleet)]
    vehicle_ids: list[int] = []
    next_id = 1
    for vi, v in enumerate(fleet):
        # VROOM's skills mean "has every required skill": a job that only some vehicles may serve
        # gets a skill of its own, which exactly those vehicles have.
        skills = {vi + 1} | {1000 + ji for ji in restricted if vi in jobs[ji].vehicles}
        for _ in range(v.count):
            breaks = [
                vroom.Break(
                    id=100_000 * (vi + 1) + k,
                    time_windows=[vroom.TimeWindow(early * SCALE, late * SCALE)],
                    service=d * SCALE,
                )
                for k, (early, late, d) in enumerate(v.breaks)
            ]
            problem.add_vehicle(
                vroom.Vehicle(
                    id=next_id,
                    start=v.start,
                    end=v.end,
                    capacity=vroom.Amount(list(v.capacity)),
                    skills=skills,
                    time_window=vroom.TimeWindow(v.shift[0] * SCALE, v.shift[1] * SCALE),
                    breaks=breaks,
                    max_distance=int(min(v.max_distance_m * SCALE, limit)),
                )
            )
            vehicle_ids.append(vi)
            next_id += 1
    for ji, job in enumerate(jobs):
        job_skills = {1000 + ji} if ji in restricted else None
        priority = 100 if job.required else 10 * job.priority  # VROOM: 0..100
        windows = [[vroom.TimeWindow(a * SCALE, b * SCALE) for a, b in w] for w in job.windows]
        if job.kind == "shipment":
            problem.add_shipment(
                pickup=vroom.ShipmentStep(
                    id=ji,
                    location=job.points[0],
                    default_service=job.services[0] * SCALE,
                    time_windows=windows[0],
                ),
                delivery=vroom.ShipmentStep(
                    id=ji,
                    location=job.points[1],
                    default_service=job.services[1] * SCALE,
                    time_windows=windows[1],
                ),
                amount=vroom.Amount(list(job.load)),
                skills=job_skills,
                priority=priority,
            )
        else:
            amount = vroom.Amount(list(job.load))
            problem.add_job(
                vroom.Job(
                    id=ji,
                    location=job.points[0],
                    default_service=job.services[0] * SCALE,
                    delivery=amount if job.kind == "delivery" else vroom.Amount([0, 0]),
                    pickup=amount if job.kind == "pickup" else vroom.Amount([0, 0]),
                    skills=job_skills,
                    priority=priority,
                    time_windows=windows[0],
                )
            )
    solution = problem.solve(
        exploration_level=exploration, nb_threads=threads, timeout=timedelta(seconds=time_limit_s)
    )
    frame = solution.routes
    routes: list[tuple[int, list[tuple[int, str]]]] = []
    served: set[int] = set()
    for vehicle_id, rows in frame.groupby("vehicle_id", sort=True):
        seq: list[tuple[int, str]] = []
        for row in rows.itertuples():
            kind = str(row.type)
            if kind in ("job", "pickup", "delivery"):
                ji = int(row.id)
                seq.append((ji, {"job": "visit", "pickup": "pickup", "delivery": "drop"}[kind]))
                served.add(ji)
            elif kind == "break":
                seq.append((-1, "break"))
        routes.append((vehicle_ids[int(vehicle_id) - 1], seq))
    elapsed = time.perf_counter() - started
    return Solved(
        routes=routes,
        unassigned=[i for i in range(len(jobs)) if i not in served],
        stopped_by="time_limit" if elapsed >= time_limit_s * 0.95 else "converged",
        elapsed_s=elapsed,
        solver=f"vroom {_version('pyvroom')}",
    )


def _hhmm(seconds: int) -> str:
    h, m = divmod(int(seconds) // 60, 60)
    return f"{h:02d}:{m:02d}"


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"
