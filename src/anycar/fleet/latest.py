"""The latest value of signals, for the console: every signal of one vehicle, and one signal of
every vehicle (the map's battery levels). Scoped to the caller's tenant like every query.

Each read is bounded below in time on ``signal_batches.ts`` (the view's ``batch_ts``), the
(vehicle_id, ts) index range of the recent rows only, however long the history is.
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
        ranked = (
            select(
                S.path,
                S.ts,
                S.value,
                func.row_number().over(partition_by=S.path, order_by=S.ts.desc()).label("n"),
            )
            .where(S.vehicle_id == row.id, S.batch_ts >= since, S.ts >= since)
            .subquery()
        )  # the newest per path chosen in the database: only those values are decoded here
        rows = conn.execute(select(ranked.c.path, ranked.c.ts, ranked.c.value).where(ranked.c.n == 1))
        return [{"path": r.path, "ts": r.ts, "value": r.value} for r in sorted(rows, key=lambda r: r.path)]


def newest(vehicle_id: Any, path: str, column: Any, since: Any = None) -> Any:
    """A scalar subquery: ``column`` of the newest value of ``path`` of the vehicle ``vehicle_id``
    (a column or a value), at or after ``since`` if given. Exact and cheap: the newest row that
    holds the path (the index backwards) gives a time c; a newer value can only be in a row whose
    ``ts`` >= c (a row's ts is its newest value's), so only those rows are searched."""
    b = db.signal_values.alias("held")
    held = [b.c.vehicle_id == vehicle_id, b.c.path == path]
    if since is not None:
        held += [b.c.batch_ts >= since, b.c.ts >= since]
    bound = (
        select(b.c.ts)
        .where(*held)
        .order_by(b.c.batch_ts.desc())
        .limit(1)
        .correlate_except(b)
        .scalar_subquery()
    )
    return (  # the max is >= the bound's own value, so nothing older needs excluding
        select(column)
        .where(S.vehicle_id == vehicle_id, S.path == path, S.batch_ts >= bound)
        .order_by(S.ts.desc())
        .limit(1)
        .correlate_except(db.signal_values)
        .scalar_subquery()
    )


def last_values(engine: Engine, tenant_id: int, path: str) -> list[dict[str, Any]]:
    """One path's newest value for every vehicle of the tenant that sent it."""
    value = newest(V.id, path, S.num, V.last_seen - WINDOW_S)
    with engine.connect() as conn:
        rows = conn.execute(
            select(V.wire_id, value.label("value")).where(V.tenant_id == tenant_id).order_by(V.wire_id)
        )
        return [{"vehicle": r.wire_id, "value": r.value} for r in rows if r.value is not None]
