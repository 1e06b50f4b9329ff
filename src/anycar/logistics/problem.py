"""What the planner is given and what it gives back, independent of the solver library.

A ``PlanRequest`` is the day's open orders, the vehicles as they are now (where, how loaded,
how charged, which shift and breaks, which cargo features) and the depot; a ``Plan`` is one
route per used vehicle with its timed stops, and every order that is not in a route with the
reason why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from anycar.logistics.matrix import Point
from anycar.logistics.orders import Order, Window, clock


@dataclass(frozen=True, slots=True)
class Break:
    """A driver's break of ``duration_s`` that must start between ``earliest`` and ``latest``."""

    earliest: int
    latest: int
    duration_s: int


@dataclass(frozen=True)
class PlanVehicle:
    id: str
    start: Point
    end: Point
    payload_kg: float
    cargo_m3: float
    battery_kwh: float
    kwh_per_km: float
    soc: float = 1.0  # state of charge now, 0..1
    reserve: float = 0.15  # share of the pack that must be left at the end of the route
    shift: Window = field(default_factory=lambda: Window(0, 2 * 86_400))
    breaks: tuple[Break, ...] = ()
    features: frozenset[str] = frozenset()
    onboard: tuple[str, ...] = ()  # refs of orders already loaded: only this vehicle can drop them
    count: int = 1  # identical vehicles of this description (benchmark fleets)
    reload_at_depot: bool = False  # may come back to the depot for more (a vehicle mid-route)

    @property
    def range_m(self) -> float:
        """How far it may drive on its charge and keep the reserve."""
        usable = max(0.0, self.soc - self.reserve) * self.battery_kwh
        return usable / self.kwh_per_km * 1000 if self.kwh_per_km > 0 else float("inf")


@dataclass(frozen=True)
class PlanRequest:
    depot: Point
    orders: tuple[Order, ...]
    vehicles: tuple[PlanVehicle, ...]
    time_limit_s: float = 5.0
    seed: int = 0
    all_required: bool = False  # True: serve every order or report the plan infeasible
    solver: str = "auto"  # auto | pyvrp | vroom


@dataclass
class Stop:
    order: str | None  # None for the depot (start, reload, end)
    action: str  # start | pickup | drop | reload | break | end
    point: Point
    arrival_s: float
    start_s: float  # service starts (after waiting for the window)
    departure_s: float
    load_kg: float  # on board after the stop
    window: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "order": self.order,
            "action": self.action,
            "lat": self.point[0],
            "lon": self.point[1],
            "arrival": clock(round(self.arrival_s)),
            "start": clock(round(self.start_s)),
            "departure": clock(round(self.departure_s)),
            "arrival_s": round(self.arrival_s, 3),
            "load_kg": round(self.load_kg, 3),
            "window": self.window,
        }


@dataclass
class Route:
    vehicle: str
    stops: list[Stop]
    distance_m: float
    duration_s: float
    energy_kwh: float
    soc_end: float
    fixed: list[dict[str, Any]] = field(default_factory=list)  # stops already made (re-dispatch)

    def to_json(self) -> dict[str, Any]:
        return {
            "vehicle": self.vehicle,
            "fixed": self.fixed,
            "stops": [s.to_json() for s in self.stops],
            "distance_m": round(self.distance_m, 3),
            "duration_s": round(self.duration_s, 3),
            "energy_kwh": round(self.energy_kwh, 3),
            "soc_end": round(self.soc_end, 4),
        }

    def orders(self) -> list[str]:
        return [s.order for s in self.stops if s.order is not None and s.action in ("drop", "pickup")]


@dataclass
class Plan:
    routes: list[Route]
    unservable: dict[str, str]  # order ref -> why it is in no route
    feasible: bool
    stopped_by: str  # time_limit | converged
    solver: str
    elapsed_s: float
    matrix_source: str
    estimate: bool  # travel figures are straight-line estimates, not road paths
    notes: list[str] = field(default_factory=list)

    @property
    def distance_m(self) -> float:
        return sum(r.distance_m for r in self.routes)

    def to_json(self) -> dict[str, Any]:
        return {
            "feasible": self.feasible,
            "stopped_by": self.stopped_by,
            "best_so_far": self.stopped_by == "time_limit",
            "solver": self.solver,
            "elapsed_s": round(self.elapsed_s, 3),
            "distance_m": round(self.distance_m, 3),
            "vehicles_used": len(self.routes),
            "matrix": self.matrix_source,
            "estimate": self.estimate,
            "routes": [r.to_json() for r in self.routes],
            "unservable": [{"order": k, "reason": v} for k, v in sorted(self.unservable.items())],
            "notes": self.notes,
        }
