"""The logistics routes of the fleet API: the orders board, plans and re-dispatch.

Same rules as the rest of the fleet API: the token is checked before the body is read, the
role's right next; there is no tenant parameter, every call works on the caller's tenant. Rights:
``read`` for the board and plans (every role); owners and dispatchers ``dispatch`` (import, plan,
accept); drivers may also set an order's outcome (delivered, failed). Bodies are read with a size
bound; a bad one is a 400 with every error listed (``orders.csv:17: ...``), nothing stored.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from anycar.fleet.registry import User, user_for_token
from anycar.logistics import board, service
from anycar.logistics.csvimport import read_orders
from anycar.logistics.settings import service_area
from anycar.logistics.swaproute import station_skew

RIGHTS: dict[str, frozenset[str]] = {
    "owner": frozenset({"read", "dispatch", "outcome"}),
    "dispatcher": frozenset({"read", "dispatch", "outcome"}),
    "driver": frozenset({"read", "outcome"}),
    "viewer": frozenset({"read"}),
}
MAX_JSON = 8 * 1024 * 1024
MAX_CSV = 64 * 1024 * 1024


class _Refused(Exception):
    def __init__(self, status: int, reason: str, message: str, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.status, self.reason, self.message, self.errors = status, reason, message, errors


def _answer(exc: _Refused) -> JSONResponse:
    body: dict[str, Any] = {"code": exc.status, "reason": exc.reason, "message": exc.message}
    if exc.errors is not None:
        body["errors"] = exc.errors
    return JSONResponse({"error": body}, status_code=exc.status)


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _Refused(413, "too_large", f"body over {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _Refused(413, "too_large", f"body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _json(request: Request) -> Any:
    raw = await _body(request, MAX_JSON)
    try:
        return json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise _Refused(400, "bad_json", f"body: not JSON ({str(exc)[:80]})") from None


def logistics_routes(
    engine: Engine,
    wake: Any = None,
    csms: Callable[[], Any] | None = None,
    clock: Callable[[], float] = time.time,
) -> list[Route]:
    """The routes, to be mounted in the fleet API app. ``csms``: the swap room's CSMS when this
    process runs one (its reservations follow a plan's swap stops when the plan is accepted);
    ``clock``: the logistics room's "now"."""

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

    async def guarded(request: Request, right: str, work: Any) -> JSONResponse:
        try:
            user = await asyncio.to_thread(user_of, request, right)
            status, result = await work(user)
        except _Refused as exc:
            return _answer(exc)
        except board.BoardError as exc:
            return _answer(_Refused(400, "bad_orders", str(exc), exc.errors))
        except service.PlanningError as exc:
            return _answer(_Refused(400, "bad_parameter", str(exc)))
        return JSONResponse(result, status_code=status)

    async def list_orders(request: Request) -> JSONResponse:
        async def work(user: User) -> tuple[int, Any]:
            status = request.query_params.get("status")
            if status is not None and status not in board.STATUSES:
                raise _Refused(400, "bad_parameter", f"status: one of {', '.join(board.STATUSES)}")
            rows = await asyncio.to_thread(board.orders, engine, user.tenant_id, [status] if status else None)
            return 200, rows

        return await guarded(request, "read", work)

    async def add_orders(request: Request) -> JSONResponse:
        async def work(user: User) -> tuple[int, Any]:
            items = await _json(request)
            orders, where = board.parse_objects(items, service_area())
            count = await asyncio.to_thread(board.add_orders, engine, user.tenant_id, orders, where)
            return 201, {"imported": count}

        return await guarded(request, "dispatch", work)

    async def import_csv(request: Request) -> JSONResponse:
        async def work(user: User) -> tuple[int, Any]:
            raw = await _body(request, MAX_CSV)
            name = (request.query_params.get("name") or "upload.csv")[:64]
            result = await asyncio.to_thread(read_orders, io.BytesIO(raw), name, service_area())
            if not result.ok:
                raise board.BoardError(result.errors, result.error_count)
            where = {ref: f"{name}:{line}" for ref, line in result.lines.items()}
            count = await asyncio.to_thread(board.add_orders, engine, user.tenant_id, result.orders, where)
            return 201, {"imported": count}

        return await guarded(request, "dispatch", work)

    async def set_outcome(request: Request) -> JSONResponse:
        async def work(user: User) -> tuple[int, Any]:
            ref = str(request.path_params["ref"])[:64]
            body = await _json(request)
            status = body.get("status") if isinstance(body, dict) else None
            if status not in ("delivered", "failed", "cancelled", "open"):
                raise _Refused(400, "bad_parameter", "status: delivered, failed, cancelled or open")
            if status in ("cancelled", "open") and "dispatch" not in RIGHTS[user.role]:
                raise _Refused(403, "forbidden", f"role {user.role} may only report delivered or failed")
            done = await asyncio.to_thread(board.set_status, engine, user.tenant_id, ref, status)
            if not done:
                raise _Refused(404, "not_found", "no such order")
            return 200, {"id": ref, "status": status}

        return await guarded(request, "outcome", work)

    async def make_plan(request: Request) -> JSONResponse:
        async def work(user: User) -> tuple[int, Any]:
            options = await _json(request)
            return 201, await asyncio.to_thread(service.propose, engine, user.tenant_id, options)

        return await guarded(request, "dispatch", work)

    async def make_redispatch(request: Request) -> JSONResponse:
        async def work(user: User) -> tuple[int, Any]:
            options = await _json(request)
            now = clock()
            skew = station_skew(csms() if csms is not None else None, now)  # reservations: CSMS time
            return 201, await asyncio.to_thread(
                lambda: service.propose_redispatch(engine, user.tenant_id, options, clock=now, skew=skew)
            )

        return await guarded(request, "dispatch", work)

    def _plan_id(request: Request) -> int:
        raw = str(request.path_params["plan"])
        if not raw.isdigit() or len(raw) > 12:
            raise _Refused(404, "not_found", "no such plan")
        return int(raw)

    async def get_plan(request: Request) -> JSONResponse:
        async def work(user: User) -> tuple[int, Any]:
            found = await asyncio.to_thread(board.plan, engine, user.tenant_id, _plan_id(request))
            if found is None:
                raise _Refused(404, "not_found", "no such plan")
            return 200, found

        return await guarded(request, "read", work)

    async def accept_plan(request: Request) -> JSONResponse:
        async def work(user: User) -> tuple[int, Any]:
            # the plan in force, and each vehicle's route to its hub as a signed route command;
            # first the reservations its swap stops call for (a re-dispatch moved or re-timed one)
            plan_id = _plan_id(request)
            settled: list[str] = []
            room = csms() if csms is not None else None
            if room is not None:
                from anycar.logistics.swaproute import settle

                settled = await settle(room, engine, user.tenant_id, plan_id, now=clock())
            found = await asyncio.to_thread(service.accept, engine, user.tenant_id, plan_id)
            if found is None:
                raise _Refused(404, "not_found", "no such plan")
            if wake is not None:
                wake()
            if settled:
                found["swap"] = settled
            return 200, found

        return await guarded(request, "dispatch", work)

    return [
        Route("/api/orders", list_orders, methods=["GET"]),
        Route("/api/orders", add_orders, methods=["POST"]),
        Route("/api/orders/import", import_csv, methods=["POST"]),
        Route("/api/orders/{ref}/status", set_outcome, methods=["POST"]),
        Route("/api/plans", make_plan, methods=["POST"]),
        Route("/api/plans/redispatch", make_redispatch, methods=["POST"]),
        Route("/api/plans/{plan}", get_plan, methods=["GET"]),
        Route("/api/plans/{plan}/accept", accept_plan, methods=["POST"]),
    ]
