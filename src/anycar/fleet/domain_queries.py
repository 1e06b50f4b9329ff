"""The reads and writes behind the domain routes, every one scoped to one tenant in its WHERE
clause (trips, stops, geofences, their events, alerts): no parameter names a tenant, and a
vehicle or geofence id of another tenant is simply not found."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine

from anycar.fleet import db
from anycar.fleet.domain_tables import alerts, geofence_events, geofences, stops, trips
from anycar.fleet.geofences import parse_feature, to_feature

V = db.vehicles.c


def vehicle_id(engine: Engine, tenant_id: int, wire_id: str) -> int | None:
    with engine.connect() as conn:
        found = conn.execute(select(V.id).where(V.tenant_id == tenant_id, V.wire_id == wire_id)).scalar()
    return None if found is None else int(found)


def _trip(r: Any) -> dict[str, Any]:
    d = dict(r._mapping)
    d["vehicle"] = d.pop("wire_id")
    d["duration_s"] = (d["end_ts"] - d["start_ts"]) if d["end_ts"] is not None else None
    return d


def _of_tenant(
    table: Any, tenant_id: int, time_col: Any, since: float, until: float, wire_id: str | None
) -> Any:
    """The tenant's rows of a domain table in a time range, with the vehicle's wire id (both the
    row's and the vehicle's tenant checked), one vehicle's when ``wire_id`` is given."""
    cols = [c for c in table.c if c.name not in ("tenant_id", "vehicle_id")]
    query = (
        select(V.wire_id, *cols)
        .join(db.vehicles, V.id == table.c.vehicle_id)
        .where(table.c.tenant_id == tenant_id, V.tenant_id == tenant_id, time_col >= since, time_col < until)
    )
    if wire_id is not None:
        query = query.where(V.wire_id == wire_id)
    return query


def trip_list(
    engine: Engine,
    tenant_id: int,
    *,
    wire_id: str | None = None,
    since: float = 0.0,
    until: float = 1e12,
    limit: int = 100,
    oldest_first: bool = False,
) -> list[dict[str, Any]]:
    t = trips.c
    query = _of_tenant(trips, tenant_id, t.start_ts, since, until, wire_id)
    order = t.start_ts.asc() if oldest_first else t.start_ts.desc()
    with engine.connect() as conn:
        return [_trip(r) for r in conn.execute(query.order_by(order, t.id).limit(limit))]


def stop_list(
    engine: Engine,
    tenant_id: int,
    *,
    wire_id: str | None = None,
    since: float = 0.0,
    until: float = 1e12,
    limit: int = 100,
) -> list[dict[str, Any]]:
    s = stops.c
    query = _of_tenant(stops, tenant_id, s.start_ts, since, until, wire_id)
    with engine.connect() as conn:
        return [_trip(r) for r in conn.execute(query.order_by(s.start_ts.desc(), s.id).limit(limit))]


# ---- geofences ---------------------------------------------------------------------------------
def geofence_collection(engine: Engine, tenant_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(geofences).where(geofences.c.tenant_id == tenant_id).order_by(geofences.c.id)
        )
        return {"type": "FeatureCollection", "features": [to_feature(r) for r in rows]}


def geofence(engine: Engine, tenant_id: int, fence_id: int) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(
            select(geofences).where(geofences.c.tenant_id == tenant_id, geofences.c.id == fence_id)
        ).first()
    return to_feature(row) if row else None


def add_geofence(engine: Engine, tenant_id: int, feature: Any) -> dict[str, Any]:
    values = parse_feature(feature)
    with engine.begin() as conn:
        key = conn.execute(
            insert(geofences).values(tenant_id=tenant_id, **values).returning(geofences.c.id)
        ).scalar_one()
        row = conn.execute(select(geofences).where(geofences.c.id == key)).one()
    return to_feature(row)


def replace_geofence(engine: Engine, tenant_id: int, fence_id: int, feature: Any) -> dict[str, Any] | None:
    values = parse_feature(feature)
    g = geofences.c
    with engine.begin() as conn:
        done = conn.execute(
            update(geofences).where(g.tenant_id == tenant_id, g.id == fence_id).values(**values)
        ).rowcount
        if not done:
            return None
        row = conn.execute(select(geofences).where(g.id == fence_id)).one()
    return to_feature(row)


def delete_geofence(engine: Engine, tenant_id: int, fence_id: int) -> bool:
    g = geofences.c
    with engine.begin() as conn:
        return bool(
            conn.execute(delete(geofences).where(g.tenant_id == tenant_id, g.id == fence_id)).rowcount
        )


def geofence_event_list(
    engine: Engine,
    tenant_id: int,
    *,
    wire_id: str | None = None,
    fence_id: int | None = None,
    since: float = 0.0,
    limit: int = 100,
) -> list[dict[str, Any]]:
    e = geofence_events.c
    query = (
        select(V.wire_id, e.id, e.geofence_id, e.geofence_name, e.ts, e.kind, e.lat, e.lon)
        .join(db.vehicles, V.id == e.vehicle_id)
        .where(e.tenant_id == tenant_id, V.tenant_id == tenant_id, e.ts >= since)
    )
    if wire_id is not None:
        query = query.where(V.wire_id == wire_id)
    if fence_id is not None:
        query = query.where(e.geofence_id == fence_id)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(e.ts.desc(), e.id.desc()).limit(limit))
        return [
            {"vehicle": r.wire_id, **{k: v for k, v in r._mapping.items() if k != "wire_id"}} for r in rows
        ]


# ---- alerts ------------------------------------------------------------------------------------
STATES = ("open", "acknowledged", "withdrawn", "all")  # open: neither acknowledged nor withdrawn


def _alert(r: Any) -> dict[str, Any]:
    d = dict(r._mapping)
    d["vehicle"] = d.pop("wire_id")
    return d


def alert_list(
    engine: Engine,
    tenant_id: int,
    *,
    wire_id: str | None = None,
    type_: str | None = None,
    state: str = "all",
    since: float = 0.0,
    until: float = 1e12,
    limit: int = 100,
) -> list[dict[str, Any]]:
    a = alerts.c
    query = _of_tenant(alerts, tenant_id, a.ts, since, until, wire_id)
    if type_ is not None:
        query = query.where(a.type == type_)
    if state == "open":
        query = query.where(a.ack_ts.is_(None), a.withdrawn_ts.is_(None))
    elif state == "acknowledged":
        query = query.where(a.ack_ts.is_not(None))
    elif state == "withdrawn":
        query = query.where(a.withdrawn_ts.is_not(None))
    with engine.connect() as conn:
        return [_alert(r) for r in conn.execute(query.order_by(a.ts.desc(), a.id.desc()).limit(limit))]


def acknowledge(
    engine: Engine, tenant_id: int, alert_id: int, user: str, note: str | None
) -> dict[str, Any] | None:
    """Acknowledge an alert of the tenant (once: a second ack keeps the first); None if none."""
    a = alerts.c
    with engine.begin() as conn:
        conn.execute(
            update(alerts)
            .where(a.tenant_id == tenant_id, a.id == alert_id, a.ack_ts.is_(None))
            .values(ack_ts=time.time(), ack_by=user[:128], ack_note=(note or None))
        )
        cols = [c for c in alerts.c if c.name not in ("tenant_id", "vehicle_id")]
        row = conn.execute(
            select(V.wire_id, *cols)
            .join(db.vehicles, V.id == a.vehicle_id)
            .where(a.tenant_id == tenant_id, a.id == alert_id)
        ).first()
    return _alert(row) if row else None
