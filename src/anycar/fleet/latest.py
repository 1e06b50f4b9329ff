"""The latest value of signals, for the console: every signal of one vehicle, and one signal of
every vehicle (the map's battery levels). Scoped to the caller's tenant like every query.

Each read walks the (vehicle_id, ts) index backwards from the newest row, so it costs the
recent rows only, however long the history is.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from anycar.fleet import db

V = db.vehicles.c
S = db.signal_values.c
WINDOW_S = 3600.0  # "live signals": what the vehicle sent in its last hour online


def vehicle_signals(engine: Engine, tenant_id: int, wire_id: str) -> list[dict[str, Any]] | None:
    """The newest value of each path one vehicle sent in the hour before its last message;
    None if the tenant has no such vehicle."""
    with engine.connect() as conn:
        row = conn.execute(
            select(V.id, V.last_seen).where(V.tenant_id == tenant_id, V.wire_id == wire_id)
        ).first()
        if row is None:
            return None
        if row.last_seen is None:
            return []
        since = float(row.last_seen) - WINDOW_S
        newest = (
            select(S.path, func.max(S.ts).label("ts"))
            .where(S.vehicle_id == row.id, S.ts >= since)
            .group_by(S.path)
            .subquery()
        )
        rows = conn.execute(
            select(S.path, S.ts, S.value)
            .join(newest, (S.path == newest.c.path) & (S.ts == newest.c.ts))
            .where(S.vehicle_id == row.id, S.ts >= since)
            .order_by(S.path)
        )
        seen: dict[str, dict[str, Any]] = {}
        for r in rows:
            seen[r.path] = {"path": r.path, "ts": r.ts, "value": r.value}
        return list(seen.values())


def last_values(engine: Engine, tenant_id: int, path: str) -> list[dict[str, Any]]:
    """One path's newest value for every vehicle of the tenant that sent it."""
    newest = (
        select(S.num)
        .where(S.vehicle_id == V.id, S.path == path, S.ts >= V.last_seen - WINDOW_S)
        .order_by(S.ts.desc())
        .limit(1)
        .correlate(db.vehicles)
        .scalar_subquery()
    )
    with engine.connect() as conn:
        rows = conn.execute(
            select(V.wire_id, newest.label("value")).where(V.tenant_id == tenant_id).order_by(V.wire_id)
        )
        return [{"vehicle": r.wire_id, "value": r.value} for r in rows if r.value is not None]
