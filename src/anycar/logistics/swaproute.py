"""A planned swap stop as a stop of the plan, so that accepting the plan pushes it (demo-route).

``swapstops.plan_swap`` chooses the station and ``swapstops.reserve`` books the pack; here the
chosen stop goes into the stored proposal's route for that vehicle (``add_to_plan``), in its
place between the deliveries, with the station, the reservation id and the window the pack is
held (the planned arrival until the reservation expires). ``service.accept`` then pushes it with
the deliveries (``execution.swap_stop``: ``kind: swap`` on the wire), the console shows it in the
route, and a re-dispatch keeps a swap stop that is still to be made (``follow``): a reservation
that was used, cancelled, refused or has expired is not driven to again.

A route that changes after its swap was planned (a stop dragged to another route in the console,
a re-dispatch) gets its swap planned again (``refit``): on the new order of stops, from the
vehicle's charge now, among the tenant's stations (the same ``plan_swap``), so it is re-timed,
moves to another station when that is better, or is removed when the route no longer needs it
(the note says why); a route that needs one and can reach none is refused, with the reason. What
that means for the reservation (keep it, book a new one, release the old one) is written on the
plan (``swap_changes``) and carried out through the CSMS (``settle``): at once in the plan in
force, when the plan is accepted for a proposal.
"""

from __future__ import annotations

import asyncio
import dataclasses
import weakref
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from anycar.fleet import db
from anycar.logistics import board
from anycar.logistics.matrix import MatrixProvider
from anycar.logistics.orders import clock
from anycar.logistics.problem import PlanVehicle, Route, Stop
from anycar.logistics.swapstops import SwapDecision, SwapStation, SwapStop, plan_swap, stations_from_tables

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


def _insert_kept(stops: list[dict[str, Any]], swap: dict[str, Any], later: list[str]) -> None:
    """``swap`` into ``stops`` as it was: before the first of the orders that followed it, else
    before the route's end."""
    at = next((i for i, s in enumerate(stops) if s.get("order") in later), None)
    if at is None:
        at = len(stops) - 1 if stops and stops[-1].get("action") == "end" else len(stops)
    stops.insert(max(at, 1 if stops and stops[0].get("action") == "start" else 0), dict(swap))


# --- a changed route: its swap planned again (refit), the reservation settled after --------------
HELD = ("queued", "pending", "active", "cancel_queued")  # a reservation the vehicle still has
DAY_S = 86_400


def swaps_of(route: dict[str, Any]) -> list[dict[str, Any]]:
    """The route's swap stops still to make (in its ``stops``; the ``fixed`` head is done)."""
    return [s for s in route.get("stops", []) if s.get("action") == "swap" and s.get("station")]


def without_swaps(route: dict[str, Any]) -> dict[str, Any]:
    return {**route, "stops": [s for s in route.get("stops", []) if s.get("action") != "swap"]}


def station_skew(csms: Any, now: float) -> float:
    """How far the swap room's clock is ahead of the logistics room's ``now``: the CSMS stamps a
    reservation's expiry on its own clock (``Csms.clock``, ``FleetConfig.clock``), the plan's
    times are on the logistics day (``FleetConfig.logistics_clock``), and the two differ in a
    simulated day or a test's. Without a CSMS in the process: 0, the two taken as one clock (as
    ``FleetServer`` has them unless ``logistics_clock`` is set). A duration (the minutes a pack
    is held) is the same on both, so ReserveNow's minutes need no translation."""
    clock = getattr(csms, "clock", None)
    return float(clock()) - now if callable(clock) else 0.0


def reservations(engine: Engine, ids: list[int], skew: float = 0.0) -> dict[int, tuple[str, float]]:
    """(status, expires epoch on the logistics clock) of each reservation among ``ids``: the
    CSMS's expiry less ``skew`` (``station_skew``); {} when the fleet has no swap room's tables
    (nothing is known of them then)."""
    if not ids:
        return {}
    from anycar.swap import tables as t

    r = t.reservations.c
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(r.id, r.status, r.expires).where(r.id.in_(ids))).all()
    except SQLAlchemyError:
        return {}
    return {int(x.id): (str(x.status), float(x.expires) - skew) for x in rows}


def stations_for(
    engine: Engine,
    tenant_id: int,
    old: list[dict[str, Any]],
    now: float,
    known: dict[int, tuple[str, float]] | None = None,
    skew: float = 0.0,
) -> list[SwapStation]:
    """The tenant's swap stations with a site, as the planner sees them at ``now`` (epoch). At a
    station where a swap of ``old`` still has its reservation (``known``: the swap room's word;
    not there: the plan's), the pack it keeps is counted back (it is that vehicle's) and the
    station is a choice even while it is offline: the CSMS holds the reservation until it
    connects (``swapstops.reserve``). Without the swap room's tables or sites: the stations of
    ``old`` alone, at their place, with the held pack. ``skew``: the CSMS's clock less ``now``
    (``station_skew``): which reservations still hold is judged on the CSMS's clock, the times
    of the day come out on the logistics day."""
    day_start = now - now % DAY_S
    known = known or {}
    held = {
        s["station"]
        for s in old
        if isinstance(rid := s.get("reservation"), int)
        and (known[rid][0] in HELD if rid in known else s.get("reservation_status") in ("Accepted", "Queued"))
    }
    try:
        from anycar.swap import tables as t

        with engine.connect() as conn:
            rows = conn.execute(
                select(t.sites.c.station_id, t.sites.c.lat, t.sites.c.lon)
                .select_from(t.sites.join(t.stations, t.stations.c.id == t.sites.c.station_id))
                .where(t.stations.c.tenant_id == tenant_id)
            ).all()
        sites = {str(x.station_id): (float(x.lat), float(x.lon)) for x in rows}
        found = (
            stations_from_tables(engine, sites, now=now + skew, day_start=day_start + skew) if sites else []
        )
    except (SQLAlchemyError, ValueError):
        found = []
    out = [dataclasses.replace(st, ready=st.ready + 1, online=True) if st.id in held else st for st in found]
    ids = {st.id for st in out}
    for s in old:
        if s["station"] not in ids:
            ids.add(s["station"])
            out.append(SwapStation(str(s["station"]), (float(s["lat"]), float(s["lon"])), 1))
    return out


@dataclass
class Refit:
    """A changed route with its swap planned again: the route (JSON), what happened (``note``),
    the reservation change to make (``change``, for ``settle``), or ``refused`` with the reason
    (the route needs a swap and can reach none: the edit is not made)."""

    route: dict[str, Any]
    note: str = ""
    change: dict[str, Any] | None = None
    refused: str = ""


def refit(
    route: dict[str, Any],
    old: dict[str, Any],
    vehicle: PlanVehicle,
    stations: list[SwapStation],
    provider: MatrixProvider,
    *,
    held: dict[int, tuple[str, float]],
    charge_known: bool,
    day_start: float,
    before: list[str] | None = None,
) -> Refit:
    """``route`` (its stops re-ordered or re-planned, the swap left out or not) with the swap
    ``old`` planned again by ``plan_swap`` from ``vehicle``'s charge. ``held``: the reservations
    as the swap room has them; ``charge_known``: False when the vehicle sent no charge reading
    (planned as full): the swap is then kept (re-timed, maybe moved), never dropped as unneeded,
    and stays before the first of the orders it was planned before (``before``) still on the route."""
    name = str(route["vehicle"])
    bare = without_swaps(route)
    rid = old.get("reservation") if isinstance(old.get("reservation"), int) else None
    if rid is not None and rid in held:
        status, expires = held[rid]
        still = status in HELD
    else:  # the swap room's tables do not have it here: the plan's own word and window
        still = rid is not None and old.get("reservation_status") in ("Accepted", "Queued")
        end = str(old.get("window") or "").rpartition("-")[2]
        expires = day_start + _clock_s(end) if end else 0.0
    release = {"station": old["station"], "reservation": rid} if still else None
    latest = None
    if not charge_known:
        at = next(
            (i for i, x in enumerate(bare["stops"]) if x.get("order") and x["order"] in (before or [])), None
        )
        latest = None if at is None else max(0, at - 1)
    decision = plan_swap(
        route_from_plan(bare), vehicle, stations, provider, force=not charge_known, latest=latest
    )
    if decision.swap is None and not decision.needed:
        note = (
            f"{name}: swap at {old['station']} removed: no longer needed (the route needs "
            f"{decision.need_kwh:.2f} kWh, the pack has {decision.usable_kwh:.2f} kWh above the reserve)"
        )
        if release:
            note += f"; reservation {rid} released"
        change = {"vehicle": name, "release": release, "reserve": None} if release else None
        return Refit(bare, note, change)
    if decision.swap is None:
        return Refit(route, refused=f"{name}: the swap cannot be placed again ({decision.reason})")
    stop = decision.swap
    stops = []
    for s in decision.route.stops:
        doc = s.to_json()
        stops.append(plan_stop(stop, doc) if s.action == "swap" else doc)
    new = next(s for s in stops if s["action"] == "swap")
    fresh = decision.route.to_json()
    out = {
        **route,
        **{k: fresh[k] for k in ("distance_m", "duration_s", "energy_kwh", "soc_end")},
        "stops": stops,
    }
    start = new["arrival_s"] + new["wait_s"]  # when the robot starts, as the plan says it
    same = stop.station == old["station"]
    if same and still and expires - day_start >= start:  # the pack stays held until it gets there
        new.update(reservation=rid, reservation_status=old.get("reservation_status"))
        new["window"] = f"{_hhmm(stop.arrival_s)}-{_hhmm(expires - day_start)}"
        note = f"{name}: swap at {stop.station} re-timed to {new['arrival']} (reservation {rid} kept)"
        return Refit(out, note, None)
    new.update(reservation=None, reservation_status="to reserve")
    change = {"vehicle": name, "release": release, "reserve": {"station": stop.station, "arrival_s": new["arrival_s"],
              "wait_s": new["wait_s"]}}  # fmt: skip
    if same:
        why = f"re-timed to {new['arrival']}; reservation {rid} ends before then: a new one" if still else (
            f"re-timed to {new['arrival']}; a new reservation")  # fmt: skip
        note = f"{name}: swap at {stop.station} {why}"
    else:
        note = f"{name}: swap moved from {old['station']} to {stop.station} (better for the new order), ETA {new['arrival']}"
        note += (
            f"; reservation {rid} released, a new one at {stop.station}"
            if release
            else f"; a new reservation at {stop.station}"
        )
    return Refit(out, note, change)


def base_id(vehicle: str) -> str:
    return str(vehicle).split("#", 1)[0]


def _vehicle_ids(engine: Engine, tenant_id: int) -> dict[str, int]:
    v = db.vehicles.c
    with engine.connect() as conn:
        return {
            r.wire_id: r.id for r in conn.execute(select(v.wire_id, v.id).where(v.tenant_id == tenant_id))
        }


def _token(engine: Engine, vehicle_id: int) -> str | None:
    from anycar.swap import tables as t

    i = t.id_tokens.c
    with engine.connect() as conn:
        row = conn.execute(
            select(i.token)
            .where(and_(i.vehicle_id == vehicle_id, i.revoked.is_(False)))
            .order_by(i.created.desc())
        ).first()
    return None if row is None else str(row.token)


def _store(engine: Engine, tenant_id: int, plan_id: int, stored: dict[str, Any]) -> None:
    p = db.plans.c
    with engine.begin() as conn:
        conn.execute(
            update(db.plans).where(and_(p.tenant_id == tenant_id, p.id == plan_id)).values(body=stored)
        )


async def settle(csms: Any, engine: Engine, tenant_id: int, plan_id: int, *, now: float) -> list[str]:
    """Carry out the plan's pending reservation changes (``swap_changes``) through the CSMS:
    release the old reservation (CancelReservation, or withdrawn when the CSMS still holds it),
    book the new one (ReserveNow until ``RESERVE_MARGIN_S`` after the arrival) and write its id
    and status into the plan's swap stop. The notes say what was done; a change that fails is
    said and left pending (the next settle tries again: ``SwapSettler`` in the server that runs
    the CSMS, for the plan in force)."""
    async with settle_lock(csms):  # the API's and the settler's calls never book one change twice
        return await settle_held(csms, engine, tenant_id, plan_id, now=now)


_LOCKS: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()


def settle_lock(csms: Any) -> asyncio.Lock:
    """The one lock of ``csms``'s plan settling: held by ``settle``, and by a live move around
    its read, write and settle of the plan (``SwapSettler`` writes the plan in force too)."""
    lock = _LOCKS.get(csms)
    if lock is None:
        lock = _LOCKS[csms] = asyncio.Lock()
    return lock


async def settle_held(csms: Any, engine: Engine, tenant_id: int, plan_id: int, *, now: float) -> list[str]:
    """``settle`` for a caller that holds ``settle_lock(csms)``."""
    from anycar.logistics.swapstops import reserve
    from anycar.swap.csms import SwapError

    found = await asyncio.to_thread(board.plan, engine, tenant_id, plan_id)
    if found is None:
        return []
    stored = {k: v for k, v in found.items() if k not in _META}
    body = stored.get("plan", stored)
    pending = [c for c in body.get("swap_changes", []) if not c.get("done")]
    if not pending:
        return []
    ids = await asyncio.to_thread(_vehicle_ids, engine, tenant_id)
    day_start = now - now % DAY_S
    notes = []
    for change in pending:
        name = change["vehicle"]
        old = change.get("release")
        if old and not change.get("released"):
            try:
                answer = await csms.cancel_reservation(old["station"], int(old["reservation"]))
            except SwapError as exc:
                why = f"{name}: reservation {old['reservation']} not released yet: {exc}"
                if change.get("error") != why:  # said once, not at every pass of the settler
                    change["error"] = why
                    notes.append(why)
                continue
            change["released"] = answer
            notes.append(f"{name}: reservation {old['reservation']} at {old['station']} released ({answer})")
        want = change.get("reserve")
        if want:
            vid = ids.get(base_id(name))
            token = await asyncio.to_thread(_token, engine, vid) if vid is not None else None
            route = next((r for r in body.get("routes", []) if r.get("vehicle") == name), None)
            stop = next((s for s in swaps_of(route or {}) if s["station"] == want["station"]), None)
            if token is None or stop is None:
                notes.append(f"{name}: no reservation at {want['station']}: "
                             + ("no idToken issued to the vehicle" if token is None else "the swap stop is gone"))  # fmt: skip
                change["done"] = True
                continue
            swap = SwapStop(name, want["station"], 0, float(want["arrival_s"]), float(want["wait_s"]), 0.0, 0.0,
                            0.0, 0.0)  # fmt: skip
            got = await reserve(csms, swap, token, now_s=now - day_start, day_start=day_start)
            stop.update(reservation=got.reservation_id, reservation_status=got.status)
            stop["window"] = f"{_hhmm(swap.arrival_s)}-{_hhmm(got.expires_s)}"
            notes.append(f"{name}: reservation {got.reservation_id} at {want['station']}: {got.status}")
        change["done"] = True
    if not notes and not any(c.get("done") for c in pending):
        return []  # nothing new: a failure already said, nothing done (the settler's passes)
    body["notes"] = [*body.get("notes", []), *notes]
    await asyncio.to_thread(_store, engine, tenant_id, plan_id, stored)
    return notes


def follow(
    engine: Engine,
    tenant_id: int,
    before: dict[str, Any],
    after: dict[str, Any],
    vehicles: dict[str, PlanVehicle],
    assumed_full: list[str],
    provider: MatrixProvider,
    *,
    now: float,
    skew: float = 0.0,
) -> list[str]:
    """Each swap stop of the plan in force (``before``) still to make follows the re-plan
    (``after``, in place): planned again on the vehicle's new route from where it is now
    (``refit``: re-timed, moved to a better station, or removed when no longer needed), the
    reservation change written in ``after["swap_changes"]`` for ``settle`` at accept. A route
    that needs a swap and can reach no station keeps the old stop as it was, said in the notes.
    ``vehicles``: the re-plan's vehicles by id (their charge and place now); ``skew``: the CSMS's
    clock less ``now`` (``station_skew``)."""
    pending = [
        (str(r["vehicle"]), r.get("stops", []), i, s)
        for r in before.get("routes", [])
        for i, s in enumerate(r.get("stops", []))
        if s.get("action") == "swap" and s.get("station")
    ]
    if not pending:
        return []
    ids = [int(s["reservation"]) for _, _, _, s in pending if isinstance(s.get("reservation"), int)]
    held = reservations(engine, ids, skew)
    stations = stations_for(engine, tenant_id, [s for _, _, _, s in pending], now, held, skew)
    day_start = now - now % DAY_S
    notes: list[str] = []
    changes = after.setdefault("swap_changes", [])
    done_for: set[str] = set()
    for vehicle, stops, i, swap in pending:
        rid = swap.get("reservation")
        if isinstance(rid, int) and held.get(rid, ("", 0.0))[0] in ENDED:
            continue  # used, cancelled, refused or expired: nothing to drive to
        routes = after.get("routes", [])
        k = next((j for j, r in enumerate(routes) if r.get("vehicle") == vehicle), None)
        if k is None:
            k = next(
                (j for j, r in enumerate(routes) if base_id(r.get("vehicle", "")) == base_id(vehicle)), None
            )
        plan_vehicle = vehicles.get(base_id(vehicle))
        if base_id(vehicle) in done_for:  # plan_swap plans one swap per route
            notes.append(f"{vehicle}: a second swap at {swap['station']} left out (one swap per route)")
            if isinstance(rid, int):
                changes.append({"vehicle": vehicle, "release": {"station": swap["station"], "reservation": rid},
                                "reserve": None})  # fmt: skip
            continue
        if k is None or plan_vehicle is None:
            notes.append(f"{vehicle}: swap at {swap['station']} kept on the route the hub has (no new route)")
            continue
        done_for.add(base_id(vehicle))  # one swap per route: plan_swap plans one
        later = [str(x["order"]) for x in stops[i + 1 :] if x.get("order")]
        fit = refit(routes[k], swap, plan_vehicle, stations, provider, held=held,
                    charge_known=plan_vehicle.id not in assumed_full, day_start=day_start, before=later)  # fmt: skip
        if fit.refused:
            _insert_kept(routes[k]["stops"], swap, later)
            notes.append(f"{fit.refused}; the swap at {swap['station']} is kept at the first plan's times")
            continue
        routes[k] = fit.route
        notes.append(fit.note)
        if fit.change:
            changes.append(fit.change)
    if not changes:
        after.pop("swap_changes")
    return notes
