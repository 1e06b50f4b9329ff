"""The console's logistics routes: the board in columns, the plan on the map, moving an order to
another route (re-checked by the planner's checks), outcomes with a reason, the day's report
and the proofs of delivery.

Same rules as ``anycar.logistics.api``: token first, then the role's right, every query on the
caller's tenant only (there is no tenant parameter); filters are checked against a closed list
or bound as SQL parameters, never spliced into SQL; a bad one is a one-line 400.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import secrets
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from anycar.fleet.registry import User
from anycar.logistics import board, dayreport, execution
from anycar.logistics.api import RIGHTS, _json, _Refused
from anycar.logistics.legs import plan_legs
from anycar.logistics.matrix import haversine_m
from anycar.logistics.move import MoveError, move_order
from anycar.logistics.swaproute import settle_held, settle_lock, station_skew

MAX_FILTER = 64
MAX_PROOFS = 200  # the viewer shows the newest; GET /api/pods?order= reads any one


def _guard(engine: Engine) -> Any:
    """The base routes' own user check (token, then the right), reused as is."""
    from anycar.fleet.registry import user_for_token

    def user_of(request: Request, right: str) -> User:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        user = user_for_token(engine, token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise _Refused(
                401, "unauthenticated", "Authorization: Bearer TOKEN needed (anycar fleet user add)"
            )
        if right not in RIGHTS.get(user.role, frozenset()):
            raise _Refused(403, "forbidden", f"role {user.role} has no {right!r} right")
        return user

    return user_of


def proof_checks(row: dict[str, Any], stop: dict[str, Any] | None) -> dict[str, Any]:
    """What a dispatcher reads beside a POD record: the PIN's verdict (right, wrong, none
    entered, none asked), metres from the stop, the weight the order expected, who signed."""
    rec = row.get("record") or {}
    digest = (rec.get("pin") or {}).get("digest")
    pin = stop.get("pin") if stop else None
    if digest is None:
        verdict = "none entered" if pin else "not asked"
    elif pin is None:
        verdict = "entered, none asked"
    else:
        verdict = (
            "right" if secrets.compare_digest(digest, execution.pin_digest(row["order"], pin)) else "wrong"
        )
    pos = rec.get("position")
    away = (
        round(haversine_m((float(pos["lat"]), float(pos["lon"])), (stop["lat"], stop["lon"])))
        if pos and stop
        else None
    )
    if row.get("key_id") == "phone":
        signed = "the driver's phone page (not signed by a hub)"
    elif row.get("verified"):
        signed = f"hub key {row['key_id']} (pinned for the vehicle, signature checked)"
    else:
        signed = f"hub key {row.get('key_id')}: not trusted"
    expected = None
    if stop:
        expected = stop["weight_kg"] if stop["kind"] == "drop" else -stop["weight_kg"]
    return {"pin": verdict, "distance_m": away, "expected_kg": expected, "signed_by": signed}


def _answer(exc: _Refused) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": exc.status, "reason": exc.reason, "message": exc.message}}, status_code=exc.status
    )


def console_logistics_routes(
    engine: Engine,
    clock: Callable[[], float] = time.time,
    csms: Callable[[], Any] | None = None,
    wake: Callable[[], Any] | None = None,
) -> list[Route]:
    """The routes, to be mounted in the fleet API app beside ``logistics_routes``. ``clock`` is
    their "now" (epoch seconds): when an outcome is stamped, the report's default day, the time a
    live move is timed from; the wall clock, or a test's or simulation's day (``FleetConfig.clock``).
    ``csms``: the swap room's CSMS when the server runs one (a live move that changes a swap stop
    changes its reservation at once). ``wake``: the command sender's, so the changed routes a
    live move pushes go at once (without it the sender's poll sends them)."""
    user_of = _guard(engine)

    async def guarded(request: Request, right: str, work: Any) -> JSONResponse:
        try:
            user = await asyncio.to_thread(user_of, request, right)
            status, result = await work(user)
        except _Refused as exc:
            return _answer(exc)
        except MoveError as exc:
            reason = "not_found" if exc.status == 404 else "bad_parameter"
            return _answer(_Refused(exc.status, reason, str(exc)))
        return JSONResponse(result, status_code=status)

    def text(request: Request, name: str) -> str | None:
        value = request.query_params.get(name)
        if value is not None and (len(value) > MAX_FILTER or not value.isprintable()):
            raise _Refused(400, "bad_parameter", f"{name}: at most {MAX_FILTER} printable characters")
        return value or None

    async def get_board(request: Request) -> JSONResponse:
        async def work(user: User) -> tuple[int, Any]:
            column = text(request, "column")
            if column is not None and column not in dayreport.COLUMNS:
                raise _Refused(400, "bad_parameter", f"column: one of {', '.join(dayreport.COLUMNS)}")
            q = text(request, "q")

            def run() -> dict[str, Any]:
                plan = dayreport.current_plan(engine, user.tenant_id)
                return dayreport.board_view(engine, user.tenant_id, plan, column, q)

            return 200, await asyncio.to_thread(run)

        return await guarded(request, "read", work)

    async def get_plan(request: Request) -> JSONResponse:
        async def work(user: User) -> tuple[int, Any]:
            found = await asyncio.to_thread(dayreport.current_plan, engine, user.tenant_id)
            if found is None:
                raise _Refused(404, "not_found", "no plan yet (POST /api/plans)")
            # each route's legs along the streets (anycar.roads), for the map
            found["legs"] = await asyncio.to_thread(plan_legs, found.get("plan") or {})
            return 200, found

        return await guarded(request, "read", work)

    async def move(request: Request) -> JSONResponse:
        async def work(user: User) -> tuple[int, Any]:
            raw = str(request.path_params["plan"])
            if not raw.isdigit() or len(raw) > 12:
                raise _Refused(404, "not_found", "no such plan")
            body = await _json(request)
            if not isinstance(body, dict):
                raise _Refused(400, "bad_parameter", 'body: {"order": ID, "vehicle": WIRE_ID}')
            order, vehicle = body.get("order"), body.get("vehicle")
            for name, value in (("order", order), ("vehicle", vehicle)):
                if not isinstance(value, str) or not 0 < len(value) <= MAX_FILTER:
                    raise _Refused(400, "bad_parameter", f"{name}: a string of 1-{MAX_FILTER} characters")
            now = clock()
            room = csms() if csms is not None else None
            skew = station_skew(room, now)  # a held reservation's expiry is on the CSMS's clock
            async with settle_lock(room) if room is not None else contextlib.nullcontext():
                # the plan's read, write and settle in one piece (the CSMS's settler writes it too)
                result = await asyncio.to_thread(
                    lambda: move_order(
                        engine, user.tenant_id, int(raw), str(order), str(vehicle), now=now, skew=skew
                    )
                )
                live = result.plan is not None and result.plan.get("status") == "accepted"
                if result.accepted and live and room is not None:  # the plan in force: reservations now
                    done = await settle_held(room, engine, user.tenant_id, int(raw), now=now)
                    if done:
                        result.swap += done
                        result.plan = await asyncio.to_thread(board.plan, engine, user.tenant_id, int(raw))
                if result.accepted and live and result.plan is not None:
                    # the plan in force: each vehicle whose route changed gets it, as a signed
                    # route command (the next version, which replaces the one its hub has)
                    result.pushed = await asyncio.to_thread(
                        execution.push_routes, engine, user.tenant_id, result.plan, changed_only=True
                    )
            if result.pushed and wake is not None:
                wake()
            return (200 if result.accepted else 409), result.to_json()

        return await guarded(request, "dispatch", work)

    async def outcome(request: Request) -> JSONResponse:
        async def work(user: User) -> tuple[int, Any]:
            ref = str(request.path_params["ref"])[:MAX_FILTER]
            body = await _json(request)
            status = body.get("status") if isinstance(body, dict) else None
            if status not in ("delivered", "failed"):
                raise _Refused(400, "bad_parameter", "status: delivered or failed")
            reason = body.get("reason", "")
            if not isinstance(reason, str) or len(reason) > 200:
                raise _Refused(400, "bad_parameter", "reason: a text of at most 200 characters")
            if status == "failed" and not reason.strip():
                raise _Refused(400, "bad_parameter", "reason: say why the delivery failed")
            done = await asyncio.to_thread(
                dayreport.record_outcome,
                engine,
                user.tenant_id,
                ref,
                status,
                reason.strip(),
                user.name,
                now=clock(),
            )
            if not done:
                raise _Refused(404, "not_found", "no such order")
            return 200, {"id": ref, "status": status, "reason": reason.strip()}

        return await guarded(request, "outcome", work)

    async def report(request: Request) -> JSONResponse:
        async def work(user: User) -> tuple[int, Any]:
            raw = text(request, "day") or dt.datetime.fromtimestamp(clock(), dt.UTC).date().isoformat()
            try:
                day = dt.date.fromisoformat(raw)
            except ValueError:
                raise _Refused(400, "bad_parameter", f"day: {raw[:20]!r} is not YYYY-MM-DD") from None
            return 200, await asyncio.to_thread(dayreport.day_report, engine, user.tenant_id, day)

        return await guarded(request, "read", work)

    async def proofs(request: Request) -> JSONResponse:
        async def work(user: User) -> tuple[int, Any]:
            # the hubs' signed records as judged by the fleet (anycar.logistics.execution), newest
            # first, each with what the viewer shows beside it: the PIN's verdict, how far from the
            # stop, the weight the order expected, who signed
            def run() -> list[dict[str, Any]]:
                rows = execution.pod_rows(engine, user.tenant_id)[::-1][:MAX_PROOFS]
                stops = execution.delivery_stops(engine, user.tenant_id, [r["order"] for r in rows])
                return [{**r, "checks": proof_checks(r, stops.get(r["order"]))} for r in rows]

            return 200, {"available": True, "proofs": await asyncio.to_thread(run)}

        return await guarded(request, "read", work)

    return [
        Route("/api/logistics/board", get_board, methods=["GET"]),
        Route("/api/logistics/plan", get_plan, methods=["GET"]),
        Route("/api/logistics/report", report, methods=["GET"]),
        Route("/api/logistics/proofs", proofs, methods=["GET"]),
        Route("/api/logistics/orders/{ref}/outcome", outcome, methods=["POST"]),
        Route("/api/plans/{plan}/move", move, methods=["POST"]),
    ]
