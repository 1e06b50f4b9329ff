"""The board as the console shows it, and the end-of-day report, from the orders and the plan.

"In progress" is not a stored status: a planned order is in progress when its vehicle's round
has begun (an order of the same route is delivered or failed). On time means the order was
marked delivered at a clock time (UTC, the planner's clock) inside one of its windows. Kilometres
and kWh per order are the plan in force's figures (the planner's road distances and energy
model) over the orders it delivered: planned, not metered, and the report says so.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.engine import Engine

from anycar.fleet import db
from anycar.logistics import board
from anycar.logistics.orders import OrderError, clock, parse_windows

COLUMNS = ("open", "planned", "in_progress", "delivered", "failed", "cancelled")


def _windows(fields: dict[str, Any]) -> list[tuple[int, int]]:
    raw = fields.get("windows") or fields.get("pickup_windows") or ""
    try:
        return [(w.start, w.end) for w in parse_windows(raw, "windows")] if raw else []
    except OrderError:
        return []


def current_plan(engine: Engine, tenant_id: int) -> dict[str, Any] | None:
    """The plan in force, else the newest proposal (what the dispatcher is looking at)."""
    found = board.accepted_plan(engine, tenant_id)
    if found is not None:
        return found
    p = db.plans.c
    with engine.connect() as conn:
        newest = conn.execute(
            select(p.id)
            .where(and_(p.tenant_id == tenant_id, p.status == "proposed"))
            .order_by(p.created.desc(), p.id.desc())
            .limit(1)
        ).scalar()
    return board.plan(engine, tenant_id, int(newest)) if newest is not None else None


def board_view(
    engine: Engine, tenant_id: int, plan: dict[str, Any] | None, column: str | None, q: str | None
) -> dict[str, Any]:
    """Every order with its console column, the counts per column, filtered by column and text."""
    rows = board.orders(engine, tenant_id)
    updated = board_times(engine, tenant_id)
    body = (plan or {}).get("plan", {})
    route_of: dict[str, str] = {}
    stop_of: dict[str, dict[str, Any]] = {}
    for route in body.get("routes", []):
        n = 0
        for s in [*route.get("fixed", []), *route["stops"]]:
            if s.get("order") and s["action"] in ("drop", "pickup"):
                n += 1
                route_of[s["order"]] = route["vehicle"]
                stop_of[s["order"]] = {**s, "number": n}
    status = {r["id"]: r["status"] for r in rows}
    started = {
        route_of[ref] for ref, st in status.items() if st in ("delivered", "failed") and ref in route_of
    }
    out = []
    for r in rows:
        col = r["status"]
        if col == "planned" and route_of.get(r["id"]) in started:
            col = "in_progress"
        stop = stop_of.get(r["id"])
        out.append(
            {
                "id": r["id"],
                "kind": r["kind"],
                "status": r["status"],
                "column": col,
                "vehicle": r["vehicle"] or route_of.get(r["id"]),
                "route": route_of.get(r["id"]),
                "stop": stop["number"] if stop else None,
                "eta": stop["arrival"] if stop else None,
                "window": stop["window"] if stop else _text(_windows(r["fields"])),
                "weight_kg": r["weight_kg"],
                "priority": r["priority"],
                "lat": r["fields"].get("lat", r["fields"].get("pickup_lat")),
                "lon": r["fields"].get("lon", r["fields"].get("pickup_lon")),
                "updated": updated.get(r["id"]),
                "reason": (r["fields"].get("outcome") or {}).get("reason"),
                # demo-route: a failed order's retry (``retry``): when, and the rule's words
                "retry_at": (r["fields"].get("outcome") or {}).get("retry_at")
                if r["status"] == "failed"
                else None,
                "retry": (r["fields"].get("outcome") or {}).get("retry") if r["status"] == "failed" else None,
                # the retry cap: attempts made of the most allowed; final: what became of it
                **_attempts(r["fields"].get("outcome") or {}, r["status"]),
            }
        )
    counts = {c: sum(1 for x in out if x["column"] == c) for c in COLUMNS}
    if column:
        out = [x for x in out if x["column"] == column]
    if q:
        needle = q.lower()
        out = [x for x in out if needle in x["id"].lower() or needle in str(x["vehicle"] or "").lower()]
    return {"counts": counts, "orders": out, "plan": {k: plan[k] for k in ("id", "status")} if plan else None}


def _text(windows: list[tuple[int, int]]) -> str:
    return ", ".join(f"{clock(a)}-{clock(b)}" for a, b in windows)


def board_times(engine: Engine, tenant_id: int) -> dict[str, float]:
    o = db.orders.c
    with engine.connect() as conn:
        rows = conn.execute(select(o.ref, o.updated).where(o.tenant_id == tenant_id)).all()
    return {str(ref): float(ts) for ref, ts in rows}


def day_report(engine: Engine, tenant_id: int, day: dt.date) -> dict[str, Any]:
    """On-time rate, planned km and kWh per delivered order, the failed orders and why."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC).timestamp()
    end = start + 86_400
    rows = {r["id"]: r for r in board.orders(engine, tenant_id)}
    times = board_times(engine, tenant_id)
    done = [
        r for r in rows.values() if r["status"] in ("delivered", "failed") and start <= times[r["id"]] < end
    ]
    delivered = [r for r in done if r["status"] == "delivered"]
    on_time = 0
    late = []
    for r in delivered:
        t = int(times[r["id"]] - start)
        windows = _windows(r["fields"])
        if not windows or any(a <= t <= b for a, b in windows):
            on_time += 1
        else:
            late.append({"order": r["id"], "delivered": clock(t), "windows": _text(windows)})
    plan = board.accepted_plan(engine, tenant_id)
    km = kwh = 0.0
    per_vehicle: dict[str, dict[str, Any]] = {}
    for route in (plan or {}).get("plan", {}).get("routes", []):
        refs = {s["order"] for s in route["stops"] + route.get("fixed", []) if s.get("order")}
        n = sum(1 for ref in refs if ref in {r["id"] for r in delivered})
        km += route["distance_m"] / 1000
        kwh += route["energy_kwh"]
        per_vehicle[route["vehicle"]] = {
            "vehicle": route["vehicle"],
            "orders": len(refs),
            "delivered": n,
            "failed": sum(1 for ref in refs if rows.get(ref, {}).get("status") == "failed"),
            "km": round(route["distance_m"] / 1000, 2),
            "kwh": round(route["energy_kwh"], 3),
        }
    n = len(delivered)
    return {
        "day": day.isoformat(),
        "plan": plan["id"] if plan else None,
        "orders": len(rows),
        "delivered": n,
        "failed": len(done) - n,
        "on_time": on_time,
        "on_time_rate": round(on_time / n, 4) if n else None,
        "late": late,
        "planned_km": round(km, 2),
        "planned_kwh": round(kwh, 3),
        "km_per_order": round(km / n, 3) if n else None,
        "kwh_per_order": round(kwh / n, 4) if n else None,
        "basis": "planned distance and energy of the plan in force over the orders delivered",
        "failures": [
            {
                "order": r["id"],
                "vehicle": r["vehicle"],
                "at": clock(int(times[r["id"]] - start)),
                "reason": (r["fields"].get("outcome") or {}).get("reason") or "no reason recorded",
            }
            for r in done
            if r["status"] == "failed"
        ],
        "vehicles": sorted(per_vehicle.values(), key=lambda x: x["vehicle"]),
    }


def _attempts(outcome: dict[str, Any], status: str) -> dict[str, Any]:
    """A failed order's attempts against the cap (``retry.decide``), for the board's card."""
    if status != "failed" or "attempts" not in outcome:
        return {"attempts": None, "max_attempts": None, "final": None}
    return {
        "attempts": outcome["attempts"],
        "max_attempts": outcome.get("max_attempts"),
        "final": outcome.get("final"),
    }


def record_outcome(
    engine: Engine, tenant_id: int, ref: str, status: str, reason: str, by: str, *, now: float | None = None
) -> bool:
    """Delivered or failed, with the driver's reason kept in the order's fields (``outcome``)."""
    o = db.orders.c
    with engine.begin() as conn:
        row = conn.execute(select(o.fields).where(and_(o.tenant_id == tenant_id, o.ref == ref))).first()
        if row is None:
            return False
        fields = dict(row.fields)
        fields["outcome"] = {"status": status, "reason": reason, "by": by}
        if status == "failed":  # back to dispatch; when it may be tried again (``retry``)
            from anycar.logistics import retry

            fields["outcome"] = retry.decide(
                dict(row.fields), reason, time.time() if now is None else now, by
            )
        conn.execute(
            update(db.orders).where(and_(o.tenant_id == tenant_id, o.ref == ref)).values(fields=fields)
        )
        if status == "failed":  # the last attempt the cap allows: the event for the dispatcher
            from anycar.logistics.execution import cap_reached

            cap_reached(conn, tenant_id, ref, fields["outcome"], time.time() if now is None else now)
    return board.set_status(engine, tenant_id, ref, status, now=now)
