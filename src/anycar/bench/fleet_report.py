"""``anycar bench fleet-report``: the product's fleet daily report (``anycar.fleet.reports``,
what ``GET /api/reports/fleet`` and ``anycar fleet report`` answer) at 10^6 .. 10^7 position rows
on PostgreSQL, against issue 14's goal (a fleet daily report <= 2 s).

The positions are the query benchmark's (``anycar bench fleet --rows``: 10,000 vehicles, 100
fixes a vehicle a day, one day partition a day, the same generator), with the daily rollup made
at once for the fill (``daily.rebuild``, what the ingest keeps row by row); each vehicle-day also
gets the trips and stops the derivation would have written (4 trips, 5 stops), so the report
reads what it reads in production. Timed: the report as JSON (the dict), as CSV and as the
printable page, wall and this process's CPU, at each size.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from anycar.bench.fleet import FIXES_PER_DAY, QUERY_VEHICLES, database, register
from anycar.bench.stats import percentile
from anycar.errors import ConfigError
from anycar.fleet import daily, reports

TRIPS_PER_DAY = 4
GOAL_S = 2.0

_POSITIONS = (  # anycar bench fleet --rows's generator, row for row
    "INSERT INTO positions (vehicle_id, ts, lat, lon, speed, heading, source) "
    "SELECT v, CAST(:d AS double precision) + 28800 + f * 288 + (v % 97), 48.1 + (v % 100) / 1000.0 + f / 1e5, "
    "11.5 + (v / 100) / 1000.0 + f / 1e5, (f * 7 + v) % 60, (f * 13) % 360, 'hub' "
    "FROM generate_series(CAST(:lo AS integer), CAST(:hi AS integer)) v, "
    "generate_series(0, CAST(:n AS integer) - 1) f"
)
# a trip every 2 h from 08:00 (1 h each, 12 km, 45 km/h at most), a stop before each and after the last
_TRIPS = (
    "INSERT INTO trips (tenant_id, vehicle_id, start_ts, end_ts, distance_m, max_speed, avg_speed, "
    "energy_kwh, open) SELECT :t, v, CAST(:d AS double precision) + 28800 + k * 7200, "
    "CAST(:d AS double precision) + 32400 + k * 7200, 12000, 45, 12, 1.5, false "
    "FROM generate_series(CAST(:lo AS integer), CAST(:hi AS integer)) v, "
    "generate_series(0, CAST(:n AS integer) - 1) k"
)
_STOPS = (
    "INSERT INTO stops (tenant_id, vehicle_id, start_ts, end_ts, lat, lon, open) "
    "SELECT :t, v, CAST(:d AS double precision) + 25200 + k * 7200, "
    "CAST(:d AS double precision) + 28800 + k * 7200, 48.1, 11.5, false "
    "FROM generate_series(CAST(:lo AS integer), CAST(:hi AS integer)) v, "
    "generate_series(0, CAST(:n AS integer)) k"
)


def _timed(fn: Any, repeat: int) -> dict[str, Any]:
    walls, cpus = [], []
    for _ in range(repeat):
        c, t = time.process_time(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return {
        "runs": repeat,
        "p50_ms": round(percentile(sorted(walls), 50) * 1000, 1),
        "min_ms": round(min(walls) * 1000, 1),
        "max_ms": round(max(walls) * 1000, 1),
        "cpu_p50_ms": round(percentile(sorted(cpus), 50) * 1000, 1),
    }


def run(sizes: list[int], repeat: int = 5) -> dict[str, Any]:
    """Fill up to each size and time the product's fleet report of a day in the middle."""
    from anycar.fleet import db, partitions
    from anycar.fleet.db import make_engine

    free = shutil.disk_usage("/var/lib/postgresql" if os.path.isdir("/var/lib/postgresql") else "/").free
    need = max(sizes) * 200  # a position row with its index (160 B, measured) and the trips beside
    if free < 3 * need:
        raise ConfigError(f"--rows {max(sizes)}: {free / 1e9:.1f} GB free, want {3 * need / 1e9:.1f} GB")
    folder = Path(tempfile.mkdtemp(prefix="anycar-bench-report-"))
    out: dict[str, Any] = {
        "benchmark": "fleet-report",
        "vehicles": QUERY_VEHICLES,
        "fixes_per_vehicle_day": FIXES_PER_DAY,
        "trips_per_vehicle_day": TRIPS_PER_DAY,
        "goal_s": GOAL_S,
        "sizes": [],
    }
    try:
        with database("postgres", folder) as url:
            engine = make_engine(url)
            register(engine, "R", QUERY_VEHICLES)
            with engine.connect() as conn:
                tid = int(conn.execute(select(db.vehicles.c.tenant_id).limit(1)).scalar_one())
                lo, hi = conn.execute(select(func.min(db.vehicles.c.id), func.max(db.vehicles.c.id))).one()
            day0 = partitions.day_start(time.time()) + 86_400  # tomorrow onwards: day partitions
            filled = 0
            for size in sorted(sizes):
                days = max(1, size // (QUERY_VEHICLES * FIXES_PER_DAY))
                partitions.ensure_days(engine, day0, day0 + (days - 1) * 86_400)
                t = time.perf_counter()
                with engine.begin() as conn:
                    for d in range(filled, days):
                        day = {"d": day0 + d * 86_400, "lo": lo, "hi": hi, "t": tid}
                        conn.execute(text(_POSITIONS), {**day, "n": FIXES_PER_DAY})
                        conn.execute(text(_TRIPS), {**day, "n": TRIPS_PER_DAY})
                        conn.execute(text(_STOPS), {**day, "n": TRIPS_PER_DAY})
                    daily.rebuild(conn, day0 + filled * 86_400, day0 + days * 86_400)
                    for table in ("vehicles", "positions", "position_days", "trips", "stops"):
                        conn.execute(text(f"ANALYZE {table}"))
                fill_s = time.perf_counter() - t
                filled = days
                with engine.connect() as conn:
                    rows = conn.execute(text("SELECT count(*) FROM positions")).scalar()
                    trip_rows = conn.execute(text("SELECT count(*) FROM trips")).scalar()
                mid = day0 + (days // 2) * 86_400
                label = time.strftime("%Y-%m-%d", time.gmtime(mid))
                period = reports.period(day=label)
                report = reports.fleet_report(engine, tid, period)
                out["sizes"].append(
                    {
                        "rows": rows,
                        "trips": trip_rows,
                        "days": days,
                        "fill_s": round(fill_s, 1),
                        "day": label,
                        "report_vehicles": len(report["vehicles"]),
                        "report_fixes": report["totals"]["fixes"],
                        "report_km": report["totals"]["distance_km"],
                        "json": _timed(lambda p=period: reports.fleet_report(engine, tid, p), repeat),
                        "csv": _timed(
                            lambda p=period: reports.to_csv(reports.fleet_report(engine, tid, p)), repeat
                        ),
                        "html": _timed(
                            lambda p=period: reports.to_html(reports.fleet_report(engine, tid, p), "bench"),
                            repeat,
                        ),
                        "loadavg": os.getloadavg(),
                    }
                )
                out["sizes"][-1]["meets_goal"] = out["sizes"][-1]["json"]["max_ms"] <= GOAL_S * 1000
            engine.dispose()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return out
