"""Reports per vehicle and per fleet, per UTC day or ISO week: distance, driving time, trips,
stops, energy, utilisation, alerts; as JSON, CSV, and a printable HTML page with inline SVG
charts (PDF through the browser's print).

Distance, fixes and max speed are read from the daily rollup ``position_days`` (one row per
vehicle-day, kept exact in the ingest's transaction, ``anycar.fleet.daily``): the GPS distance of
the day's fixes in time order, cut at midnight UTC, so a fleet's day costs one row per vehicle
however many positions it has, and a past day's report survives the raw positions' retention.
Driving time, trips, stops and energy come from the derived tables (trips, stops, alerts): a
trip counts on the day it starts, the trip under way up to its latest sample; ``trip_distance_km``
is the trips' own distance (which leaves out the drift of a parked tracker and counts a trip
over midnight on its first day; on a drive without either the two are the same, tested).
Utilisation is driving time over the period's length (24 h a day). Withdrawn alerts (late data
showed them false) are not counted.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import re
import time
from importlib import resources
from string import Template
from typing import Any

from sqlalchemy import case, func, literal, select, union_all
from sqlalchemy.engine import Engine

from anycar.fleet import db
from anycar.fleet.daily import DAY, position_days
from anycar.fleet.domain_tables import alerts, stops, trips

V = db.vehicles.c
DAY_S = 86_400.0
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
COLUMNS = (
    "distance_km",
    "driving_s",
    "trips",
    "stops",
    "stop_s",
    "energy_kwh",
    "kwh_per_100km",
    "max_speed_kmh",
    "utilisation",
    "alerts",
    "fixes",
    "trip_distance_km",
)


class ReportError(ValueError):
    """A report that cannot be made; the message names the parameter."""


def period(day: str | None = None, week: str | None = None) -> dict[str, Any]:
    """The period of a UTC day ``YYYY-MM-DD`` or an ISO week ``YYYY-Www`` (Monday..Sunday)."""
    if (day is None) == (week is None):
        raise ReportError("day or week: give one (day=YYYY-MM-DD or week=YYYY-Www)")
    if day is not None:
        try:
            start = dt.datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=dt.UTC)
        except ValueError:
            raise ReportError(f"day: {day[:40]!r} is not YYYY-MM-DD") from None
        return {
            "kind": "day",
            "label": day,
            "start": start.timestamp(),
            "end": start.timestamp() + DAY_S,
            "days": [day],
        }
    m = _WEEK.match(week or "")
    try:
        if m is None:
            raise ValueError
        monday = dt.datetime.fromisocalendar(int(m[1]), int(m[2]), 1).replace(tzinfo=dt.UTC)
    except ValueError:
        raise ReportError(f"week: {str(week)[:40]!r} is not an ISO week YYYY-Www") from None
    days = [(monday + dt.timedelta(days=i)).strftime("%Y-%m-%d") for i in range(7)]
    return {
        "kind": "week",
        "label": week,
        "start": monday.timestamp(),
        "end": monday.timestamp() + 7 * DAY_S,
        "days": days,
    }


def _empty() -> dict[str, Any]:
    return {
        "distance_m": 0.0,
        "trip_m": 0.0,
        "fixes": 0,
        "driving_s": 0.0,
        "trips": 0,
        "stops": 0,
        "stop_s": 0.0,
        "energy": None,
        "energy_m": 0.0,
        "max_speed": None,
        "alerts": 0,
        "by_type": {},
    }


def _day_of(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d")


def _finish(acc: dict[str, Any], span_s: float) -> dict[str, Any]:
    energy = acc["energy"]
    return {
        "distance_km": round(acc["distance_m"] / 1000, 3),
        "trip_distance_km": round(acc["trip_m"] / 1000, 3),
        "fixes": acc["fixes"],
        "driving_s": round(acc["driving_s"]),
        "trips": acc["trips"],
        "stops": acc["stops"],
        "stop_s": round(acc["stop_s"]),
        "energy_kwh": None if energy is None else round(energy, 3),
        "kwh_per_100km": round(energy / (acc["energy_m"] / 100_000), 2)
        if energy and acc["energy_m"] > 0
        else None,
        "max_speed_kmh": acc["max_speed"],
        "utilisation": round(acc["driving_s"] / span_s, 4) if span_s > 0 else 0.0,
        "alerts": acc["alerts"],
        "alerts_by_type": dict(sorted(acc["by_type"].items())),
    }


def _day_index(ts: Any, p: dict[str, Any]) -> Any:
    """Which of the period's days (0..6) ``ts`` falls on, in SQL both databases read the same
    way (a ladder of the day boundaries: no floor(), whose casts differ)."""
    bounds = [(ts < p["start"] + (i + 1) * DAY_S, i) for i in range(len(p["days"]) - 1)]
    return case(*bounds, else_=len(p["days"]) - 1) if bounds else literal(0)


def _collect(
    engine: Engine, tenant_id: int, p: dict[str, Any], vehicle_pk: int | None
) -> tuple[dict[tuple[int, str], dict[str, Any]], dict[int, Any]]:
    """Per (vehicle, day): the rollup's row, and the trips, stops and alerts summed in SQL (a
    fleet's day is a few rows per vehicle to Python, not every trip and stop)."""
    start, end = p["start"], p["end"]
    now = time.time()
    acc: dict[tuple[int, str], dict[str, Any]] = {}
    t, s, a, d = trips.c, stops.c, alerts.c, position_days.c
    label = p["days"]
    with engine.connect() as conn:
        vq = select(V.id, V.wire_id, V.vin, V.brand).where(V.tenant_id == tenant_id)
        if vehicle_pk is not None:
            vq = vq.where(V.id == vehicle_pk)
        vehicles = {r.id: r for r in conn.execute(vq.order_by(V.wire_id))}
        # the period's days listed (at most 7): each (day, vehicle) is a point in the primary key,
        # where a range of days would scan the whole day's index for every vehicle of a nested loop
        days = list(range(int(start // DAY), int(-(-end // DAY))))
        dq_: Any = select(d.vehicle_id, d.day, d.fixes, d.km, d.max_speed).where(
            d.day.in_(days), d.fixes > 0, d.vehicle_id.in_(select(V.id).where(V.tenant_id == tenant_id))
        )
        driving = t.end_ts - t.start_ts
        tday = _day_index(t.start_ts, p).label("di")
        tq: Any = (
            select(
                t.vehicle_id,
                tday,
                func.count().label("n"),
                func.sum(t.distance_m).label("m"),
                func.sum(case((driving > 0, driving), else_=0.0)).label("driving"),
                func.sum(t.energy_kwh).label("energy"),
                func.sum(case((t.energy_kwh.is_not(None), t.distance_m), else_=0.0)).label("energy_m"),
            )
            .where(t.tenant_id == tenant_id, t.start_ts >= start, t.start_ts < end)
            .group_by(t.vehicle_id, tday)
        )
        # the stops that began in the period (one index range), and the one each vehicle was in
        # when it began: its last stop begun before, if that ended after the start or is open
        # (one (vehicle, start) lookup per vehicle: history does not make it dearer)
        s2 = stops.alias("s2")
        began = select(s.vehicle_id, s.start_ts, s.end_ts).where(
            s.tenant_id == tenant_id, s.start_ts >= start, s.start_ts < end
        )
        last_before = (
            select(func.max(s2.c.start_ts))
            .where(s2.c.vehicle_id == V.id, s2.c.start_ts < start)
            .scalar_subquery()
        )
        in_progress = (
            select(s.vehicle_id, s.start_ts, s.end_ts)
            .select_from(db.vehicles.join(stops, s.vehicle_id == V.id))
            .where(V.tenant_id == tenant_id, s.start_ts == last_before)
            .where((s.end_ts > start) | s.end_ts.is_(None))
        )
        if vehicle_pk is not None:
            began, in_progress = (
                began.where(s.vehicle_id == vehicle_pk),
                in_progress.where(V.id == vehicle_pk),
            )
        u = union_all(began, in_progress).subquery()
        s0 = case((u.c.start_ts > start, u.c.start_ts), else_=literal(start))
        ends = func.coalesce(u.c.end_ts, now)
        s1 = case((ends < end, ends), else_=literal(end))
        sday = _day_index(s0, p).label("di")
        sq: Any = select(
            u.c.vehicle_id,
            sday,
            func.sum(case((u.c.start_ts >= start, 1), else_=0)).label("n"),
            func.sum(case((s1 > s0, s1 - s0), else_=0.0)).label("stopped"),
        ).group_by(u.c.vehicle_id, sday)
        aday = _day_index(a.ts, p).label("di")
        aq: Any = (
            select(a.vehicle_id, aday, a.type, func.count().label("n"))
            .where(a.tenant_id == tenant_id, a.ts >= start, a.ts < end, a.withdrawn_ts.is_(None))
            .group_by(a.vehicle_id, aday, a.type)
        )
        if vehicle_pk is not None:
            dq_, tq, aq = (
                dq_.where(d.vehicle_id == vehicle_pk),
                tq.where(t.vehicle_id == vehicle_pk),
                aq.where(a.vehicle_id == vehicle_pk),
            )
        for r in conn.execute(dq_):
            x = acc.setdefault((r.vehicle_id, _day_of(r.day * DAY)), _empty())
            x["fixes"] += r.fixes
            x["distance_m"] += r.km * 1000
            if r.max_speed is not None:
                x["max_speed"] = max(x["max_speed"] or 0.0, r.max_speed)
        for r in conn.execute(tq):
            x = acc.setdefault((r.vehicle_id, label[r.di]), _empty())
            x["trips"] += r.n
            x["trip_m"] += r.m or 0.0
            x["driving_s"] += r.driving or 0.0
            if r.energy is not None:
                x["energy"] = (x["energy"] or 0.0) + r.energy
                x["energy_m"] += r.energy_m or 0.0
        for r in conn.execute(sq):
            x = acc.setdefault((r.vehicle_id, label[r.di]), _empty())
            x["stops"] += r.n or 0
            x["stop_s"] += r.stopped or 0.0
        for r in conn.execute(aq):
            x = acc.setdefault((r.vehicle_id, label[r.di]), _empty())
            x["alerts"] += r.n
            x["by_type"][r.type] = x["by_type"].get(r.type, 0) + r.n
    return {k: v for k, v in acc.items() if k[0] in vehicles}, vehicles


def _merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    out = _empty()
    for x in parts:
        for k in (
            "distance_m",
            "trip_m",
            "fixes",
            "driving_s",
            "trips",
            "stops",
            "stop_s",
            "energy_m",
            "alerts",
        ):
            out[k] += x[k]
        if x["energy"] is not None:
            out["energy"] = (out["energy"] or 0.0) + x["energy"]
        if x["max_speed"] is not None:
            out["max_speed"] = max(out["max_speed"] or 0.0, x["max_speed"])
        for t, n in x["by_type"].items():
            out["by_type"][t] = out["by_type"].get(t, 0) + n
    return out


def fleet_report(engine: Engine, tenant_id: int, p: dict[str, Any]) -> dict[str, Any]:
    """One row per vehicle of the tenant, one per day for the fleet, and the totals."""
    acc, vehicles = _collect(engine, tenant_id, p, None)
    span = p["end"] - p["start"]
    by_vehicle: dict[int, list[dict[str, Any]]] = {}
    by_day: dict[str, list[dict[str, Any]]] = {}
    for (vid, day), x in acc.items():  # one pass: 10,000 vehicles must not cost 10,000 scans
        by_vehicle.setdefault(vid, []).append(x)
        by_day.setdefault(day, []).append(x)
    rows = []
    for vid, v in vehicles.items():
        parts = by_vehicle.get(vid, [])
        rows.append({"vehicle": v.wire_id, "vin": v.vin, "brand": v.brand, **_finish(_merge(parts), span)})
    days = [
        {"day": d, **_finish(_merge(by_day.get(d, [])), DAY_S * max(len(vehicles), 1))} for d in p["days"]
    ]
    totals = _finish(_merge(list(acc.values())), span * max(len(vehicles), 1))
    return {
        "report": "fleet",
        "period": _public(p),
        "vehicles": rows,
        "days": days,
        "totals": {"vehicles": len(vehicles), **totals},
    }


def vehicle_report(engine: Engine, tenant_id: int, vehicle_pk: int, p: dict[str, Any]) -> dict[str, Any]:
    """One row per day of the period for one vehicle, and the totals."""
    acc, vehicles = _collect(engine, tenant_id, p, vehicle_pk)
    v = vehicles[vehicle_pk]
    days = [
        {"day": d, **_finish(_merge([x for (_, day), x in acc.items() if day == d]), DAY_S)}
        for d in p["days"]
    ]
    totals = _finish(_merge(list(acc.values())), p["end"] - p["start"])
    return {
        "report": "vehicle",
        "vehicle": v.wire_id,
        "vin": v.vin,
        "brand": v.brand,
        "period": _public(p),
        "days": days,
        "totals": totals,
    }


def _public(p: dict[str, Any]) -> dict[str, Any]:
    return {k: p[k] for k in ("kind", "label", "start", "end")}


# ---- CSV ---------------------------------------------------------------------------------------
def to_csv(report: dict[str, Any]) -> str:
    """Fleet: one line per vehicle then the total; vehicle: one line per day then the total."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    key = "vehicle" if report["report"] == "fleet" else "day"
    rows = report["vehicles"] if report["report"] == "fleet" else report["days"]
    w.writerow([key, *COLUMNS])
    for r in rows:
        w.writerow([_cell(r[key]), *(_cell(r[c]) for c in COLUMNS)])
    w.writerow(["total", *(_cell(report["totals"][c]) for c in COLUMNS)])
    return out.getvalue()


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not _is_number(text) else text  # no formulas


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# ---- HTML --------------------------------------------------------------------------------------
def bar_chart(title: str, labels: list[str], values: list[float], unit: str) -> str:
    """A bar chart as inline SVG (printable, no script)."""
    width, height, left, bottom = 640, 220, 48, 40
    top = max(values, default=0.0) or 1.0
    n = max(len(values), 1)
    step = (width - left - 10) / n
    bars = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = (height - bottom - 20) * value / top
        x = left + i * step + step * 0.15
        y = height - bottom - h
        bars.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" fill="#2b6cb0">'
            f"<title>{html.escape(label)}: {value:g} {html.escape(unit)}</title></rect>"
            f'<text x="{x + step * 0.35:.1f}" y="{y - 4:.1f}" font-size="10" text-anchor="middle">{value:g}</text>'
            f'<text x="{x + step * 0.35:.1f}" y="{height - bottom + 14}" font-size="10" text-anchor="middle">{html.escape(label[-10:])}</text>'
        )
    return (
        f"<figure><figcaption>{html.escape(title)} ({html.escape(unit)})</figcaption>"
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{html.escape(title)}" viewBox="0 0 {width} {height}" width="100%">'
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" stroke="#444"/>'
        + "".join(bars)
        + "</svg></figure>"
    )


HEADINGS = {
    "distance_km": "Distance (km)",
    "driving_s": "Driving (h)",
    "trips": "Trips",
    "stops": "Stops",
    "stop_s": "Stopped (h)",
    "energy_kwh": "Energy (kWh)",
    "kwh_per_100km": "kWh/100 km",
    "max_speed_kmh": "Max speed (km/h)",
    "utilisation": "Utilisation",
    "alerts": "Alerts",
    "fixes": "Fixes",
    "trip_distance_km": "In trips (km)",
}


def _fmt(col: str, value: Any) -> str:
    if value is None:
        return "-"
    if col in ("driving_s", "stop_s"):
        return f"{value / 3600:.2f}"
    if col == "utilisation":
        return f"{value * 100:.1f} %"
    return html.escape(f"{value:g}" if isinstance(value, float) else str(value))


def to_html(report: dict[str, Any], tenant: str) -> str:
    key = "vehicle" if report["report"] == "fleet" else "day"
    rows = report["vehicles"] if report["report"] == "fleet" else report["days"]
    head = "".join(f"<th>{html.escape(HEADINGS[c])}</th>" for c in COLUMNS)
    body = "".join(
        f"<tr><th scope=row>{html.escape(str(r[key]))}</th>"
        + "".join(f"<td>{_fmt(c, r[c])}</td>" for c in COLUMNS)
        + "</tr>"
        for r in rows
    )
    body += (
        "<tr class=total><th scope=row>Total</th>"
        + "".join(f"<td>{_fmt(c, report['totals'][c])}</td>" for c in COLUMNS)
        + "</tr>"
    )
    chart_rows = (
        report["days"] if report["period"]["kind"] == "week" or report["report"] == "vehicle" else rows
    )
    labels = [str(r["day"] if "day" in r else r["vehicle"]) for r in chart_rows]
    charts = bar_chart("Distance", labels, [r["distance_km"] for r in chart_rows], "km") + bar_chart(
        "Driving time", labels, [round(r["driving_s"] / 3600, 2) for r in chart_rows], "h"
    )
    title = (
        f"Fleet report {report['period']['label']}"
        if report["report"] == "fleet"
        else f"Vehicle {report['vehicle']} — {report['period']['label']}"
    )
    template = Template(
        resources.files("anycar.fleet").joinpath("data/report.html").read_text(encoding="utf-8")
    )
    return template.substitute(
        title=html.escape(title),
        tenant=html.escape(tenant),
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        key=html.escape(key.capitalize()),
        head=head,
        body=body,
        charts=charts,
    )
