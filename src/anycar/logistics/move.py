"""Moving one order to another route, re-checked with the planner's own checks.

The dispatcher drags an order onto another vehicle's route in the console. The server does not
trust the drag: it rebuilds the planning problem for the two vehicles concerned from the board
(the same ``request_for`` as a plan, with the options the plan was made with), asks the
planner's per-order check (``precheck``: features, weight, volume, battery, windows, shift)
whether the target vehicle could serve the order at all, then tries the order at every position
of the target route and times each candidate with the planner's own route check
(``planner._time_route``: windows, shift, load, battery reserve). The cheapest candidate that
breaks nothing is taken; if none, the move is refused with the reasons the check gave. The
source route is re-timed without the order. Nothing changes on a refusal.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.engine import Engine

from anycar.fleet import db
from anycar.logistics import board, service, swaproute
from anycar.logistics.layout import build_layout
from anycar.logistics.planner import _Problem, _time_route  # the planner's own route check
from anycar.logistics.precheck import _alone, why_not_this  # the planner's own per-order check
from anycar.logistics.problem import Route


@dataclass
class MoveResult:
    accepted: bool
    reason: str
    plan: dict[str, Any] | None = None
    checked: int = 0  # candidate positions timed
    details: list[str] = field(default_factory=list)
    swap: list[str] = field(default_factory=list)  # what became of a swap stop on the routes
    pushed: list[dict[str, Any]] = field(default_factory=list)  # the plan in force: routes sent

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"accepted": self.accepted, "reason": self.reason, "checked": self.checked}
        if self.swap:
            out["swap"] = self.swap
        if self.pushed:
            out["pushed"] = self.pushed
        if self.details:
            out["details"] = self.details[:10]
        if self.plan is not None:
            out["plan"] = self.plan
        return out


class MoveError(ValueError):
    """The request itself is wrong (no such order in the plan, unknown vehicle); 400/404."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _base(vehicle: str) -> str:
    return str(vehicle).split("#", 1)[0]


def _sequence(route: dict[str, Any], index: dict[str, int], skip: str) -> list[tuple[int, str]]:
    seq = []
    for s in route.get("stops", []):
        ref = s.get("order")
        if not ref or ref == skip or ref not in index:
            continue
        seq.append((index[ref], "pickup" if s["action"] in ("pickup", "load") else "drop"))
    return seq


def _loaded_first(problem: _Problem, seq: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """A route planned at the depot lists only the drops; once some vehicle is out on its round
    a delivery still at the depot is a shipment from a depot stop (``_Problem``), so its load is
    put first: the vehicle takes its goods at the depot before it leaves."""
    have = {ji for ji, action in seq if action == "pickup"}
    loads = [
        (ji, "pickup")
        for ji, action in seq
        if action == "drop" and problem.jobs[ji].kind == "shipment" and ji not in have
    ]
    return [*loads, *seq]


def move_order(
    engine: Engine,
    tenant_id: int,
    plan_id: int,
    ref: str,
    vehicle: str,
    *,
    now: float | None = None,
    skew: float = 0.0,
) -> MoveResult:
    """Move ``ref`` onto ``vehicle``'s route in plan ``plan_id`` if the planner's checks allow it.

    In the plan in force (accepted) the rounds are under way: both routes are timed from now
    (``now``, default the clock) and from each vehicle's last position with its goods on board,
    as a re-dispatch is; a proposal is timed as it was planned, from the shift start at the depot.
    ``skew``: the swap room's clock less ``now`` (``swaproute.station_skew``; default 0: one
    clock), for the reservations a swap stop on either route holds."""
    found = board.plan(engine, tenant_id, plan_id)
    if found is None:
        raise MoveError(404, "no such plan")
    if found["status"] not in ("proposed", "accepted"):
        raise MoveError(400, f"plan {plan_id}: {found['status']}, only a proposed or accepted plan changes")
    body = found["plan"]
    routes: list[dict[str, Any]] = body.get("routes", [])
    source = next((r for r in routes if any(s.get("order") == ref for s in r["stops"])), None)
    if source is None:
        raise MoveError(400, f"order: {ref[:64]!r} is not on a route of plan {plan_id}")
    status = {o["id"]: o["status"] for o in board.orders(engine, tenant_id)}
    if status.get(ref) not in ("open", "planned"):
        return MoveResult(False, f"{ref} is {status.get(ref, 'gone')}: only an open order can move")
    if _base(source["vehicle"]) == _base(vehicle):
        return MoveResult(False, f"{ref} is already on {vehicle}")
    options = dict(found.get("options") or {})
    if "depot" not in options:
        start = source["stops"][0]
        options["depot"] = {"lat": start["lat"], "lon": start["lon"]}
    for key in ("now", "only", "vehicles"):
        options.pop(key, None)
    options["only"] = [_base(source["vehicle"]), _base(vehicle)]
    live = found["status"] == "accepted"
    now_s = service.clock_now_s(now) if live else None
    try:
        request, _, info = service.request_for(engine, tenant_id, options, now_s=now_s)
    except service.PlanningError as exc:
        raise MoveError(400, str(exc)) from None
    ids = [v.id for v in request.vehicles]
    if _base(vehicle) not in ids:
        raise MoveError(400, f"vehicle: {vehicle[:64]!r} is not a vehicle of the tenant")
    target = next((r for r in routes if _base(r["vehicle"]) == _base(vehicle)), None)
    keep = {ref} | {s["order"] for r in (source, target) if r for s in r["stops"] if s.get("order")}
    orders = tuple(o for o in request.orders if o.ref in keep)
    if ref not in {o.ref for o in orders}:
        return MoveResult(False, f"{ref} is not open on the board any more")
    request = replace(request, orders=orders)
    if now_s is not None:
        before = {
            _base(r["vehicle"]): [s["order"] for s in r["stops"] if s.get("order") and s["order"] in keep]
            for r in (source, target)
            if r
        }
        picked = {
            _base(r["vehicle"]): {
                s["order"]
                for s in r["stops"]
                if s.get("action") == "pickup" and s.get("arrival_s", 1e12) <= now_s
            }
            for r in (source, target)
            if r
        }
        request = service.goods_on_board(request, before, picked)
        carrier = next((v for v in request.vehicles if ref in v.onboard), None)
        if carrier is not None:
            return MoveResult(
                False,
                f"{ref} is on board {carrier.id} (its round is under way): it cannot move to {vehicle} "
                "without going back to the depot (re-dispatch plans that)",
            )
    layout = build_layout(request, service.provider())
    si, ti = ids.index(_base(source["vehicle"])), ids.index(_base(vehicle))
    order = next(o for o in orders if o.ref == ref)
    why = _alone(order, ti, request.vehicles[ti], layout)
    if why is not None:
        kind, detail = why
        text = why_not_this(kind, detail, request.vehicles[ti])
        return MoveResult(False, f"{vehicle} cannot take {ref}: {text}")
    problem = _Problem(request, layout, {o.ref: {0, 1} for o in orders})
    if len(layout.points) != len(layout.seconds):
        layout.matrix = service.provider().matrix(layout.points)
    index = {job.ref: i for i, job in enumerate(problem.jobs)}
    ji = index[ref]
    base_seq = _loaded_first(problem, _sequence(target, index, ref)) if target else []
    pair = problem.jobs[ji].kind == "shipment"
    candidates: list[list[tuple[int, str]]] = []
    for i in range(len(base_seq) + 1):
        if pair:
            for j in range(i, len(base_seq) + 1):
                seq = list(base_seq)
                seq.insert(j, (ji, "drop"))
                seq.insert(i, (ji, "pickup"))
                candidates.append(seq)
        else:
            seq = list(base_seq)
            seq.insert(i, (ji, (problem.jobs[ji].kind == "pickup" and "pickup") or "drop"))
            candidates.append(seq)
    label = target["vehicle"] if target else _base(vehicle)
    best: tuple[Route, list[str]] | None = None
    refused: tuple[Route, list[str]] | None = None
    payload = request.vehicles[ti].payload_kg
    # From now, a stop may already be late before anything moves (its window passed while the
    # round went on): that is not the move's doing, so only what the move adds refuses it.
    already = (
        set(_time_route(request, problem, ti, label, base_seq)[1]) if target and now_s is not None else set()
    )
    for seq in candidates:
        route, broken = _time_route(request, problem, ti, label, seq)
        broken = [b for b in broken if b not in already]
        # _time_route checks the load after each stop; the load leaving the depot (every drop
        # on board) is the solver's capacity constraint, so it is checked here too.
        if route.stops and route.stops[0].load_kg > payload + 1e-6:
            broken = [
                f"{label}: load {route.stops[0].load_kg:g} kg at the start over the payload {payload:g} kg",
                *broken,
            ]
        if not broken and (best is None or route.distance_m < best[0].distance_m):
            best = (route, broken)
        if broken and (refused is None or len(broken) < len(refused[1])):
            refused = (route, broken)
    if best is None:
        details = refused[1] if refused else []
        return MoveResult(
            False,
            f"{vehicle} cannot take {ref} at any of {len(candidates)} positions: " + "; ".join(details[:2]),
            checked=len(candidates),
            details=details,
        )
    rest_seq = _loaded_first(problem, _sequence(source, index, ref))
    rest, broken_rest = _time_route(request, problem, si, source["vehicle"], rest_seq)
    if now_s is not None:
        with_it = _loaded_first(problem, _sequence(source, index, ""))
        before_move = set(_time_route(request, problem, si, source["vehicle"], with_it)[1])
        broken_rest = [b for b in broken_rest if b not in before_move]
    if broken_rest:
        return MoveResult(False, f"{source['vehicle']} without {ref}: " + "; ".join(broken_rest[:2]))

    def made(route: dict[str, Any] | None) -> list[dict[str, Any]]:
        """The stops already made (delivered, failed): kept as the route's fixed head."""
        if route is None:
            return []
        done = [
            s for s in route["stops"] if s.get("order") and status.get(s["order"]) not in ("open", "planned")
        ]
        return [*route.get("fixed", []), *done]

    new_target = best[0].to_json()
    new_target["fixed"] = made(target)
    new_source = rest.to_json()
    new_source["fixed"] = made(source)
    # A swap stop on either route is planned again on its new order of stops (swaproute.refit):
    # re-timed, moved to a better station or removed as no longer needed, the note says which;
    # a route that needs one and can reach none refuses the move.
    swap_notes: list[str] = []
    swap_changes: list[dict[str, Any]] = []
    fitted: dict[int, dict[str, Any]] = {}
    pairs = [(r, new, i) for r, new, i in ((source, new_source, si), (target, new_target, ti)) if r]
    olds = [swaproute.swaps_of(r) for r, _, _ in pairs]
    if any(olds):
        clock = time.time() if now is None else float(now)
        rids = [int(x["reservation"]) for o in olds for x in o if isinstance(x.get("reservation"), int)]
        held = swaproute.reservations(engine, rids, skew)
        stations = swaproute.stations_for(engine, tenant_id, [x for o in olds for x in o], clock, held, skew)
        for (r, new, i), old in zip(pairs, olds, strict=True):
            if not old:
                continue
            new["vehicle"] = r["vehicle"] if r is source else label
            at = r["stops"].index(old[0])
            done = swaproute.refit(
                new, old[0], request.vehicles[i], stations, service.provider(), held=held,
                charge_known=request.vehicles[i].id not in info.get("assumed_full", []),
                day_start=clock - clock % 86_400,
                before=[str(x["order"]) for x in r["stops"][at + 1 :] if x.get("order")],
            )  # fmt: skip
            if done.refused:
                return MoveResult(
                    False, f"{ref} cannot move to {label}: the swap stop does not fit: {done.refused}"
                )
            fitted[id(new)] = done.route
            swap_notes.append(done.note)
            if done.change:
                swap_changes.append(done.change)
    new_source = fitted.get(id(new_source), new_source)
    new_target = fitted.get(id(new_target), new_target)
    out_routes = []
    for r in routes:
        if r is source:
            if any(s.get("order") for s in new_source["stops"]) or new_source["fixed"]:
                out_routes.append(new_source)
        elif r is target:
            out_routes.append(new_target)
        else:
            out_routes.append(r)
    if target is None:
        out_routes.append(new_target)
    body = dict(body)
    body["routes"] = out_routes
    body["distance_m"] = round(sum(r["distance_m"] for r in out_routes), 3)
    body["vehicles_used"] = len(out_routes)
    body["notes"] = [
        *body.get("notes", []),
        f"{ref} moved from {source['vehicle']} to {label} by hand",
        *swap_notes,
    ]
    if swap_changes:  # the reservations to change (swaproute.settle: now in force, at accept else)
        body["swap_changes"] = [*body.get("swap_changes", []), *swap_changes]
    stored = {k: v for k, v in found.items() if k not in ("id", "kind", "status", "created", "accepted")}
    stored["plan"] = body
    _save(engine, tenant_id, plan_id, stored, ref, _base(vehicle), found["status"] == "accepted")
    return MoveResult(
        True,
        f"{ref} fits on {label} as stop {len(new_target['fixed']) + [s.get('order') for s in new_target['stops']].index(ref)}"
        f" (arrival {next(s['arrival'] for s in new_target['stops'] if s.get('order') == ref)})",
        plan=board.plan(engine, tenant_id, plan_id),
        checked=len(candidates),
        swap=swap_notes,
    )


def _save(
    engine: Engine, tenant_id: int, plan_id: int, body: dict[str, Any], ref: str, wire_id: str, live: bool
) -> None:
    p, o, v = db.plans.c, db.orders.c, db.vehicles.c
    with engine.begin() as conn:
        conn.execute(
            update(db.plans).where(and_(p.tenant_id == tenant_id, p.id == plan_id)).values(body=body)
        )
        if live:
            vid = conn.execute(
                select(v.id).where(and_(v.tenant_id == tenant_id, v.wire_id == wire_id))
            ).scalar()
            conn.execute(
                update(db.orders)
                .where(and_(o.tenant_id == tenant_id, o.ref == ref))
                .values(vehicle_id=vid, updated=time.time())
            )
