"""The reads behind the API, every one scoped to one tenant in its WHERE clause.

A tenant's vehicles are the only way in: every query joins or filters by ``vehicles.tenant_id``,
so a user of tenant A cannot name B's vehicle, position, event or dead letter by any parameter.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from anycar.fleet import db

V = db.vehicles.c


def _vehicle_row(row: Any) -> dict[str, Any]:
    last = None
    if row.last_ts is not None:
        last = {
            "ts": row.last_ts,
            "lat": row.last_lat,
            "lon": row.last_lon,
            "speed": row.last_speed,
            "heading": row.last_heading,
        }
    return {
        "id": row.wire_id,
        "vin": row.vin,
        "brand": row.brand,
        "kind": row.kind,
        "revoked": bool(row.revoked),
        "online": row.online,
        "last_seen": row.last_seen,
        "position": last,
    }


def vehicles(engine: Engine, tenant_id: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(db.vehicles).where(V.tenant_id == tenant_id).order_by(V.wire_id))
        return [_vehicle_row(r) for r in rows]


def vehicle(engine: Engine, tenant_id: int, wire_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(db.vehicles).where(V.tenant_id == tenant_id, V.wire_id == wire_id)).first()
        return _vehicle_row(row) if row else None


def last_positions(engine: Engine, tenant_id: int) -> list[dict[str, Any]]:
    """Where every vehicle of the tenant is: one row per vehicle (kept on the vehicle's row)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(V.wire_id, V.last_ts, V.last_lat, V.last_lon, V.last_speed, V.last_heading)
            .where(V.tenant_id == tenant_id, V.last_ts.is_not(None))
            .order_by(V.wire_id)
        )
        return [
            {
                "vehicle": r.wire_id,
                "ts": r.last_ts,
                "lat": r.last_lat,
                "lon": r.last_lon,
                "speed": r.last_speed,
                "heading": r.last_heading,
            }
            for r in rows
        ]


def day_bounds(day: str) -> tuple[float, float]:
    """[start, end) in epoch seconds of a UTC day ``YYYY-MM-DD``; ValueError if it is not one."""
    start = dt.datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=dt.UTC)
    return start.timestamp(), (start + dt.timedelta(days=1)).timestamp()


def track(
    engine: Engine, tenant_id: int, wire_id: str, start: float, end: float
) -> list[dict[str, Any]] | None:
    """One vehicle's positions in [start, end), oldest first (an index range on (vehicle, ts));
    None if the tenant has no such vehicle."""
    p = db.positions.c
    with engine.connect() as conn:
        vid = conn.execute(select(V.id).where(V.tenant_id == tenant_id, V.wire_id == wire_id)).scalar()
        if vid is None:
            return None
        rows = conn.execute(
            select(p.ts, p.lat, p.lon, p.speed, p.heading, p.source)
            .where(p.vehicle_id == vid, p.ts >= start, p.ts < end)
            .order_by(p.ts)
        )
        return [dict(r._mapping) for r in rows]


def events(
    engine: Engine, tenant_id: int, *, wire_id: str | None = None, since: float = 0.0, limit: int = 100
) -> list[dict[str, Any]]:
    e = db.events.c
    query = (
        select(V.wire_id, e.ts, e.type, e.subject, e.message, e.data, e.lat, e.lon)
        .join(db.vehicles, V.id == e.vehicle_id)
        .where(V.tenant_id == tenant_id, e.ts >= since)
    )
    if wire_id is not None:
        query = query.where(V.wire_id == wire_id)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(e.ts.desc(), e.id.desc()).limit(limit))
        return [
            {"vehicle": r.wire_id, **{k: v for k, v in r._mapping.items() if k != "wire_id"}} for r in rows
        ]


def dead_letters(engine: Engine, tenant_id: int | None, *, limit: int = 100) -> list[dict[str, Any]]:
    """The tenant's dead letters (those whose topic named one of its vehicles); ``None``: all of
    them, for the operator's command line."""
    d = db.dead_letters.c
    query = select(d.id, d.received, d.topic, d.reason, d.detail, d.payload, V.wire_id).outerjoin(
        db.vehicles, V.id == d.vehicle_id
    )
    if tenant_id is not None:
        query = query.where(V.tenant_id == tenant_id)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(d.id.desc()).limit(limit))
        return [
            {
                "id": r.id,
                "received": r.received,
                "topic": r.topic,
                "reason": r.reason,
                "detail": r.detail,
                "vehicle": r.wire_id,
                "size": len(r.payload),
                "payload_hex": bytes(r.payload[:256]).hex(),
            }
            for r in rows
        ]
