"""Each vehicle's day of positions in one row: fixes, first and last time, max speed, km.

The fleet daily report (per vehicle: fixes, first/last, max speed, km as the haversine sum over
consecutive fixes in time order) read from ``positions`` costs a window over one day's rows
(≈ 1-2 µs each: 2 s for 10^6 rows a day on this box, linear in the rows of that day). Read from
``position_days`` it is one index range of one row per vehicle.

The rollup is kept **exact** in the ingest's transaction (``apply``, run by
``Store.position_handlers`` after the batch's positions are written):

- fixes that all come after the vehicle-day's last one (the usual case) extend it, in one
  ``INSERT ... ON CONFLICT DO UPDATE ... WHERE last_ts < first new ts`` for the whole batch:
  km += the segment from the stored last fix to the first new one + the new fixes' own segments,
  the query's formula (the sum's grouping differs from the query's running sum: a few units in
  the last place of a double, 1e-12 of the km, at most);
- the vehicle-days that upsert leaves alone (a fix at or before the stored last one: late, out of
  order, or a tie in time) are recomputed alone from ``positions`` (``rebuild``: the query
  itself, on one index range), so whatever lands between two fixes, the km is the query's km.

Time order is ``(ts, id)``: two fixes at the same time are taken in arrival order, which makes
the query's answer unique (``lag() OVER (ORDER BY ts)`` alone leaves ties to chance). Two workers
writing the same vehicle-day take turns on its row (the upsert locks it, and a recompute runs
under that lock or the row's insert; keys go in one order, so two workers cannot deadlock);
SQLite has one writer. A duplicate message never reaches here (the store drops it before the positions).
Retention removes raw positions but keeps their days' rows: the report of a past day stays what
was driven.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, Float, ForeignKey, Integer, Table, text
from sqlalchemy.engine import Connection

from anycar.fleet import pgarrays, pgcopy
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
    Column("first_lat", Float),
    Column("first_lon", Float),
    Column("last_lat", Float),  # the last fix in (ts, id) order: where the next segment starts
    Column("last_lon", Float),
)
D = position_days.c

_SEGMENT = (
    "CASE WHEN prev_lat IS NULL THEN 0 ELSE 6371.0 * 2 * asin(sqrt("
    "power(sin(radians(lat - prev_lat) / 2), 2) + "
    "cos(radians(prev_lat)) * cos(radians(lat)) * power(sin(radians(lon - prev_lon) / 2), 2))) END"
)

# the report as it was, read from positions (ties in time taken in arrival order, see above)
FROM_POSITIONS = (  # only our own constant SQL is formatted in
    f"""
SELECT vehicle_id, count(*) AS fixes, min(ts) AS first, max(ts) AS last, max(speed) AS max_speed,
       sum({_SEGMENT}) AS km
FROM (SELECT vehicle_id, ts, lat, lon, speed,
             lag(lat) OVER w AS prev_lat, lag(lon) OVER w AS prev_lon
      FROM positions WHERE ts >= :a AND ts < :b
      WINDOW w AS (PARTITION BY vehicle_id ORDER BY ts, id)) x
GROUP BY vehicle_id ORDER BY vehicle_id
"""  # nosec B608
)

# the report read from the rollup: one row per vehicle of the day
FROM_ROLLUP = (
    "SELECT vehicle_id, fixes, first_ts AS first, last_ts AS last, max_speed, km FROM position_days "
    "WHERE day = :d AND fixes > 0 ORDER BY vehicle_id"
)

_REBUILD = (  # only our own constant SQL (and a fixed vehicle clause) is formatted in
    f"""
INSERT INTO position_days (day, vehicle_id, fixes, first_ts, last_ts, max_speed, km,
                           first_lat, first_lon, last_lat, last_lon)
SELECT day, vehicle_id, count(*), min(ts), max(ts), max(speed), sum({_SEGMENT}),
       max(CASE WHEN prev_lat IS NULL THEN lat END), max(CASE WHEN prev_lat IS NULL THEN lon END),
       max(CASE WHEN rn = 1 THEN lat END), max(CASE WHEN rn = 1 THEN lon END)
FROM (SELECT CAST(floor(ts / {DAY}) AS INTEGER) AS day, vehicle_id, ts, lat, lon, speed,
             lag(lat) OVER w AS prev_lat, lag(lon) OVER w AS prev_lon,
             row_number() OVER (PARTITION BY vehicle_id, CAST(floor(ts / {DAY}) AS INTEGER)
                                ORDER BY ts DESC, id DESC) AS rn
      FROM positions WHERE ts >= :a AND ts < :b {{vehicle}}
      WINDOW w AS (PARTITION BY vehicle_id, CAST(floor(ts / {DAY}) AS INTEGER) ORDER BY ts, id)) x
GROUP BY day, vehicle_id
"""  # nosec B608
)


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
    conn.execute(
        text(_REBUILD.format(vehicle="AND vehicle_id = :v" if vehicle_id is not None else "")), params
    )


_PG_UPSERT = """
INSERT INTO position_days AS d (day, vehicle_id, fixes, first_ts, last_ts, max_speed, km,
                                first_lat, first_lon, last_lat, last_lon)
SELECT * FROM unnest(%s::integer[], %s::integer[], %s::integer[], %s::float8[], %s::float8[],
                     %s::float8[], %s::float8[], %s::float8[], %s::float8[], %s::float8[], %s::float8[])
ON CONFLICT (day, vehicle_id) DO UPDATE SET
    fixes = d.fixes + excluded.fixes,
    last_ts = excluded.last_ts,
    max_speed = CASE WHEN d.max_speed IS NULL THEN excluded.max_speed
                     WHEN excluded.max_speed IS NULL THEN d.max_speed
                     ELSE greatest(d.max_speed, excluded.max_speed) END,
    km = d.km + 6371.0 * 2 * asin(sqrt(
             power(sin(radians(excluded.first_lat - d.last_lat) / 2), 2) +
             cos(radians(d.last_lat)) * cos(radians(excluded.first_lat)) *
             power(sin(radians(excluded.first_lon - d.last_lon) / 2), 2))) + excluded.km,
    last_lat = excluded.last_lat,
    last_lon = excluded.last_lon
WHERE d.last_ts < excluded.first_ts
RETURNING day, vehicle_id
"""


_UPSERT_COLUMNS = (
    "day",
    "vehicle_id",
    "fixes",
    "first_ts",
    "last_ts",
    "max_speed",
    "km",
    "first_lat",
    "first_lon",
    "last_lat",
    "last_lon",
)
_INT_COLUMNS = {"day", "vehicle_id", "fixes"}
_TS = operator.itemgetter("ts")


# sqlite-ingest (session 6): the SQLite upsert as SQL text with one "?" per value, run on the
# driver's own connection. SQLAlchemy compiling ``insert().values(rows)`` anew for every batch
# (11 bound parameters a vehicle-day) was ~70 % of a SQLite worker's commit CPU. The text is what
# SQLAlchemy compiled from it (the haversine bridge from the stored last fix, the larger of two
# speeds either possibly NULL), its constants folded the same way, the values bound as floats.
_SQLITE_COLUMNS = tuple(c.name for c in position_days.columns)
_SQLITE_ROW = "(" + ", ".join("?" * len(_SQLITE_COLUMNS)) + ")"
_SQLITE_UPSERT = (
    f"INSERT INTO position_days ({', '.join(_SQLITE_COLUMNS)}) VALUES {{rows}} "  # nosec B608 # the table's own column names and ?-placeholders, no input
    "ON CONFLICT (day, vehicle_id) DO UPDATE SET fixes = (position_days.fixes + excluded.fixes), "
    "last_ts = excluded.last_ts, "
    "max_speed = CASE WHEN (position_days.max_speed IS NULL) THEN excluded.max_speed "
    "WHEN (excluded.max_speed IS NULL) THEN position_days.max_speed "
    "WHEN (excluded.max_speed > position_days.max_speed) THEN excluded.max_speed "
    "ELSE position_days.max_speed END, "
    f"km = (position_days.km + {EARTH_KM * 2!r} * asin(sqrt("
    "power(sin(radians(excluded.first_lat - position_days.last_lat) / 2.0), 2) + "
    "cos(radians(position_days.last_lat)) * cos(radians(excluded.first_lat)) * "
    "power(sin(radians(excluded.first_lon - position_days.last_lon) / 2.0), 2))) + excluded.km), "
    "last_lat = excluded.last_lat, last_lon = excluded.last_lon "
    "WHERE position_days.last_ts < excluded.first_ts "  # all after the stored last fix: it extends the day
    "RETURNING day, vehicle_id"
)
_SQLITE_CHUNK = 2000  # vehicle-days a statement: 22,000 parameters, under SQLite's 32,766


def _upsert_sqlite(conn: Connection, values: list[dict[str, Any]]) -> set[tuple[int, int]]:
    """Extend each vehicle-day of ``values`` (sorted by key) whose stored last fix is before its
    first new one; the keys it extended (or created)."""
    raw: Any = conn.connection.driver_connection  # sqlite3's own connection, same transaction
    done: set[tuple[int, int]] = set()
    for i in range(0, len(values), _SQLITE_CHUNK):
        chunk = values[i : i + _SQLITE_CHUNK]
        sql = _SQLITE_UPSERT.format(rows=", ".join([_SQLITE_ROW] * len(chunk)))
        params = [row[c] for row in chunk for c in _SQLITE_COLUMNS]
        done.update((int(d), int(v)) for d, v in raw.execute(sql, params).fetchall())
    return done


def apply(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Fold a batch's positions (as written, in id order) into their vehicle-days, inside the
    batch's transaction: one upsert for every vehicle-day the batch extends, a recompute for each
    one it lands inside of."""
    if not rows:
        return
    groups: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for row in sorted(rows, key=_TS):  # stable: ties keep their id order
        key = (int(row["ts"] // DAY), row["vehicle_id"])
        points = groups.get(key)
        if points is None:
            groups[key] = [row]
        else:
            points.append(row)
    keys = sorted(groups)  # one lock order for every writer: two workers cannot deadlock
    values = []
    for key in keys:
        points = groups[key]
        first, last = points[0], points[-1]
        if len(points) == 1:  # pg-worker: a vehicle's one fix of the batch (the usual case)
            km, max_speed = 0.0, first["speed"]
        else:
            km = 0.0
            for a, b in itertools.pairwise(points):
                km += segment_km(a["lat"], a["lon"], b["lat"], b["lon"])
            speeds = [p["speed"] for p in points if p["speed"] is not None]
            max_speed = max(speeds) if speeds else None
        values.append(  # in _UPSERT_COLUMNS' order
            (
                *key,
                len(points),
                first["ts"],
                last["ts"],
                max_speed,
                km,
                first["lat"],
                first["lon"],
                last["lat"],
                last["lon"],
            )
        )
    if conn.dialect.name == "postgresql":  # one short prepared statement: the rows as arrays
        # (ingest-commit: the driver's cursor, not SQLAlchemy's binding of eleven lists through
        # psycopg's per-element dumper; pg-worker: binary arrays, see pgcopy, not text literals)
        raw: Any = conn.connection.driver_connection  # psycopg's own, in the same transaction
        pgcopy.binary_params(raw)
        with raw.cursor() as cur:
            cur.execute(
                _PG_UPSERT,
                [
                    pgcopy.param(pgcopy.int_param, column, pgarrays.int_array)
                    if c in _INT_COLUMNS
                    else pgcopy.param(pgcopy.float8_param, column, pgarrays.float_array)
                    for c, column in zip(_UPSERT_COLUMNS, zip(*values, strict=True), strict=True)
                ],
                prepare=True,
            )
            done = set(cur.fetchall())
    else:
        done = _upsert_sqlite(conn, [dict(zip(_UPSERT_COLUMNS, v, strict=True)) for v in values])
    for day, vehicle in keys:
        if (day, vehicle) not in done:  # late: it lands inside (or ties) what is stored
            rebuild(conn, day * DAY, (day + 1) * DAY, vehicle)
