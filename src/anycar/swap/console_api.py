"""The console's swap routes: the tenant's stations (for the map and the station page), a
station's site, and a pack's battery passport.

Every station belongs to its operator tenant (``swap_stations.tenant_id``); a caller sees only
its own. A pack has no tenant of its own: its passport is shown to a tenant whose station or
vehicle it is in or has been in, and the events at other operators' stations or vehicles keep
their time, SoC and SoH but not whose they were. Grid power is not metered by the CSMS (it keeps
each slot's SoC from MeterValues): the station page shows the grid limit and the draw the
layout implies (charging packs x charger power, capped at the limit), labelled as an estimate.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.engine import Engine
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from anycar.fleet import db as fleet_db
from anycar.fleet.registry import User, user_for_token
from anycar.logistics.settings import service_area
from anycar.swap import tables as t
from anycar.swap.csms import SwapError
from anycar.swap.policy import LayoutError, load_layout

READ = frozenset({"owner", "dispatcher", "driver", "viewer"})
MANAGE = frozenset({"owner", "dispatcher"})
MAX_BODY = 4096


class _Refused(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


def _day_start(now: float) -> float:
    """00:00 UTC of the day holding ``now`` (the room's clock: FleetConfig.clock)."""
    today = dt.datetime.fromtimestamp(now, dt.UTC).date()
    return dt.datetime.combine(today, dt.time(), tzinfo=dt.UTC).timestamp()


def _layout(name: str) -> Any:
    try:
        return load_layout(name)
    except (LayoutError, OSError):
        return None


def stations(
    engine: Engine, tenant_id: int, station: str | None = None, *, now: float | None = None
) -> list[dict[str, Any]]:
    """The tenant's stations with their site, slot counts, ready packs, queue and swaps today
    (the day of ``now``, the room's clock; the wall clock's when not given)."""
    s, site, p, sw, r = t.stations.c, t.sites.c, t.packs.c, t.swaps.c, t.reservations.c
    now = time.time() if now is None else now
    since = _day_start(now)
    query = (
        select(t.stations, site.lat, site.lon, site.name)
        .select_from(t.stations.outerjoin(t.sites, site.station_id == s.id))
        .where(s.tenant_id == tenant_id)
        .order_by(s.id)
    )
    if station is not None:
        query = query.where(s.id == station)
    out = []
    with engine.connect() as conn:
        for row in conn.execute(query).mappings().all():
            sid = row["id"]
            packs = {
                str(state): int(n)
                for state, n in conn.execute(
                    select(p.state, func.count()).where(p.station_id == sid).group_by(p.state)
                ).all()
            }
            slots = int(conn.execute(select(func.count()).where(t.slots.c.station_id == sid)).scalar() or 0)
            under_way = int(
                conn.execute(
                    select(func.count()).where(sw.station_id == sid, sw.state == "requested")
                ).scalar()
                or 0
            )
            reserved = int(
                conn.execute(
                    select(func.count()).where(
                        r.station_id == sid,
                        r.status.in_(["queued", "pending", "active"]),
                        r.expires > now,
                    )
                ).scalar()
                or 0
            )
            done = int(
                conn.execute(
                    select(func.count()).where(
                        sw.station_id == sid, sw.state == "done", sw.requested >= since
                    )
                ).scalar()
                or 0
            )
            layout = _layout(row["layout"])
            charging = int(packs.get("charging", 0))
            draw = None
            if layout is not None:
                draw = round(min(row["grid_limit_kw"], min(charging, layout.chargers) * layout.charger_kw), 2)
            out.append(
                {
                    "id": sid,
                    "name": row["name"] or sid,
                    "lat": row["lat"],
                    "lon": row["lon"],
                    "online": bool(row["online"]),
                    "last_seen": row["last_seen"],
                    "layout": row["layout"],
                    "vendor": row["vendor"],
                    "model": row["model"],
                    "firmware": row["firmware"],
                    "firmware_status": row["firmware_status"],  # FirmwareStatusNotification's last word
                    "boot_reason": row["boot_reason"],  # PowerUp, RemoteReset, FirmwareUpdate, ...
                    "clock_skew_s": row["clock_skew_s"],
                    "slots": slots,
                    "ready": int(packs.get("ready", 0)),
                    "charging": charging,
                    "faulty": int(packs.get("faulty", 0)),
                    "queue": under_way + reserved,
                    "swaps_under_way": under_way,
                    "reservations": reserved,
                    "swaps_today": done,
                    "grid_limit_kw": row["grid_limit_kw"],
                    "grid_draw_kw_estimate": draw,
                    "chargers": layout.chargers if layout else None,
                    "charger_kw": layout.charger_kw if layout else None,
                }
            )
    return out


def station_detail(
    engine: Engine, tenant_id: int, station: str, *, now: float | None = None
) -> dict[str, Any] | None:
    now = time.time() if now is None else now
    found = stations(engine, tenant_id, station, now=now)
    if not found:
        return None
    doc = found[0]
    sl, p, sw, v = t.slots.c, t.packs.c, t.swaps.c, fleet_db.vehicles.c
    with engine.connect() as conn:
        slot_rows = conn.execute(
            select(t.slots).where(sl.station_id == station).order_by(sl.evse_id)
        ).mappings()
        packs = {
            r["evse_id"]: dict(r)
            for r in conn.execute(select(t.packs).where(p.station_id == station)).mappings().all()
        }
        doc["slot_list"] = [
            {
                "evse": r["evse_id"],
                "status": r["status"],
                "pack": packs.get(r["evse_id"], {}).get("serial"),
                "soc": packs.get(r["evse_id"], {}).get("soc"),
                "soh": packs.get(r["evse_id"], {}).get("soh"),
                "state": packs.get(r["evse_id"], {}).get("state"),
            }
            for r in slot_rows
        ]
        swaps = conn.execute(
            select(
                sw.id,
                sw.state,
                sw.requested,
                sw.finished,
                sw.pack_old,
                sw.pack_new,
                sw.soc_old,
                sw.soc_new,
                sw.energy_kwh,
                sw.amount,
                sw.currency,
                sw.reason,
                v.wire_id,
            )
            .select_from(t.swaps.outerjoin(fleet_db.vehicles, v.id == sw.vehicle_id))
            .where(sw.station_id == station, sw.requested >= _day_start(now))
            .order_by(sw.requested.desc())
            .limit(200)
        ).mappings()
        doc["swaps"] = [
            {
                **{k: r[k] for k in r if k != "wire_id"},
                "vehicle": r["wire_id"],
                "duration_s": round(r["finished"] - r["requested"], 1) if r["finished"] else None,
            }
            for r in swaps
        ]
        doc["reservation_list"] = reservation_list(conn, station, now=now)
    return doc


OPEN = ("queued", "pending", "active", "cancel_queued")


def reservation_list(conn: Any, station: str, *, now: float | None = None) -> list[dict[str, Any]]:
    """The station's reservations still open, and those of today that ended: each with its state
    (``queued`` = held by the CSMS while the station is offline, sent when it connects), the
    station's answer, when it was sent and why it ended as it did."""
    r, v = t.reservations.c, fleet_db.vehicles.c
    since = _day_start(time.time() if now is None else now)
    rows = conn.execute(
        select(
            r.id, r.status, r.answer, r.expires, r.created, r.sent, r.updated, r.detail, r.evse_id, v.wire_id
        )
        .select_from(t.reservations.outerjoin(fleet_db.vehicles, v.id == r.vehicle_id))
        .where(r.station_id == station, or_(r.status.in_(OPEN), r.created >= since))
        .order_by(r.created.desc())
        .limit(200)
    ).mappings()
    return [
        {
            **{k: row[k] for k in row if k != "wire_id"},
            "vehicle": row["wire_id"],
            "open": row["status"] in OPEN,
        }
        for row in rows
    ]


def passport(engine: Engine, tenant_id: int, serial: str) -> dict[str, Any] | None:
    """The pack's passport if it is or was at one of the tenant's stations or vehicles."""
    p, h, s, v = t.packs.c, t.pack_history.c, t.stations.c, fleet_db.vehicles.c
    with engine.connect() as conn:
        pack = conn.execute(select(t.packs).where(p.serial == serial)).mappings().first()
        if pack is None:
            return None
        mine_s = set(conn.execute(select(s.id).where(s.tenant_id == tenant_id)).scalars())
        mine_v = {
            int(i): str(w)
            for i, w in conn.execute(select(v.id, v.wire_id).where(v.tenant_id == tenant_id)).all()
        }
        events = conn.execute(
            select(t.pack_history).where(h.serial == serial).order_by(h.ts, h.id)
        ).mappings()
        history = [dict(e) for e in events]
    touched = (
        pack["station_id"] in mine_s
        or pack["vehicle_id"] in mine_v
        or any(e["station_id"] in mine_s or e["vehicle_id"] in mine_v for e in history)
    )
    if not touched:
        return None
    out_history = []
    for e in history:
        item = {
            k: e[k] for k in ("ts", "event", "evse_id", "soc", "soh", "swap_id", "detail") if e[k] is not None
        }
        if e["station_id"] is not None:
            item["station"] = e["station_id"] if e["station_id"] in mine_s else "another operator's station"
        if e["vehicle_id"] is not None:
            item["vehicle"] = mine_v.get(e["vehicle_id"], "another operator's vehicle")
        out_history.append(item)
    return {
        "serial": pack["serial"],
        "chemistry": pack["chemistry"],
        "capacity_kwh": pack["capacity_kwh"],
        "soh": pack["soh"],
        "soc": pack["soc"],
        "cycles": pack["cycles"],
        "state": pack["state"],
        "station": pack["station_id"] if pack["station_id"] in mine_s else None,
        "evse": pack["evse_id"] if pack["station_id"] in mine_s else None,
        "vehicle": mine_v.get(pack["vehicle_id"]) if pack["vehicle_id"] is not None else None,
        "stations_seen": len({e["station_id"] for e in history if e["station_id"]}),
        "vehicles_seen": len({e["vehicle_id"] for e in history if e["vehicle_id"]}),
        "history": out_history,
    }


def set_site(engine: Engine, tenant_id: int, station: str, lat: float, lon: float, name: str) -> bool:
    s, site = t.stations.c, t.sites.c
    with engine.begin() as conn:
        if conn.execute(select(s.id).where(and_(s.id == station, s.tenant_id == tenant_id))).first() is None:
            return False
        values = {"lat": lat, "lon": lon, "name": name, "updated": time.time()}
        if conn.execute(update(t.sites).where(site.station_id == station).values(**values)).rowcount == 0:
            conn.execute(insert(t.sites).values(station_id=station, **values))
    return True


MAX_MINUTES = 240.0  # the longest reservation the console may make (a dispatcher's day plan)


def vehicle_token(engine: Engine, tenant_id: int, wire_id: str) -> str | None:
    """The swap idToken of one of the tenant's vehicles (its newest not revoked), or None."""
    v, k = fleet_db.vehicles.c, t.id_tokens.c
    with engine.connect() as conn:
        return conn.execute(
            select(k.token)
            .select_from(t.id_tokens.join(fleet_db.vehicles, v.id == k.vehicle_id))
            .where(v.wire_id == wire_id, v.tenant_id == tenant_id, k.revoked.is_(False))
            .order_by(k.created.desc())
            .limit(1)
        ).scalar()


def swap_console_routes(
    engine: Engine, clock: Callable[[], float] = time.time, csms: Any = None
) -> list[Route]:
    """The routes, mounted in the fleet API app beside the other rooms'; "today" is ``clock``'s
    (the fleet's FleetConfig.clock, the CSMS's too). With ``csms`` (the running CSMS), also the
    routes that make and cancel a reservation at a station."""

    def user_of(request: Request, rights: frozenset[str]) -> User:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        user = user_for_token(engine, token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise _Refused(
                401, "unauthenticated", "Authorization: Bearer TOKEN needed (anycar fleet user add)"
            )
        if user.role not in rights:
            raise _Refused(403, "forbidden", f"role {user.role} may not do this")
        return user

    async def guarded(request: Request, rights: frozenset[str], work: Any) -> JSONResponse:
        try:
            user = await asyncio.to_thread(user_of, request, rights)
            status, result = await work(user)
        except _Refused as exc:
            body = {"code": exc.status, "reason": exc.reason, "message": exc.message}
            return JSONResponse({"error": body}, status_code=exc.status)
        return JSONResponse(result, status_code=status)

    def ident(request: Request, name: str) -> str:
        raw = str(request.path_params[name])
        if not 0 < len(raw) <= 50 or not raw.isprintable():
            raise _Refused(404, "not_found", f"no such {name}")
        return raw

    async def list_stations(request: Request) -> JSONResponse:
        async def work(user: User) -> tuple[int, Any]:
            return 200, await asyncio.to_thread(lambda: stations(engine, user.tenant_id, now=clock()))

        return await guarded(request, READ, work)

    async def get_station(request: Request) -> JSONResponse:
        async def work(user: User) -> tuple[int, Any]:
            name = ident(request, "station")
            found = await asyncio.to_thread(lambda: station_detail(engine, user.tenant_id, name, now=clock()))
            if found is None:
                raise _Refused(404, "not_found", "no such station")
            return 200, found

        return await guarded(request, READ, work)

    async def put_site(request: Request) -> JSONResponse:
        async def work(user: User) -> tuple[int, Any]:
            station = ident(request, "station")
            body = await body_of(request, '{"lat": ..., "lon": ..., "name": ...}')
            lat, lon, name = body.get("lat"), body.get("lon"), body.get("name", station)
            if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in (lat, lon)):
                raise _Refused(400, "bad_parameter", "lat, lon: numbers")
            lat, lon = float(lat), float(lon)  # type: ignore[arg-type]  # checked just above
            if not service_area().contains(lat, lon):
                raise _Refused(
                    400, "bad_parameter", f"lat, lon: outside the map ({service_area().describe()})"
                )
            if not isinstance(name, str) or not 0 < len(name) <= 80 or not name.isprintable():
                raise _Refused(400, "bad_parameter", "name: 1-80 printable characters")
            done = await asyncio.to_thread(set_site, engine, user.tenant_id, station, lat, lon, name)
            if not done:
                raise _Refused(404, "not_found", "no such station")
            return 200, {"id": station, "lat": lat, "lon": lon, "name": name}

        return await guarded(request, MANAGE, work)

    async def get_pack(request: Request) -> JSONResponse:
        async def work(user: User) -> tuple[int, Any]:
            found = await asyncio.to_thread(passport, engine, user.tenant_id, ident(request, "serial"))
            if found is None:
                raise _Refused(404, "not_found", "no such pack")
            return 200, found

        return await guarded(request, READ, work)

    async def body_of(request: Request, shape: str = '{"vehicle": ..., "minutes": ...}') -> dict[str, Any]:
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_BODY:
                raise _Refused(413, "too_large", f"body over {MAX_BODY} bytes")
        try:
            body = json.loads(raw or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise _Refused(400, "bad_json", "body: not JSON") from None
        if not isinstance(body, dict):
            raise _Refused(400, "bad_parameter", f"body: {shape}")
        return body

    async def own_station(user: User, station: str) -> None:
        if not await asyncio.to_thread(lambda: stations(engine, user.tenant_id, station, now=clock())):
            raise _Refused(404, "not_found", "no such station")

    async def make_reservation(request: Request) -> JSONResponse:
        """Reserve a ready pack at the station for one of the tenant's vehicles (ReserveNow;
        held by the CSMS while the station is offline)."""

        async def work(user: User) -> tuple[int, Any]:
            station = ident(request, "station")
            body = await body_of(request)
            vehicle, minutes = body.get("vehicle"), body.get("minutes", 30)
            if not isinstance(vehicle, str) or not 0 < len(vehicle) <= 64:
                raise _Refused(400, "bad_parameter", "vehicle: the vehicle's id")
            if (
                isinstance(minutes, bool)
                or not isinstance(minutes, int | float)
                or not 0 < minutes <= MAX_MINUTES
            ):
                raise _Refused(400, "bad_parameter", f"minutes: a number in (0, {MAX_MINUTES:g}]")
            await own_station(user, station)
            token = await asyncio.to_thread(vehicle_token, engine, user.tenant_id, vehicle)
            if token is None:
                raise _Refused(
                    404, "not_found", f"no vehicle {vehicle[:64]} with a swap idToken in this fleet"
                )
            try:
                rid, status = await csms.reserve(station, token, minutes=float(minutes))
            except SwapError as exc:
                raise _Refused(409, exc.reason, str(exc)) from None
            return 201, {"id": rid, "station": station, "vehicle": vehicle, "status": status}

        return await guarded(request, MANAGE, work)

    async def cancel_reservation(request: Request) -> JSONResponse:
        """Cancel one of the station's reservations (CancelReservation; withdrawn if the CSMS
        still holds it, held if the station is offline)."""

        async def work(user: User) -> tuple[int, Any]:
            station = ident(request, "station")
            raw = str(request.path_params["reservation"])
            if not raw.isdigit() or len(raw) > 12:
                raise _Refused(404, "not_found", "no such reservation")
            await own_station(user, station)
            rid = int(raw)
            with engine.connect() as conn:
                r = t.reservations.c
                found = conn.execute(select(r.id).where(r.id == rid, r.station_id == station)).scalar()
            if found is None:
                raise _Refused(404, "not_found", "no such reservation at this station")
            try:
                status = await csms.cancel_reservation(station, rid)
            except SwapError as exc:
                raise _Refused(409, exc.reason, str(exc)) from None
            return 200, {"id": rid, "station": station, "status": status}

        return await guarded(request, MANAGE, work)

    booking = (
        [
            Route("/api/stations/{station}/reservations", make_reservation, methods=["POST"]),
            Route(
                "/api/stations/{station}/reservations/{reservation}", cancel_reservation, methods=["DELETE"]
            ),
        ]
        if csms is not None
        else []
    )
    return [
        *booking,
        Route("/api/stations", list_stations, methods=["GET"]),
        Route("/api/stations/{station}", get_station, methods=["GET"]),
        Route("/api/stations/{station}/site", put_site, methods=["PUT"]),
        Route("/api/packs/{serial}", get_pack, methods=["GET"]),
    ]
