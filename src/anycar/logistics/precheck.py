"""Why an order cannot be served at all: checked per order and vehicle before the solver runs.

An order that no vehicle could serve even alone (too heavy for every vehicle, a cargo feature
nobody has, out of every vehicle's battery range, no window reachable within any shift) is
reported with that reason and kept out of the solver's problem; the rest go in. So the reasons a
dispatcher reads are concrete, never "the solver dropped it" for something plainly impossible.
"""

from __future__ import annotations

import itertools

from anycar.logistics.layout import Layout
from anycar.logistics.orders import Order, Place, clock
from anycar.logistics.problem import PlanRequest, PlanVehicle
from anycar.logistics.settings import feature_label


def _visit(t: float, place: Place) -> float | None:
    """Departure after serving ``place`` when arriving at ``t``; None if every window has passed."""
    for w in place.windows:
        if t <= w.end:
            return max(t, w.start) + place.service_s
    return None


def _alone(order: Order, vi: int, v: PlanVehicle, layout: Layout) -> tuple[str, str] | None:
    """None if ``v`` could serve ``order`` on its own; else (criterion, detail)."""
    if not order.features <= v.features:
        return "features", ", ".join(sorted(order.features - v.features))
    onboard = order.ref in v.onboard
    if not onboard and order.weight_kg > v.payload_kg:
        return "weight", f"{order.weight_kg:g} kg"
    if not onboard and order.volume_m3 > v.cargo_m3:
        return "volume", f"{order.volume_m3:g} m3"
    sec, met = layout.seconds, layout.meters
    path = [layout.vehicle_start[vi]]
    if order.kind == "delivery" and not onboard and path[0] != 0:
        path.append(0)  # out on its round: back to the depot to load it
    stops = []
    for action, place in order.places():
        if onboard and action == "pickup":
            continue
        path.append(layout.place[(order.ref, action)])
        stops.append((len(path) - 1, place))
    path.append(layout.vehicle_end[vi])
    meters = sum(float(met[a, b]) for a, b in itertools.pairwise(path))
    if meters > v.range_m:
        return "battery", f"{meters / 1000:.1f} km"
    t = float(v.shift.start)
    by_position = dict(stops)
    for k in range(1, len(path)):
        t += float(sec[path[k - 1], path[k]])
        here = by_position.get(k)
        if here is not None:
            departure = _visit(t, here)
            if departure is None:
                return (
                    "time",
                    f"earliest arrival {clock(round(t))}, last window ends {clock(here.windows[-1].end)}",
                )
            t = departure
    if t > v.shift.end:
        return "shift", f"back at {clock(round(t))}, shift ends {clock(v.shift.end)}"
    return None


_WHY = {
    "features": "needs {detail}: no vehicle has {what} fitted now",
    "weight": "too heavy for every vehicle ({detail}; the largest payload is {best})",
    "volume": "too bulky for every vehicle ({detail}; the largest cargo box is {best})",
    "battery": "out of every vehicle's battery range with the reserve kept (the trip alone is {detail})",
    "time": "no vehicle can reach it within its time windows ({detail})",
    "shift": "no vehicle can serve it within its shift ({detail})",
}


_WHY_ONE = {  # the same, said of the one vehicle an order is dragged onto (the console's move)
    "weight": "too heavy for it ({detail}; its payload is {best})",
    "volume": "too bulky for it ({detail}; its cargo box is {best})",
    "battery": "out of its battery range with the reserve kept (the trip alone is {detail})",
    "time": "it cannot reach it within its time windows ({detail})",
    "shift": "it cannot serve it within its shift ({detail})",
}


def why_not_this(kind: str, detail: str, vehicle: PlanVehicle) -> str:
    """Why ``vehicle`` alone could not serve an order, in words about that vehicle."""
    if kind == "features":
        labels = " or ".join(feature_label(f) for f in detail.split(", "))
        return f"needs {detail}: it has no {labels} fitted now"
    best = f"{vehicle.payload_kg:g} kg" if kind == "weight" else f"{vehicle.cargo_m3:g} m3"
    return _WHY_ONE[kind].format(detail=detail, best=best)


def fitted_words(detail: str) -> str:
    """ "refrigerated, tail_lift" -> "a refrigerated cargo box and a tail lift"."""
    return " and ".join(f"a {feature_label(f)}" for f in detail.split(", "))


def why_not(kind: str, detail: str, best: str = "") -> str:
    """The reason in words for a criterion ``_alone`` gave."""
    what = fitted_words(detail) if kind == "features" else ""
    return _WHY[kind].format(detail=detail, best=best, what=what)


def check(request: PlanRequest, layout: Layout) -> tuple[dict[str, str], dict[str, set[int]]]:
    """(unservable ref -> reason, servable ref -> indices of the vehicles that could serve it)."""
    unservable: dict[str, str] = {}
    allowed: dict[str, set[int]] = {}
    vehicles = request.vehicles
    for order in request.orders:
        owner = [i for i, v in enumerate(vehicles) if order.ref in v.onboard]
        candidates = owner or list(range(len(vehicles)))
        fails = {i: _alone(order, i, vehicles[i], layout) for i in candidates}
        ok = {i for i, f in fails.items() if f is None}
        if ok:
            allowed[order.ref] = ok
            continue
        if not vehicles:
            unservable[order.ref] = "no vehicle in the plan"
            continue
        kinds = {f[0] for f in fails.values() if f is not None}
        if len(kinds) == 1:
            kind = kinds.pop()
            detail = next(f[1] for f in fails.values() if f is not None)
            best = ""
            if kind == "weight":
                best = f"{max(v.payload_kg for v in vehicles):g} kg"
            elif kind == "volume":
                best = f"{max(v.cargo_m3 for v in vehicles):g} m3"
            unservable[order.ref] = why_not(kind, detail, best)
        else:
            parts = [f"{vehicles[i].id}: {f[0]} ({f[1]})" for i, f in fails.items() if f is not None][:5]
            unservable[order.ref] = "no single vehicle meets all its needs: " + "; ".join(parts)
    return unservable, allowed
