"""Each vehicle's day of positions in one row: fixes, first and last time, max speed, km.

The fleet daily report (per vehicle: fixes, first/last, max speed, km as the haversine sum over
consecutive fixes in time order) read from ``positions`` costs a window over one day's rows
(≈ 1-2 µs each: 2 s for 10^6 rows a day on this box, linear in the rows of that day). Read from
``position_days`` it is one index range of one row per vehicle.

The rollup is kept **exact** in the ingest's transaction (``apply``, run by
``Store.position_handlers`` after the batch's positions are written):

- fixes that all come after the vehicle-day's last one (the usual case) extend it: the
  segments from the stored last fix on are added one by one, in the same order and with the same
  formula as the query, so the sum is the query's sum;
- a fix at or before the stored last one (late, out of order, or a tie in time) recomputes
  that vehicle-day alone from ``positions`` (``rebuild``: the query itself, on one index range),
  so whatever lands between two fixes, the km is the query's km.

Time order is ``(ts, id)``: two fixes at the same time are taken in arrival order, which makes
the query's answer unique (``lag() OVER (ORDER BY ts)`` alone leaves ties to chance). Two workers
writing the same vehicle-day take turns on its row (``SELECT ... FOR UPDATE`` after an
``INSERT ... ON CONFLICT DO NOTHING``, in key order, so they cannot deadlock); SQLite has one
writer. A duplicate message never reaches here (the store drops it before the positions).
Retention removes raw positions but keeps their days' rows: the report of a past day stays what
was driven.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, Float, ForeignKey, Integer, Table, bindparam, select, text, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from anycar.fleet.db import metadata

DAY = 86_400
# PostgreSQL's radians() multiplies by this constant (float.c RADIANS_PER_DEGREE); Python's
# math.radians divides pi by 180 first, which can differ in the last bit
RADIANS_PER_DEGREE = 0.0174532925199432957692
EARTH_KM = 6371.0

position_days = Table(
    "position_days",
    metadata,
    Column("day", Integer, primary_key=True),  # UTC day number: floor(ts / 86400)
    Column("vehicle_id", Integer, ForeignKey("vehicles.id"), primary_key=True),
    Column("fixes", Integer, nullable=False),
    Column("first_ts", Float),
    Column("last_ts", Float),
    Column("max_speed", Float),
    Column("km", Float, nullable=False),
    Column("last_lat", Float),  # the last fix in (ts, id) order: where the next segment starts
    Column("last_lon", Float),
)
D = position_days.c
_KEPT = ("fixes", "first_ts", "last_ts", "max_speed", "km", "last_lat", "last_lon")

_SEGMENT = (
    "CASE WHEN prev_lat IS NULL THEN 0 ELSE 6371.0 * 2 * asin(sqrt("
    "power(sin(radians(lat - prev_lat) / 2), 2) + "
    "cos(radians(prev_lat)) * cos(radians(lat)) * power(sin(radians(lon - prev_lon) / 2), 2))) END"
)

# the report as it was, read from positions (ties in time taken in arrival order, see above)
FROM_POSITIONS = f"""
SELECT vehicle_id, count(*) AS fixes, min(ts) AS first, max(ts) AS last, max(speed) AS max_speed,
       sum({_SEGMENT}) AS km
FROM (SELECT vehicle_id, ts, lat, lon, speed,
             lag(lat) OVER w AS prev_lat, lag(lon) OVER w AS prev_lon
      FROM positions WHERE ts >= :a AND ts < :b
      WINDOW w AS (PARTITION BY vehicle_id ORDER BY ts, id)) x
GROUP BY vehicle_id ORDER BY vehicle_id
"""

# the report read from the rollup: one row per vehicle of the day
FROM_ROLLUP = (
    "SELECT vehicle_id, fixes, first_ts AS first, last_ts AS last, max_speed, km FROM position_days "
    "WHERE day = :d AND fixes > 0 ORDER BY vehicle_id"
)

_REBUILD = f"""
INSERT INTO position_days (day, vehicle_id, fixes, first_ts, last_ts, max_speed, km, last_lat, last_lon)
SELECT day, vehicle_id, count(*), min(ts), max(ts), max(speed), sum({_SEGMENT}),
       max(CASE WHEN rn = 1 THEN lat END), max(CASE WHEN rn = 1 THEN lon END)
FROM (SELECT CAST(floor(ts / {DAY}) AS INTEGER) AS day, vehicle_id, ts, lat, lon, speed,
             lag(lat) OVER w AS prev_lat, lag(lon) OVER w AS prev_lon,
             row_number() OVER (PARTITION BY vehicle_id, CAST(floor(ts / {DAY}) AS INTEGER)
                                ORDER BY ts DESC, id DESC) AS rn
      FROM positions WHERE ts >= :a AND ts < :b {{vehicle}}
      WINDOW w AS (PARTITION BY vehicle_id, CAST(floor(ts / {DAY}) AS INTEGER) ORDER BY ts, id)) x
GROUP BY day, vehicle_id
"""


def segment_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The query's haversine, operation for operation (so an appended segment adds what the
    query would add)."""
    a = math.pow(math.sin((lat2 - lat1) * RADIANS_PER_DEGREE / 2), 2) + math.cos(
        lat1 * RADIANS_PER_DEGREE
    ) * math.cos(lat2 * RADIANS_PER_DEGREE) * math.pow(math.sin((lon2 - lon1) * RADIANS_PER_DEGREE / 2), 2)
    return EARTH_KM * 2 * math.asin(math.sqrt(a))


def rebuild(conn: Connection, a: float, b: float, vehicle_id: int | None = None) -> None:
    """Recompute the rows of every day in ``[a, b)`` (whole UTC days) from positions, for one
    vehicle or all: the late-data path, the migration's backfill, the benchmark's fill."""
    delete = position_days.delete()
    if math.isfinite(a):
        delete = delete.where(D.day >= int(a // DAY))
    if math.isfinite(b):
        delete = delete.where(D.day < math.ceil(b / DAY))
    params: dict[str, Any] = {"a": float(a), "b": float(b)}
    if vehicle_id is not None:
        delete = delete.where(D.vehicle_id == vehicle_id)
        params["v"] = vehicle_id
    conn.execute(delete)
    conn.execute(text(_REBUILD.format(vehicle="AND vehicle_id = :v" if vehicle_id is not None else "")), params)


def apply(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Fold a batch's positions (as written, in id order) into their vehicle-days, inside the
    batch's transaction."""
    if not rows:
        return
    groups: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for row in sorted(rows, key=lambda r: r["ts"]):  # stable: ties keep their id order
        groups.setdefault((int(row["ts"] // DAY), row["vehicle_id"]), []).append(row)
    keys = sorted(groups)
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(
        dialect_insert(position_days)
        .values([{"day": d, "vehicle_id": v, "fixes": 0, "km": 0.0} for d, v in keys])
        .on_conflict_do_nothing()
    )
    state = {
        (r.day, r.vehicle_id): r
        for r in conn.execute(
            select(position_days)
            .where(tuple_(D.day, D.vehicle_id).in_(keys))
            .order_by(D.day, D.vehicle_id)
            .with_for_update()
        )
    }
    updates: list[dict[str, Any]] = []
    late: list[tuple[int, int]] = []
    for key in keys:
        s, points = state[key], groups[key]
        if s.fixes and points[0]["ts"] <= s.last_ts:
            late.append(key)
            continue
        km = s.km
        prev = (s.last_lat, s.last_lon) if s.fixes else None
        speeds = [p["speed"] for p in points if p["speed"] is not None]
        if s.max_speed is not None:
            speeds.append(s.max_speed)
        for p in points:
            if prev is not None:
                km += segment_km(prev[0], prev[1], p["lat"], p["lon"])
            prev = (p["lat"], p["lon"])
        last = points[-1]
        updates.append(
            {
                "k_day": key[0],
                "k_vehicle": key[1],
                "p_fixes": s.fixes + len(points),
                "p_first_ts": s.first_ts if s.fixes else points[0]["ts"],
                "p_last_ts": last["ts"],
                "p_max_speed": max(speeds) if speeds else None,
                "p_km": km,
                "p_last_lat": last["lat"],
                "p_last_lon": last["lon"],
            }
        )
    if updates:
        conn.execute(
            update(position_days)
            .where(D.day == bindparam("k_day"), D.vehicle_id == bindparam("k_vehicle"))
            .values({c: bindparam(f"p_{c}") for c in _KEPT}),
            updates,
        )
    for day, vehicle in late:
        rebuild(conn, day * DAY, (day + 1) * DAY, vehicle)
