"""``anycar bench dispatch``: the planner on Solomon (VRPTW) and Li & Lim (PDPTW) against the best
known solutions, VROOM (pyvroom) as the peer in the same run, and a re-dispatch round.

Each instance goes through ``anycar.logistics.planner.plan`` as an API call does (read from the
instance file into orders and a fleet, planar Euclidean matrix, unrounded as the BKS are). Both
solvers get one thread. Gaps are to the distance-first BKS (``NAME_distance``) for Solomon and to
the BKS at the BKS's vehicle count for Li & Lim (the fleet is limited to it).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from anycar.logistics import instances
from anycar.logistics.matrix import Planar, StraightLine, haversine_m
from anycar.logistics.orders import Order, Place, Window
from anycar.logistics.planner import plan
from anycar.logistics.problem import Plan, PlanRequest, PlanVehicle
from anycar.logistics.redispatch import redispatch
from anycar.logistics.settings import service_area, vehicle_type

Progress = Callable[[str], None]
VROOM_PUBLISHED = {"solomon_gap_pct": 1.63, "source": "the issue's anchor (VROOM's Solomon benchmark)"}


def default_data_dir() -> Path:
    env = os.environ.get("ANYCAR_VRP_DIR")
    if env:
        return Path(env)
    for base in (Path.cwd(), *Path.cwd().parents):
        candidate = base / "shared" / "vrp"
        if candidate.is_dir():
            return candidate
        candidate = base.parent / "shared" / "vrp"
        if candidate.is_dir():
            return candidate
    return Path("../shared/vrp")


def solomon_class(name: str) -> str:
    """C101 -> C1, RC208 -> RC2, lrc104 -> LRC1."""
    upper = name.upper()
    head = upper.rstrip("0123456789")
    return f"{head}{upper[len(head)]}"


def _one(request: PlanRequest, solver: str, bks: float) -> dict[str, Any]:
    started = time.perf_counter()
    result: Plan = plan(replace(request, solver=solver), Planar())
    wall = time.perf_counter() - started
    served = not result.unservable
    return {
        "solver": result.solver,
        "feasible": result.feasible and served,
        "distance": round(result.distance_m, 2),
        "vehicles": len(result.routes),
        "gap_pct": round(100 * (result.distance_m / bks - 1), 3) if result.feasible and served else None,
        "seconds": round(wall, 3),
        "unserved": len(result.unservable),
    }


def _average(values: Sequence[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return round(sum(got) / len(got), 3) if got else None


def _by_class(rows: list[dict[str, Any]], keys: list[str]) -> dict[str, dict[str, Any]]:
    classes: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        classes.setdefault(row["class"], []).append(row)
    out: dict[str, dict[str, Any]] = {}
    for cls in sorted(classes):
        group = classes[cls]
        out[cls] = {"instances": len(group)}
        for key in keys:
            out[cls][f"{key}_gap_pct"] = _average([r[key]["gap_pct"] for r in group])
            out[cls][f"{key}_solved"] = sum(1 for r in group if r[key]["feasible"])
    return out


def run_solomon(
    data: Path, names: list[str] | None, limits: list[float], vroom_limit: float, tick: Progress
) -> dict[str, Any]:
    bks = json.loads((data / "VRPTW_BKS.json").read_text())
    files = sorted((data / "solomon").glob("*.txt"))
    chosen = [f for f in files if names is None or f.stem.upper() in names]
    rows = []
    for f in chosen:
        name = f.stem.upper()
        ref = bks[f"{name}_distance"]["best_known_cost"]
        row: dict[str, Any] = {"instance": name, "class": solomon_class(name), "bks_distance": ref}
        for limit in limits:
            tick(f"Solomon {name}: anycar {limit:g} s")
            row[f"anycar_{limit:g}s"] = _one(instances.solomon(f, time_limit_s=limit), "auto", ref)
        tick(f"Solomon {name}: vroom")
        row["vroom"] = _one(instances.solomon(f, time_limit_s=vroom_limit), "vroom", ref)
        rows.append(row)
    keys = [f"anycar_{limit:g}s" for limit in limits] + ["vroom"]
    return {
        "instances": rows,
        "by_class": _by_class(rows, keys),
        "average_gap_pct": {k: _average([r[k]["gap_pct"] for r in rows]) for k in keys},
        "solved": {k: sum(1 for r in rows if r[k]["feasible"]) for k in keys},
        "count": len(rows),
    }


def run_li_lim(
    data: Path,
    names: list[str] | None,
    limit: float,
    vroom_limit: float,
    tick: Progress,
    with_pyvrp: bool = True,
) -> dict[str, Any]:
    bks = json.loads((data / "PDPTW_BKS.json").read_text())
    files = sorted((data / "li_lim_100").glob("*.txt"))
    chosen = [f for f in files if names is None or f.stem.upper() in names]
    rows = []
    for f in chosen:
        entry = bks[f.stem]
        ref, fleet = entry["best_known_cost"], entry["solved_with_vehicles"]
        row: dict[str, Any] = {
            "instance": f.stem,
            "class": solomon_class(f.stem),
            "bks_distance": ref,
            "bks_vehicles": fleet,
        }
        tick(f"Li & Lim {f.stem}: anycar {limit:g} s")
        row[f"anycar_{limit:g}s"] = _one(instances.li_lim(f, vehicles=fleet, time_limit_s=limit), "auto", ref)
        if with_pyvrp:  # the solver the planner did not pick for paired jobs, measured beside it
            tick(f"Li & Lim {f.stem}: pyvrp {limit:g} s")
            row[f"pyvrp_{limit:g}s"] = _one(
                instances.li_lim(f, vehicles=fleet, time_limit_s=limit), "pyvrp", ref
            )
        tick(f"Li & Lim {f.stem}: vroom")
        row["vroom"] = _one(instances.li_lim(f, vehicles=fleet, time_limit_s=vroom_limit), "vroom", ref)
        rows.append(row)
    keys = [f"anycar_{limit:g}s", *([f"pyvrp_{limit:g}s"] if with_pyvrp else []), "vroom"]
    return {
        "instances": rows,
        "by_class": _by_class(rows, keys),
        "average_gap_pct": {k: _average([r[k]["gap_pct"] for r in rows]) for k in keys},
        "solved": {k: sum(1 for r in rows if r[k]["feasible"]) for k in keys},
        "count": len(rows),
    }


def redispatch_scenario(
    vehicles: int = 10, orders: int = 100, seed: int = 7, first_limit_s: float = 5.0
) -> tuple[PlanRequest, Plan]:
    """A morning round in the service area: ``vehicles`` PICKMANs, ``orders`` deliveries with
    two-hour windows, planned once (the plan in force)."""
    rng = random.Random(seed)  # nosec B311 # a reproducible benchmark scenario, not a secret
    area = service_area()
    depot = ((area.min_lat + area.max_lat) / 2, (area.min_lon + area.max_lon) / 2)
    kind = vehicle_type("kaiyun_pickman")
    fleet = tuple(
        PlanVehicle(
            id=f"pickman-{i + 1:02d}",
            start=depot,
            end=depot,
            payload_kg=kind.payload_kg,
            cargo_m3=kind.cargo_m3,
            battery_kwh=kind.battery_kwh,
            kwh_per_km=kind.kwh_per_km,
            soc=0.9,
            shift=Window(8 * 3600, 18 * 3600),
            features=kind.features,
        )
        for i in range(vehicles)
    )
    todo = []
    for i in range(orders):
        start = 8 * 3600 + rng.randrange(0, 8) * 3600
        todo.append(
            Order(
                ref=f"o{i + 1:03d}",
                kind="delivery",
                drop=Place(
                    rng.uniform(area.min_lat + 0.02, area.max_lat - 0.02),
                    rng.uniform(area.min_lon + 0.03, area.max_lon - 0.03),
                    (Window(start, start + 2 * 3600),),
                    180,
                ),
                pickup=None,
                weight_kg=rng.choice([5.0, 10.0, 15.0, 25.0]),
            )
        )
    request = PlanRequest(depot=depot, orders=tuple(todo), vehicles=fleet, time_limit_s=first_limit_s)
    return request, plan(request, _provider())


DETOUR = 1.3


def _provider() -> StraightLine:
    return StraightLine(detour=DETOUR, speed_kmh=vehicle_type("kaiyun_pickman").speed_kmh)


def mid_route(
    request: PlanRequest, current: Plan, now: int
) -> tuple[PlanRequest, dict[str, list[str]], dict[str, list[dict[str, Any]]]]:
    """The vehicles at ``now``: each one where its last stop before ``now`` was, the goods of its
    remaining stops on board, its charge lowered by what it drove; delivered orders removed."""
    orders = {o.ref: o for o in request.orders}
    vehicles = {v.id: v for v in request.vehicles}
    done: set[str] = set()
    before: dict[str, list[str]] = {}
    fixed: dict[str, list[dict[str, Any]]] = {}
    now_vehicles = []
    for route in current.routes:
        v = vehicles[route.vehicle]
        made = [s for s in route.stops if s.order is not None and s.departure_s <= now]
        rest = [s.order for s in route.stops if s.order is not None and s.departure_s > now]
        done |= {s.order for s in made if s.order is not None}
        fixed[v.id] = [s.to_json() for s in made]
        before[v.id] = [r for r in rest if r is not None]
        where = made[-1].point if made else v.start
        path = [v.start, *(s.point for s in made)]
        driven_km = sum(haversine_m(a, b) for a, b in itertools.pairwise(path)) * DETOUR / 1000
        energy = driven_km * v.kwh_per_km
        now_vehicles.append(
            replace(
                v,
                start=where,
                soc=max(0.0, v.soc - energy / v.battery_kwh),
                shift=Window(max(now, v.shift.start), v.shift.end),
                onboard=tuple(before[v.id]) if made else (),
            )
        )
    used = {r.vehicle for r in current.routes}
    now_vehicles += [
        replace(v, shift=Window(max(now, v.shift.start), v.shift.end))
        for v in request.vehicles
        if v.id not in used
    ]
    open_orders = tuple(orders[r] for r in orders if r not in done)
    return replace(request, orders=open_orders, vehicles=tuple(now_vehicles)), before, fixed


def midday(
    vehicles: int = 10, onboard: int = 7, at_depot: int = 30, now: int = 10 * 3600, seed: int = 11
) -> tuple[PlanRequest, dict[str, list[str]], dict[str, list[dict[str, Any]]]]:
    """Mid-morning: every vehicle out on its round, 3 stops made, ``onboard`` deliveries still in
    its cargo box, some charge used; ``at_depot`` more orders waiting at the depot, already shared
    out in the plan in force. (Built directly, so that all ``vehicles`` are mid-route: a planned
    morning of small parcels uses fewer vehicles than the fleet has.)"""
    rng = random.Random(seed)  # nosec B311 # a reproducible benchmark scenario, not a secret
    area = service_area()
    depot = ((area.min_lat + area.max_lat) / 2, (area.min_lon + area.max_lon) / 2)
    kind = vehicle_type("kaiyun_pickman")

    def point() -> tuple[float, float]:
        return (
            rng.uniform(area.min_lat + 0.02, area.max_lat - 0.02),
            rng.uniform(area.min_lon + 0.03, area.max_lon - 0.03),
        )

    def order(ref: str, start: int, hours: int) -> Order:
        lat, lon = point()
        return Order(
            ref,
            "delivery",
            Place(lat, lon, (Window(start, start + hours * 3600),), 180),
            None,
            rng.choice([5.0, 10.0, 20.0]),
        )

    fleet, orders = [], []
    before: dict[str, list[str]] = {}
    fixed: dict[str, list[dict[str, Any]]] = {}
    waiting = [order(f"d{i + 1:03d}", now + 3600 * rng.randrange(1, 5), 2) for i in range(at_depot)]
    for k in range(vehicles):
        vid = f"pickman-{k + 1:02d}"
        made = [point() for _ in range(3)]
        fixed[vid] = [
            {"order": f"{vid}-done-{j + 1}", "action": "drop", "lat": p[0], "lon": p[1]}
            for j, p in enumerate(made)
        ]
        carried = [order(f"{vid}-o{j + 1}", now, 5) for j in range(onboard)]
        orders += carried
        before[vid] = [o.ref for o in carried] + [o.ref for o in waiting[k::vehicles]]
        fleet.append(
            PlanVehicle(
                id=vid,
                start=made[-1],
                end=depot,
                payload_kg=kind.payload_kg,
                cargo_m3=kind.cargo_m3,
                battery_kwh=kind.battery_kwh,
                kwh_per_km=kind.kwh_per_km,
                soc=rng.uniform(0.5, 0.85),
                shift=Window(now, 18 * 3600),
                features=kind.features,
                onboard=tuple(o.ref for o in carried),
            )
        )
    request = PlanRequest(depot=depot, orders=(*orders, *waiting), vehicles=tuple(fleet))
    return request, before, fixed


def run_redispatch(
    limit: float, tick: Progress, vehicles: int = 10, open_orders: int = 100
) -> dict[str, Any]:
    tick("re-dispatch: mid-morning")
    onboard = 7
    later, before, fixed = midday(vehicles, onboard, open_orders - vehicles * onboard)
    now = later.vehicles[0].shift.start
    area = service_area()
    urgent = Order(
        ref="urgent-1",
        kind="delivery",
        drop=Place(
            (area.min_lat + area.max_lat) / 2 + 0.01,
            (area.min_lon + area.max_lon) / 2 + 0.02,
            (Window(now, now + 3600),),
            120,
        ),
        pickup=None,
        weight_kg=10.0,
        priority=9,
    )
    later = replace(later, orders=(*later.orders, urgent), time_limit_s=limit)
    tick(f"re-dispatch: {len(later.orders)} open orders, {len(later.vehicles)} vehicles")
    started = time.perf_counter()
    proposal = redispatch(later, _provider(), before, fixed)
    wall = time.perf_counter() - started
    routes_with = {r.vehicle for r in proposal.plan.routes if "urgent-1" in r.orders()}
    return {
        "vehicles": len(later.vehicles),
        "vehicles_mid_route": sum(1 for v in later.vehicles if v.start != later.depot),
        "open_orders": len(later.orders) - 1,
        "on_board": sum(len(v.onboard) for v in later.vehicles),
        "new_urgent_order": 1,
        "time_limit_s": limit,
        "solver": proposal.plan.solver,
        "stopped_by": proposal.plan.stopped_by,
        "seconds": round(wall, 3),
        "feasible": proposal.plan.feasible,
        "urgent_served_by": sorted(routes_with),
        "unservable": len(proposal.plan.unservable),
        "changes": proposal.summary(),
        "fixed_stops": sum(len(f) for f in fixed.values()),
    }


def run(
    data: Path,
    *,
    solomon_names: list[str] | None = None,
    li_lim_names: list[str] | None = None,
    limits: list[float] | None = None,
    li_lim_limit: float = 10.0,
    vroom_limit: float = 5.0,
    redispatch_limit: float = 1.0,
    parts: Sequence[str] = ("solomon", "li_lim", "redispatch"),
    tick: Progress = lambda _: None,
    li_lim_pyvrp: bool = True,
) -> dict[str, Any]:
    load_before = os.getloadavg()
    started = time.perf_counter()
    out: dict[str, Any] = {"benchmark": "dispatch", "data": str(data), "threads": 1}
    if "solomon" in parts:
        out["solomon"] = run_solomon(data, solomon_names, limits or [5.0, 1.0], vroom_limit, tick)
    if "li_lim" in parts:
        out["li_lim"] = run_li_lim(data, li_lim_names, li_lim_limit, vroom_limit * 2, tick, li_lim_pyvrp)
    if "redispatch" in parts:
        out["redispatch"] = run_redispatch(redispatch_limit, tick)
    out["vroom_published"] = VROOM_PUBLISHED
    out["wall_s"] = round(time.perf_counter() - started, 1)
    out["load_average"] = {
        "before": [round(x, 2) for x in load_before],
        "after": [round(x, 2) for x in os.getloadavg()],
    }
    return out


def planned_steps(
    data: Path,
    solomon_names: list[str] | None,
    li_lim_names: list[str] | None,
    limits: list[float],
    parts: Sequence[str],
) -> int:
    """How many ticks ``run`` will make (for the progress bar)."""
    total = 0
    if "solomon" in parts:
        n = sum(
            1
            for f in (data / "solomon").glob("*.txt")
            if solomon_names is None or f.stem.upper() in solomon_names
        )
        total += n * (len(limits) + 1)
    if "li_lim" in parts:
        n = sum(
            1
            for f in (data / "li_lim_100").glob("*.txt")
            if li_lim_names is None or f.stem.upper() in li_lim_names
        )
        total += n * 3
    if "redispatch" in parts:
        total += 2
    return total


def markdown(result: dict[str, Any]) -> str:
    """The per-class tables of docs/performance.md from a ``run`` result."""
    out: list[str] = []
    for part, title in (("solomon", "Solomon VRPTW"), ("li_lim", "Li & Lim PDPTW (fleet = BKS vehicles)")):
        if part not in result:
            continue
        section = result[part]
        keys = list(section["average_gap_pct"])
        out.append(f"{title}: average gap to the BKS distance, % (instances solved)\n")
        out.append("| class | n | " + " | ".join(keys) + " |")
        out.append("|---|---:|" + "---:|" * len(keys))

        def cell(gap: float | None, solved: int) -> str:
            return "-" if gap is None else f"{gap:+.2f} ({solved})"

        for cls, row in section["by_class"].items():
            cells = [cell(row[f"{k}_gap_pct"], row[f"{k}_solved"]) for k in keys]
            out.append(f"| {cls} | {row['instances']} | " + " | ".join(cells) + " |")
        cells = [cell(section["average_gap_pct"][k], section["solved"][k]) for k in keys]
        out.append(f"| **all** | {section['count']} | " + " | ".join(cells) + " |\n")
    return "\n".join(out)
