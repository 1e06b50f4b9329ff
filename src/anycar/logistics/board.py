"""The orders board and the plans, in the fleet database, each call for one tenant only.

An import is one transaction: the ids already on the board are looked up inside it, and any
clash refuses the whole batch with the line (or list index) of each clashing order.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Engine

from anycar.fleet import db
from anycar.logistics.orders import Order, OrderError, parse_order
from anycar.logistics.settings import ServiceArea

STATUSES = ("open", "planned", "delivered", "failed", "cancelled")
CHUNK = 500


class BoardError(ValueError):
    """Refused as a whole; ``errors`` lists each reason (``orders.csv:17: ...``)."""

    def __init__(self, errors: list[str], count: int | None = None) -> None:
        total = count if count is not None else len(errors)
        super().__init__(f"{total} error(s), nothing imported: " + "; ".join(errors[:3]))
        self.errors, self.count = errors, total


def add_orders(engine: Engine, tenant_id: int, orders: list[Order], where: Mapping[str, str]) -> int:
    """Insert ``orders`` all or none; ``where[ref]`` names each one in errors (``file:line``)."""
    now = time.time()
    o = db.orders.c
    with engine.begin() as conn:
        clashes: list[str] = []
        refs = [x.ref for x in orders]
        for i in range(0, len(refs), CHUNK):
            part = refs[i : i + CHUNK]
            found = conn.execute(
                select(o.ref).where(and_(o.tenant_id == tenant_id, o.ref.in_(part)))
            ).scalars()
            clashes.extend(f"{where.get(ref, ref)}: id {ref!r} is already on the board" for ref in found)
        if clashes:
            raise BoardError(sorted(clashes))
        rows = [
            {
                "tenant_id": tenant_id,
                "ref": x.ref,
                "kind": x.kind,
                "status": "open",
                "fields": x.to_fields(),
                "weight_kg": x.weight_kg,
                "priority": x.priority,
                "vehicle_id": None,
                "created": now,
                "updated": now,
            }
            for x in orders
        ]
        for i in range(0, len(rows), 5000):
            conn.execute(insert(db.orders), rows[i : i + 5000])
    return len(orders)


def parse_objects(items: Any, area: ServiceArea) -> tuple[list[Order], dict[str, str]]:
    """Orders from API objects (a JSON list); every bad one listed as ``orders[3].field: why``."""
    if isinstance(items, dict) and "orders" in items:
        items = items["orders"]
    if not isinstance(items, list):
        raise BoardError(['body: a JSON list of orders, or {"orders": [...]}'])
    errors: list[str] = []
    out: list[Order] = []
    where: dict[str, str] = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append(f"orders[{i}]: an object")
            continue
        try:
            order = parse_order(item, area)
        except OrderError as exc:
            errors.append(f"orders[{i}].{exc}")
            continue
        if order.ref in where:
            errors.append(f"orders[{i}].id: {order.ref!r} repeats {where[order.ref]}")
            continue
        where[order.ref] = f"orders[{i}]"
        out.append(order)
    if errors:
        raise BoardError(errors[:100], len(errors))
    return out, where


def orders(engine: Engine, tenant_id: int, statuses: Iterable[str] | None = None) -> list[dict[str, Any]]:
    o, v = db.orders.c, db.vehicles.c
    query = (
        select(o.ref, o.kind, o.status, o.fields, o.weight_kg, o.priority, v.wire_id)
        .select_from(db.orders.outerjoin(db.vehicles, o.vehicle_id == v.id))
        .where(o.tenant_id == tenant_id)
        .order_by(o.id)
    )
    if statuses is not None:
        query = query.where(o.status.in_(list(statuses)))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        {
            "id": r.ref,
            "kind": r.kind,
            "status": r.status,
            "vehicle": r.wire_id,
            "weight_kg": r.weight_kg,
            "priority": r.priority,
            "fields": r.fields,
        }
        for r in rows
    ]


def open_orders(
    engine: Engine, tenant_id: int, area: ServiceArea, notes: list[str] | None = None
) -> list[Order]:
    """The orders still to do (open or planned), re-read through ``parse_order``; and the failed
    ones back at dispatch, with their windows cut to their retry time (``retry``, demo-route):
    why one is not taken again goes to ``notes``."""
    from anycar.logistics import retry

    out = [parse_order(r["fields"], area) for r in orders(engine, tenant_id, ("open", "planned"))]
    for r in orders(engine, tenant_id, ("failed",)):
        order, why = retry.again({**r["fields"], "id": r["id"]}, area)
        if order is not None:
            out.append(order)
        elif why and notes is not None:
            notes.append(why)
    return out


def set_status(engine: Engine, tenant_id: int, ref: str, status: str, *, now: float | None = None) -> bool:
    """The order's new status, stamped ``now`` (default the wall clock: when it happened)."""
    if status not in STATUSES:
        raise BoardError([f"status: {status[:20]!r}: one of {', '.join(STATUSES)}"])
    o = db.orders.c
    with engine.begin() as conn:
        done = conn.execute(
            update(db.orders)
            .where(and_(o.tenant_id == tenant_id, o.ref == ref))
            .values(status=status, updated=time.time() if now is None else now)
        ).rowcount
    return bool(done)


def save_plan(engine: Engine, tenant_id: int, kind: str, body: dict[str, Any]) -> int:
    with engine.begin() as conn:
        key = conn.execute(
            insert(db.plans).values(
                tenant_id=tenant_id, kind=kind, status="proposed", created=time.time(), body=body
            )
        ).inserted_primary_key
    if key is None:
        raise RuntimeError("no key for the new plan")
    return int(key[0])


def replace_proposal(engine: Engine, tenant_id: int, plan_id: int, body: dict[str, Any]) -> bool:
    """A proposal's stored body replaced (a swap stop planned into it before it is accepted);
    False when the tenant has no such proposal (an accepted plan is never rewritten)."""
    p = db.plans.c
    with engine.begin() as conn:
        done = conn.execute(
            update(db.plans)
            .where(and_(p.tenant_id == tenant_id, p.id == plan_id, p.status == "proposed"))
            .values(body=body)
        ).rowcount
    return bool(done)


def plan(engine: Engine, tenant_id: int, plan_id: int) -> dict[str, Any] | None:
    p = db.plans.c
    with engine.connect() as conn:
        row = conn.execute(
            select(p.id, p.kind, p.status, p.created, p.accepted, p.body).where(
                and_(p.tenant_id == tenant_id, p.id == plan_id)
            )
        ).first()
    if row is None:
        return None
    return {
        "id": row.id,
        "kind": row.kind,
        "status": row.status,
        "created": row.created,
        "accepted": row.accepted,
        **row.body,
    }


def accepted_plan(engine: Engine, tenant_id: int) -> dict[str, Any] | None:
    p = db.plans.c
    with engine.connect() as conn:
        found = conn.execute(
            select(p.id)
            .where(and_(p.tenant_id == tenant_id, p.status == "accepted"))
            .order_by(p.accepted.desc())
            .limit(1)
        ).scalar()
    return plan(engine, tenant_id, int(found)) if found is not None else None


def accept(engine: Engine, tenant_id: int, plan_id: int) -> dict[str, Any] | None:
    """The plan in force becomes ``plan_id``: the one before is superseded, its orders are planned
    on their new vehicles. None if there is no such plan in the tenant."""
    found = plan(engine, tenant_id, plan_id)
    if found is None:
        return None
    if found["status"] != "proposed":
        raise BoardError([f"plan {plan_id}: {found['status']}, only a proposed plan can be accepted"])
    p, o, v = db.plans.c, db.orders.c, db.vehicles.c
    now = time.time()
    body = found.get("plan", found)
    with engine.begin() as conn:
        conn.execute(
            update(db.plans)
            .where(and_(p.tenant_id == tenant_id, p.status == "accepted"))
            .values(status="superseded")
        )
        conn.execute(update(db.plans).where(p.id == plan_id).values(status="accepted", accepted=now))
        ids = {r.wire_id: r.id for r in conn.execute(select(v.wire_id, v.id).where(v.tenant_id == tenant_id))}
        for route in body.get("routes", []):
            refs = sorted({s["order"] for s in route["stops"] if s.get("order")})
            vid = ids.get(str(route["vehicle"]).split("#", 1)[0])
            if refs:
                conn.execute(
                    update(db.orders)
                    .where(
                        and_(
                            o.tenant_id == tenant_id,
                            o.ref.in_(refs),
                            o.status.in_(["open", "planned", "failed"]),  # failed: a new attempt
                        )
                    )
                    .values(status="planned", vehicle_id=vid, updated=now)
                )
    return plan(engine, tenant_id, plan_id)
