"""Planning for a tenant: the fleet database (orders, vehicles, their last position and charge)
and a dispatcher's options (depot, shift, breaks, overrides) -> a ``PlanRequest``; the proposal
stored on the board. The API and ``anycar fleet plan`` both call these.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.engine import Engine

from anycar.fleet import db, latest
from anycar.logistics import board
from anycar.logistics.fitted import Fitted, fitted_features
from anycar.logistics.matrix import MatrixProvider, RoadsOrEstimate, haversine_m
from anycar.logistics.orders import OrderError, Window, parse_windows
from anycar.logistics.problem import Break, PlanRequest, PlanVehicle
from anycar.logistics.redispatch import redispatch
from anycar.logistics.settings import feature_label, planning, service_area, vehicle_type
from anycar.logistics.swaproute import follow

SOC_PATH = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"  # VSS, percent
AT_DEPOT_M = 150.0  # a vehicle this close to the depot is at the depot
MAX_TIME_LIMIT_S = 60.0


class PlanningError(ValueError):
    """A planning option that is wrong; the message names it."""


def _point(value: Any, what: str) -> tuple[float, float]:
    if not isinstance(value, dict):
        raise PlanningError(f'{what}: {{"lat": ..., "lon": ...}}')
    try:
        lat, lon = float(value["lat"]), float(value["lon"])
    except (KeyError, TypeError, ValueError):
        raise PlanningError(f"{what}: lat and lon numbers") from None
    if not service_area().contains(lat, lon):
        raise PlanningError(f"{what}: {lat:.5f},{lon:.5f} is outside the map ({service_area().describe()})")
    return lat, lon


def _window(value: Any, what: str) -> Window:
    try:
        windows = parse_windows(value, what)
    except OrderError as exc:
        raise PlanningError(str(exc)) from None
    if len(windows) != 1:
        raise PlanningError(f"{what}: one window HH:MM-HH:MM")
    return windows[0]


def _breaks(value: Any) -> tuple[Break, ...]:
    if value in (None, []):
        return ()
    if not isinstance(value, list) or len(value) > 4:
        raise PlanningError('breaks: a list of at most 4 {"window": "12:00-13:30", "minutes": 30}')
    out = []
    for i, b in enumerate(value):
        if not isinstance(b, dict):
            raise PlanningError(f"breaks[{i}]: an object")
        w = _window(b.get("window"), f"breaks[{i}].window")
        minutes = b.get("minutes")
        if not isinstance(minutes, int | float) or not 0 < minutes <= 240:
            raise PlanningError(f"breaks[{i}].minutes: 1..240")
        out.append(Break(w.start, w.end, int(minutes * 60)))
    return tuple(out)


def _soc_now(engine: Engine, vehicle_ids: list[int]) -> dict[int, float]:
    """Each vehicle's last state of charge (0..1) from the signals its hub sent."""
    v = db.vehicles.c
    num = latest.newest(v.id, SOC_PATH, db.signal_values.c.num)  # exact, a few rows per vehicle
    query = select(v.id.label("vehicle_id"), num.label("num")).where(v.id.in_(vehicle_ids))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return {r.vehicle_id: max(0.0, min(1.0, float(r.num) / 100)) for r in rows if r.num is not None}


def request_for(
    engine: Engine, tenant_id: int, options: dict[str, Any], *, now_s: int | None = None
) -> tuple[PlanRequest, list[str], dict[str, Any]]:
    """The planning request for the tenant's open orders and vehicles; (request, notes, info)."""
    if not isinstance(options, dict):
        raise PlanningError("body: a JSON object with at least a depot")
    unknown = set(options) - {
        "depot",
        "shift",
        "breaks",
        "vehicles",
        "only",
        "time_limit_s",
        "solver",
        "now",
        "seed",
    }
    if unknown:
        raise PlanningError(f"{sorted(unknown)[0]}: unknown option")
    depot = _point(options.get("depot"), "depot")
    shift = _window(options.get("shift") or "00:00-24:00", "shift")
    breaks = _breaks(options.get("breaks"))
    limit = options.get("time_limit_s", planning()["default_time_limit_s"])
    if not isinstance(limit, int | float) or not 0.1 <= limit <= MAX_TIME_LIMIT_S:
        raise PlanningError(f"time_limit_s: 0.1..{MAX_TIME_LIMIT_S:g}")
    solver = options.get("solver", "auto")
    if solver not in ("auto", "pyvrp", "vroom"):
        raise PlanningError("solver: auto, pyvrp or vroom")
    overrides = options.get("vehicles") or {}
    if not isinstance(overrides, dict):
        raise PlanningError('vehicles: {WIRE_ID: {"soc": 0.8, "shift": "08:00-16:00"}}')
    only = options.get("only")
    if only is not None and not (isinstance(only, list) and all(isinstance(x, str) for x in only)):
        raise PlanningError("only: a list of vehicle ids")
    v = db.vehicles.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(v.id, v.wire_id, v.brand, v.last_lat, v.last_lon)
            .where(and_(v.tenant_id == tenant_id, v.revoked.is_(False)))
            .order_by(v.id)
        ).all()
    rows = [r for r in rows if only is None or r.wire_id in only]
    for name in overrides:
        if name not in {r.wire_id for r in rows}:
            raise PlanningError(f"vehicles.{str(name)[:64]}: no such vehicle in the tenant")
    socs = _soc_now(engine, [r.id for r in rows])
    fitted = fitted_features(engine, [r.id for r in rows])
    notes: list[str] = []
    reserve = float(planning()["reserve_soc"])
    vehicles = []
    assumed_full: list[str] = []  # no charge reading: a swap already planned is kept (swaproute)
    for r in rows:
        kind = vehicle_type(r.brand)
        extra = overrides.get(r.wire_id) or {}
        if not isinstance(extra, dict):
            raise PlanningError(f"vehicles.{r.wire_id}: an object")
        if "features" in extra:
            raise PlanningError(
                f"vehicles.{r.wire_id}.features: cargo features come from the accessories its hub "
                "reports fitted (GET /api/vehicles/{vehicle}/accessories), not from the request"
            )
        own = fitted.get(r.id, Fitted())
        for feature, idle in sorted(own.idle.items()):
            if feature not in own.features:
                notes.append(f"{r.wire_id}: no {feature_label(feature)} counts: {'; '.join(idle)}")
        soc = extra.get("soc", socs.get(r.id))
        if soc is None:
            soc = 1.0
            notes.append(f"{r.wire_id}: no charge reading ({SOC_PATH}); planned as full")
            assumed_full.append(r.wire_id)
        if not isinstance(soc, int | float) or not 0 <= soc <= 1:
            raise PlanningError(f"vehicles.{r.wire_id}.soc: 0..1")
        own_shift = _window(extra["shift"], f"vehicles.{r.wire_id}.shift") if "shift" in extra else shift
        start = depot
        if now_s is not None:
            own_shift = Window(max(own_shift.start, now_s), max(own_shift.end, now_s))
            if r.last_lat is not None and r.last_lon is not None:
                start = (float(r.last_lat), float(r.last_lon))
                if haversine_m(start, depot) <= AT_DEPOT_M:
                    start = depot
        vehicles.append(
            PlanVehicle(
                id=r.wire_id,
                start=start,
                end=depot,
                payload_kg=kind.payload_kg,
                cargo_m3=kind.cargo_m3,
                battery_kwh=kind.battery_kwh,
                kwh_per_km=kind.kwh_per_km,
                soc=float(soc),
                reserve=reserve,
                shift=own_shift,
                breaks=breaks,
                features=kind.features | frozenset(own.features),
            )
        )
    area = service_area()
    request = PlanRequest(
        depot=depot,
        orders=tuple(board.open_orders(engine, tenant_id, area, notes)),
        vehicles=tuple(vehicles),
        time_limit_s=float(limit),
        seed=int(options.get("seed", 0)) if isinstance(options.get("seed", 0), int) else 0,
        solver=solver,
    )
    return request, notes, {"brands": sorted({r.brand for r in rows}), "assumed_full": assumed_full}


def provider() -> MatrixProvider:
    cfg = planning()
    return RoadsOrEstimate(
        detour=float(cfg["detour_factor"]), speed_kmh=vehicle_type("kaiyun_pickman").speed_kmh
    )


def propose(engine: Engine, tenant_id: int, options: dict[str, Any]) -> dict[str, Any]:
    """Plan the open orders; the proposal is stored (status proposed) and returned with its id."""
    from anycar.logistics.planner import plan

    request, notes, _ = request_for(engine, tenant_id, options)
    try:
        result = plan(request, provider())
    except ValueError as exc:  # a combination the chosen solver cannot take (breaks on PyVRP, ...)
        raise PlanningError(str(exc)) from None
    result.notes = notes + result.notes
    body = {"plan": result.to_json(), "options": options}  # ops-console: kept for the move re-check
    plan_id = board.save_plan(engine, tenant_id, "plan", body)
    return {"id": plan_id, "status": "proposed", **body}


def accept(engine: Engine, tenant_id: int, plan_id: int) -> dict[str, Any] | None:
    """Make plan ``plan_id`` the plan in force and push each vehicle's route to its hub (one
    signed ``route`` command per vehicle, sent by the fleet's command sender, which polls for
    pending commands, so a CLI accept reaches the hubs through a running server too). The API's
    ``POST /api/plans/{id}/accept`` and ``anycar fleet plan --accept`` both call this. None if
    the tenant has no such plan; ``board.BoardError`` if it is not a proposal."""
    from anycar.logistics import execution

    found = board.accept(engine, tenant_id, plan_id)
    if found is None:
        return None
    found["pushed"] = execution.push_routes(engine, tenant_id, found)
    waiting = [c for c in found.get("plan", found).get("swap_changes", []) if not c.get("done")]
    if waiting:  # the API settles them first through the server's CSMS; none here (the CLI)
        found["swap_pending"] = [
            f"{c['vehicle']}: the reservation change waits for the swap room's CSMS "
            "(a running `anycar fleet serve --ocpp-port` settles it and pushes the route)"
            for c in waiting
        ]
    return found


def goods_on_board(
    request: PlanRequest, before: dict[str, list[str]], picked: dict[str, set[str]]
) -> PlanRequest:
    """The request with each vehicle's goods on board: a vehicle away from the depot carries the
    deliveries the plan in force gave it (loaded there in the morning), and the courier jobs
    whose pickup it has made (``picked``); only it can drop them."""
    by_ref = {o.ref: o for o in request.orders}
    vehicles = []
    for v in request.vehicles:
        away = v.start != request.depot
        onboard = tuple(
            ref
            for ref in before.get(v.id, [])
            if ref in by_ref
            and (
                (by_ref[ref].kind == "delivery" and away)
                or (by_ref[ref].kind == "courier" and ref in picked.get(v.id, set()))
            )
        )
        vehicles.append(replace(v, onboard=onboard))
    return replace(request, vehicles=tuple(vehicles))


def clock_now_s(now: float | None = None) -> int:
    """Seconds since midnight UTC: the planner's clock (windows, shifts) for 'now'."""
    t = time.time() if now is None else now
    return int(t % 86_400)


def propose_redispatch(
    engine: Engine,
    tenant_id: int,
    options: dict[str, Any],
    *,
    clock: float | None = None,
    skew: float = 0.0,
) -> dict[str, Any]:
    """Re-plan from now: the plan in force says who carries what; delivered and failed orders
    are the fixed head of their vehicle's route; vehicles away from the depot have their planned
    orders on board (loaded there in the morning) and courier jobs whose pickup is past. A swap
    stop still to make follows the new plan (``swaproute.follow``); ``clock``: the logistics
    room's "now" (epoch; its UTC day is the plan's), default the wall clock; ``skew``: the swap
    room's clock less it (``swaproute.station_skew``; default 0: one clock)."""
    current = board.accepted_plan(engine, tenant_id)
    if current is None:
        raise PlanningError("no accepted plan to re-dispatch (POST /api/plans, then accept one)")
    try:
        now_s = parse_windows(f"{options.get('now')}-{options.get('now')}", "now")[0].start
    except OrderError:
        raise PlanningError("now: the time of day HH:MM to plan from") from None
    request, notes, info = request_for(engine, tenant_id, options, now_s=now_s)
    status = {r["id"]: r["status"] for r in board.orders(engine, tenant_id)}
    before: dict[str, list[str]] = {}
    fixed: dict[str, list[dict[str, Any]]] = {}
    picked: dict[str, set[str]] = {}
    body = current.get("plan", current)
    for route in body.get("routes", []):
        vid = str(route["vehicle"]).split("#", 1)[0]
        stops = [s for s in route["stops"] if s.get("order")]
        fixed[vid] = [
            s for s in route.get("fixed", []) + stops if status.get(s["order"]) in ("delivered", "failed")
        ]
        # a failed order back at dispatch (``retry``) stays with its vehicle: its parcel is on board
        again = {o.ref for o in request.orders}
        before[vid] = [
            s["order"]
            for s in stops
            if status.get(s["order"]) in ("open", "planned")
            or (status.get(s["order"]) == "failed" and s["order"] in again)
        ]
        picked[vid] = {
            s["order"] for s in stops if s["action"] == "pickup" and s.get("arrival_s", 1e12) <= now_s
        }
    request = goods_on_board(request, before, picked)
    try:
        proposal = redispatch(request, provider(), before, fixed)
    except ValueError as exc:
        raise PlanningError(str(exc)) from None
    proposal.plan.notes = notes + proposal.plan.notes
    out = proposal.to_json()
    wall = time.time() if clock is None else clock
    day_now = wall - wall % 86_400 + now_s  # the re-plan's "now" on the room's day
    vehicles = {v.id: v for v in request.vehicles}
    out["plan"]["notes"] += follow(
        engine,
        tenant_id,
        body,
        out["plan"],
        vehicles,
        info["assumed_full"],
        provider(),
        now=day_now,
        skew=skew,
    )  # a swap still to make follows the new plan
    plan_id = board.save_plan(engine, tenant_id, "redispatch", out)
    return {"id": plan_id, "status": "proposed", **out}
