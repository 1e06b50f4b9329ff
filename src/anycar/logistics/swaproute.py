"""A planned swap stop as a stop of the plan, so that accepting the plan pushes it (demo-route).

``swapstops.plan_swap`` chooses the station and ``swapstops.reserve`` books the pack; here the
chosen stop goes into the stored proposal's route for that vehicle (``add_to_plan``), in its
place between the deliveries, with the station, the reservation id and the window the pack is
held (the planned arrival until the reservation expires). ``service.accept`` then pushes it with
the deliveries (``execution.swap_stop``: ``kind: swap`` on the wire), the console shows it in the
route, and a re-dispatch keeps a swap stop that is still to be made (``carry_forward``): a
reservation that was used, cancelled, refused or has expired is not driven to again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from anycar.logistics import board
from anycar.logistics.orders import clock
from anycar.logistics.problem import Route, Stop
from anycar.logistics.swapstops import SwapDecision, SwapStop

ENDED = ("used", "cancelled", "rejected", "expired")  # a swap_reservations status: nothing to drive to
_META = ("id", "kind", "status", "created", "accepted")


class SwapPlanError(ValueError):
    """The swap stop cannot go into that plan (no such proposal, no route for the vehicle)."""


def _hhmm(seconds: float) -> str:
    """HH:MM, the minute it falls in (a window never claims a minute past the expiry)."""
    return clock(int(seconds // 60) * 60)


def _clock_s(text: str) -> float:
    parts = [int(x) for x in str(text).split(":")]
    return parts[0] * 3600 + parts[1] * 60 + (parts[2] if len(parts) > 2 else 0)


def route_from_plan(route: dict[str, Any]) -> Route:
    """A stored plan's route (its JSON) as the planner's ``Route``, for ``swapstops.plan_swap``."""
    stops = [
        Stop(
            s.get("order"),
            str(s["action"]),
            (float(s["lat"]), float(s["lon"])),
            float(s["arrival_s"]),
            _clock_s(s["start"]),
            _clock_s(s["departure"]),
            float(s.get("load_kg", 0.0)),
            str(s.get("window", "")),
        )
        for s in route["stops"]
    ]
    return Route(
        str(route["vehicle"]),
        stops,
        float(route["distance_m"]),
        float(route["duration_s"]),
        float(route["energy_kwh"]),
        float(route["soc_end"]),
    )


def plan_stop(stop: SwapStop, at: dict[str, Any]) -> dict[str, Any]:
    """The plan's JSON stop of the swap (``at``: the route's timed swap ``Stop.to_json()``)."""
    res = stop.reservation
    until = res.expires_s if res is not None else stop.arrival_s + stop.wait_s + stop.swap_s
    return {
        **at,
        "order": None,
        "action": "swap",
        "station": stop.station,
        "window": f"{_hhmm(stop.arrival_s)}-{_hhmm(until)}",
        "reservation": res.reservation_id if res is not None else None,
        "reservation_status": res.status if res is not None else None,
        "wait_s": round(stop.wait_s, 1),
        "detour_m": round(stop.detour_m, 1),
        "soc_arrival": round(stop.soc_arrival, 4),
        "late_orders": list(stop.late_orders),
    }


def add_to_plan(engine: Engine, tenant_id: int, plan_id: int, decision: SwapDecision) -> dict[str, Any]:
    """Put ``decision``'s swap stop into proposal ``plan_id``: its vehicle's route becomes the
    decision's (the swap in its place, the later stops moved by the detour); the plan body."""
    if decision.swap is None:
        raise SwapPlanError("no swap stop in the decision")
    found = board.plan(engine, tenant_id, plan_id)
    if found is None or found["status"] != "proposed":
        raise SwapPlanError(f"plan {plan_id}: no such proposal (a swap stop goes in before it is accepted)")
    stored = {k: v for k, v in found.items() if k not in _META}
    body = stored.get("plan", stored)
    route = decision.route
    target = next((r for r in body.get("routes", []) if r.get("vehicle") == route.vehicle), None)
    if target is None:
        raise SwapPlanError(f"plan {plan_id}: no route for {route.vehicle}")
    stops = []
    for s in route.stops:
        doc = s.to_json()
        stops.append(plan_stop(decision.swap, doc) if s.action == "swap" else doc)
    fresh = route.to_json()
    target.update({k: fresh[k] for k in ("stops", "distance_m", "duration_s", "energy_kwh", "soc_end")})
    target["stops"] = stops
    if not board.replace_proposal(engine, tenant_id, plan_id, stored):
        raise SwapPlanError(f"plan {plan_id}: accepted meanwhile; the swap stop was not added")
    return body


def _ended(engine: Engine, ids: list[int]) -> set[int]:
    """The reservations among ``ids`` that ended (the swap room's table)."""
    if not ids:
        return set()
    from sqlalchemy import select

    from anycar.swap import tables as t

    r = t.reservations.c
    with engine.connect() as conn:
        rows = conn.execute(select(r.id).where(r.id.in_(ids), r.status.in_(ENDED))).all()
    return {int(x.id) for x in rows}


def carry_forward(engine: Engine, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Each swap stop of the plan in force (``before``) that is still to be made goes into the
    same vehicle's route of the re-plan (``after``, in place): before the first of the orders
    that followed it, else before the route's end. Its times are the first plan's (the re-plan
    does not re-time the swap). The notes say what was kept."""
    pending: list[tuple[str, dict[str, Any], list[str]]] = []
    for route in before.get("routes", []):
        stops = route.get("stops", [])
        for i, s in enumerate(stops):
            if s.get("action") == "swap" and s.get("station"):
                later = [str(x["order"]) for x in stops[i + 1 :] if x.get("order")]
                pending.append((str(route["vehicle"]), s, later))
    if not pending:
        return []
    try:
        ended = _ended(
            engine, [int(s["reservation"]) for _, s, _ in pending if isinstance(s.get("reservation"), int)]
        )
    except SQLAlchemyError:  # no swap tables in this fleet: nothing says the swaps were made
        ended = set()
    notes = []
    for vehicle, swap, later in pending:
        if swap.get("reservation") in ended:
            continue
        route = next((r for r in after.get("routes", []) if r.get("vehicle") == vehicle), None)
        if route is None:
            notes.append(f"{vehicle}: swap at {swap['station']} kept on the route the hub has (no new route)")
            continue
        stops = route["stops"]
        at = next((i for i, s in enumerate(stops) if s.get("order") in later), None)
        if at is None:
            at = len(stops) - 1 if stops and stops[-1].get("action") == "end" else len(stops)
        stops.insert(max(at, 1 if stops and stops[0].get("action") == "start" else 0), dict(swap))
        notes.append(f"{vehicle}: swap at {swap['station']} (reservation {swap.get('reservation')}) kept")
    return notes
