"""Benchmark instances as planning requests: Solomon's VRPTW and Li & Lim's PDPTW text files.

The planner then runs on them exactly as it runs on a tenant's orders (``planner.plan``), with
the ``Planar`` matrix (Euclidean, unrounded, travel time = distance, as the best known solutions
in ``VRPTW_BKS.json`` / ``PDPTW_BKS.json`` are computed).
"""

from __future__ import annotations

from pathlib import Path

from anycar.logistics.orders import Order, Place, Window
from anycar.logistics.problem import PlanRequest, PlanVehicle


class InstanceError(ValueError):
    """A benchmark file that does not read; the message says file:line."""


def _rows(path: Path) -> list[tuple[int, list[float]]]:
    rows = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            try:
                rows.append((n, [float(p) for p in parts]))
            except ValueError:
                rows.append((n, []))
    return rows


def _vehicle(capacity: float, count: int, depot: tuple[float, float], due: int) -> PlanVehicle:
    return PlanVehicle(
        id="vehicle",
        start=depot,
        end=depot,
        payload_kg=capacity,
        cargo_m3=1e6,
        battery_kwh=0.0,
        kwh_per_km=0.0,  # no battery limit in the benchmark
        reserve=0.0,
        shift=Window(0, due),
        count=count,
    )


def solomon(
    path: Path, *, vehicles: int | None = None, time_limit_s: float = 5.0, seed: int = 0
) -> PlanRequest:
    """A Solomon instance: VEHICLE NUMBER/CAPACITY, then customer rows (0 is the depot)."""
    rows = _rows(path)
    numeric = [(n, r) for n, r in rows if r]
    if len(numeric) < 3 or len(numeric[0][1]) != 2:
        raise InstanceError(f"{path}: not a Solomon instance (no VEHICLE NUMBER CAPACITY line)")
    count, capacity = int(numeric[0][1][0]), numeric[0][1][1]
    customers = numeric[1:]
    depot_line, depot = customers[0]
    if len(depot) != 7 or depot[0] != 0:
        raise InstanceError(f"{path}:{depot_line}: the depot row (customer 0) with 7 numbers")
    orders = []
    for n, r in customers[1:]:
        if len(r) != 7:
            raise InstanceError(f"{path}:{n}: 7 numbers per customer, found {len(r)}")
        cid, x, y, demand, ready, due, service = r
        orders.append(
            Order(
                ref=f"c{int(cid)}",
                kind="delivery",
                drop=Place(x, y, (Window(int(ready), int(due)),), int(service)),
                pickup=None,
                weight_kg=demand,
            )
        )
    return PlanRequest(
        depot=(depot[1], depot[2]),
        orders=tuple(orders),
        vehicles=(_vehicle(capacity, vehicles or count, (depot[1], depot[2]), int(depot[5])),),
        time_limit_s=time_limit_s,
        seed=seed,
        all_required=True,
    )


def li_lim(
    path: Path, *, vehicles: int | None = None, time_limit_s: float = 10.0, seed: int = 0
) -> PlanRequest:
    """A Li & Lim instance: ``vehicles capacity speed``, then ``task x y demand ready due service
    pickup delivery`` (a pickup names its delivery, a delivery its pickup; 0 is the depot)."""
    rows = [(n, r) for n, r in _rows(path) if r]
    if not rows or len(rows[0][1]) != 3:
        raise InstanceError(f"{path}:1: 'vehicles capacity speed' expected")
    count, capacity = int(rows[0][1][0]), rows[0][1][1]
    tasks: dict[int, list[float]] = {}
    for n, r in rows[1:]:
        if len(r) != 9:
            raise InstanceError(f"{path}:{n}: 9 numbers per task, found {len(r)}")
        tasks[int(r[0])] = r
    if 0 not in tasks:
        raise InstanceError(f"{path}: no depot (task 0)")
    depot = tasks[0]
    orders = []
    for tid, r in sorted(tasks.items()):
        if tid == 0 or r[3] <= 0:
            continue
        partner = int(r[8])
        d = tasks.get(partner)
        if d is None:
            raise InstanceError(f"{path}: task {tid} names delivery {partner}, which is not in the file")
        orders.append(
            Order(
                ref=f"p{tid}-d{partner}",
                kind="courier",
                pickup=Place(r[1], r[2], (Window(int(r[4]), int(r[5])),), int(r[6])),
                drop=Place(d[1], d[2], (Window(int(d[4]), int(d[5])),), int(d[6])),
                weight_kg=r[3],
            )
        )
    return PlanRequest(
        depot=(depot[1], depot[2]),
        orders=tuple(orders),
        vehicles=(_vehicle(capacity, vehicles or count, (depot[1], depot[2]), int(depot[5])),),
        time_limit_s=time_limit_s,
        seed=seed,
        all_required=True,
    )
