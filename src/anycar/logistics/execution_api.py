"""delivery-exec routes: ``GET /api/deliveries`` (every order in execution with its live ETA),
``GET /api/vehicles/{vehicle}/route`` (the newest route pushed and its command's status),
``GET /api/pods`` (``?order=``: proofs of delivery, verified or not, with their exceptions).
Read right, the caller's tenant only, token checked before anything else."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.engine import Engine
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from anycar.fleet.registry import user_for_token
from anycar.logistics import execution
from anycar.logistics.api import RIGHTS


def execution_routes(engine: Engine) -> list[Route]:
    async def tenant_of(request: Request) -> int | JSONResponse:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        user = (
            await asyncio.to_thread(user_for_token, engine, token.strip())
            if scheme.lower() == "bearer"
            else None
        )
        if user is None:
            return _error(
                401, "unauthenticated", "Authorization: Bearer TOKEN needed (anycar fleet user add)"
            )
        if "read" not in RIGHTS.get(user.role, frozenset()):
            return _error(403, "forbidden", f"role {user.role} has no 'read' right")
        return int(user.tenant_id)

    async def deliveries(request: Request) -> JSONResponse:
        tenant = await tenant_of(request)
        if isinstance(tenant, JSONResponse):
            return tenant
        return JSONResponse(await asyncio.to_thread(execution.delivery_rows, engine, tenant))

    async def route(request: Request) -> JSONResponse:
        tenant = await tenant_of(request)
        if isinstance(tenant, JSONResponse):
            return tenant
        found = await asyncio.to_thread(
            execution.route_of, engine, tenant, str(request.path_params["vehicle"])
        )
        return (
            JSONResponse(found)
            if found is not None
            else _error(404, "not_found", "no route for this vehicle")
        )

    async def pod_list(request: Request) -> JSONResponse:
        tenant = await tenant_of(request)
        if isinstance(tenant, JSONResponse):
            return tenant
        order = request.query_params.get("order")
        rows: Any = await asyncio.to_thread(execution.pod_rows, engine, tenant, order)
        return JSONResponse(rows)

    return [
        Route("/api/deliveries", deliveries, methods=["GET"]),
        Route("/api/vehicles/{vehicle}/route", route, methods=["GET"]),
        Route("/api/pods", pod_list, methods=["GET"]),
    ]


def _error(status: int, reason: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": status, "reason": reason, "message": message}}, status_code=status)
