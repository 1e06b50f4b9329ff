"""The fleet's REST API (OpenAPI at ``/openapi.json``) and its live WebSocket feed.

Every route checks the caller's token first (``Authorization: Bearer TOKEN``), before it looks
at a parameter, then the role's rights as a set, and asks the queries for the caller's tenant
only: there is no parameter that names a tenant, so a user of tenant A cannot reach B's data by
any route. The WebSocket (``/api/live``) takes the token as its first text message (browsers
cannot set headers on a WebSocket), within 5 s, then streams the tenant's positions and events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from anycar import __version__
from anycar.fleet import api_commands, latest, queries
from anycar.fleet.domain_api import DOMAIN_SCHEMAS, domain_paths, domain_routes
from anycar.fleet.live import LiveFeed, Subscription
from anycar.fleet.params import ApiError, error, query_float, query_int
from anycar.fleet.registry import User, user_for_token
from anycar.fleet.store import Store

MAX_LIMIT = 1000
AUTH_TIMEOUT_S = 5.0
CLOSE_S = 5.0  # the longest a slow live client's 4408 close frame may wait for its socket


_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "code": {"type": "integer"},
                    "reason": {"type": "string"},
                    "message": {"type": "string"},
                },
            }
        },
    },
    "Position": {
        "type": "object",
        "properties": {
            "vehicle": {"type": "string"},
            "ts": {"type": "number"},
            "lat": {"type": "number"},
            "lon": {"type": "number"},
            "speed": {"type": ["number", "null"]},
            "heading": {"type": ["number", "null"]},
            "source": {"type": "string"},
        },
    },
    "Vehicle": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "vin": {"type": "string"},
            "brand": {"type": "string"},
            "kind": {"enum": ["hub", "tracker"]},
            "revoked": {"type": "boolean"},
            "online": {"type": ["boolean", "null"]},
            "last_seen": {"type": ["number", "null"]},
            "position": {"oneOf": [{"$ref": "#/components/schemas/Position"}, {"type": "null"}]},
        },
    },
    "Event": {
        "type": "object",
        "properties": {
            "vehicle": {"type": "string"},
            "ts": {"type": "number"},
            "type": {"type": "string"},
            "subject": {"type": ["string", "null"]},
            "message": {"type": ["string", "null"]},
            "data": {},
            "lat": {"type": ["number", "null"]},
            "lon": {"type": ["number", "null"]},
        },
    },
    "SignalValue": {
        "type": "object",
        "properties": {"path": {"type": "string"}, "ts": {"type": "number"}, "value": {}},
    },
    "LastValue": {
        "type": "object",
        "properties": {"vehicle": {"type": "string"}, "value": {"type": "number"}},
    },
    "DeadLetter": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "received": {"type": "number"},
            "topic": {"type": "string"},
            "reason": {"type": "string"},
            "detail": {"type": "string"},
            "vehicle": {"type": ["string", "null"]},
            "size": {"type": "integer"},
            "payload_hex": {"type": "string"},
        },
    },
}


def _op(summary: str, schema: dict[str, Any], params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    errors = {
        str(c): {
            "description": d,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for c, d in (
            (400, "a bad parameter"),
            (401, "no or unknown token"),
            (403, "the role lacks the right"),
            (404, "no such vehicle in the caller's tenant"),
        )
    }
    return {
        "get": {
            "summary": summary,
            "parameters": params or [],
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": schema}}},
                **errors,
            },
        }
    }


def _array(name: str) -> dict[str, Any]:
    return {"type": "array", "items": {"$ref": f"#/components/schemas/{name}"}}


_VEHICLE_PARAM = {
    "name": "vehicle",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "maxLength": 64},
}
_LIMIT = {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}}


def openapi() -> dict[str, Any]:
    doc = _openapi()
    doc["paths"].update(domain_paths())  # trips, stops, geofences, alerts, rules, webhooks, reports
    return doc


def _openapi() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "anycar fleet", "version": __version__},
        "paths": {
            "/api/vehicles": _op("the caller's tenant's vehicles", _array("Vehicle")),
            "/api/vehicles/{vehicle}": _op(
                "one vehicle", {"$ref": "#/components/schemas/Vehicle"}, [_VEHICLE_PARAM]
            ),
            "/api/positions/last": _op("the last position of every vehicle", _array("Position")),
            "/api/vehicles/{vehicle}/track": _op(
                "one vehicle's positions during a UTC day",
                _array("Position"),
                [
                    _VEHICLE_PARAM,
                    {
                        "name": "day",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string", "format": "date"},
                    },
                ],
            ),
            "/api/events": _op(
                "events, newest first",
                _array("Event"),
                [
                    {"name": "vehicle", "in": "query", "schema": {"type": "string", "maxLength": 64}},
                    {"name": "since", "in": "query", "schema": {"type": "number"}},
                    _LIMIT,
                ],
            ),
            "/api/vehicles/{vehicle}/signals": _op(
                "the newest value of each signal the vehicle sent in its last hour",
                _array("SignalValue"),
                [_VEHICLE_PARAM],
            ),
            "/api/signals/last": _op(
                "one signal's newest value for every vehicle (e.g. the battery's state of charge)",
                _array("LastValue"),
                [
                    {
                        "name": "path",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string", "maxLength": 256},
                    }
                ],
            ),
            "/api/dead-letters": _op(
                "messages the ingest refused, with the reason (owner, dispatcher)",
                _array("DeadLetter"),
                [_LIMIT],
            ),
        },
        "components": {
            "schemas": {**_SCHEMAS, **DOMAIN_SCHEMAS},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


async def _pump(ws: WebSocket, queue: Subscription) -> None:
    while (item := await queue.get()) is not None:
        await ws.send_text(json.dumps(item))


async def _until_disconnect(ws: WebSocket) -> None:
    """The client says nothing after its token: what it sends is read and let go, so that its
    disconnect (or the server's shutdown, which uvicorn hands over as one) ends the feed at once,
    not at the next item a send would fail on, nor by uvicorn cancelling a handler still waiting."""
    while (await ws.receive())["type"] != "websocket.disconnect":
        pass


async def _feed_until_behind(ws: WebSocket, queue: Subscription) -> None:
    """Send the client its items until it disconnects or falls behind the feed's bound; then
    stop at once (a send waiting for the client's socket is abandoned, no frame half written:
    uvicorn writes whole frames) and close with 4408, waiting at most ``CLOSE_S`` for the socket
    to take the close frame (a client that reads nothing at all just loses the connection)."""
    pump = asyncio.create_task(_pump(ws, queue), name="live-feed-send")
    behind = asyncio.create_task(queue.behind.wait(), name="live-feed-behind")
    gone = asyncio.create_task(_until_disconnect(ws), name="live-feed-disconnect")
    try:
        await asyncio.wait({pump, behind, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (pump, behind, gone):
            task.cancel()
        await asyncio.gather(pump, behind, gone, return_exceptions=True)
    if queue.behind.is_set():
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(code=4408), CLOSE_S)  # too slow: dropped from the feed
        return
    failed = None if pump.cancelled() else pump.exception()
    if failed is not None:
        raise failed


def fleet_api(
    store: Store,
    live: LiveFeed | None = None,
    wake: Callable[[], None] | None = None,
    *,
    webhooks_changed: Callable[[int], None] | None = None,
    domain_status: Callable[[], dict[str, Any]] | None = None,
) -> Starlette:
    engine = store.engine
    document = openapi()
    # fleet-commands: commands, the accessory inventory, firmware and rollouts
    document["paths"].update(api_commands.PATHS)
    document["components"]["schemas"].update(api_commands.SCHEMAS)

    def user_of(request: Request, right: str = "read") -> User:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        user = user_for_token(engine, token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise ApiError(
                401, "unauthenticated", "Authorization: Bearer TOKEN needed (anycar fleet user add)"
            )
        if right not in user.rights:
            raise ApiError(403, "forbidden", f"role {user.role} has no {right!r} right")
        return user

    async def run(request: Request, right: str, answer: Any) -> JSONResponse:
        try:
            user = user_of(request, right)
            result = await asyncio.to_thread(answer, user)
        except ApiError as exc:
            return error(exc.status, exc.reason, exc.message)
        return JSONResponse(result)

    def vehicle_name(request: Request) -> str:
        name = str(request.path_params["vehicle"])
        if len(name) > 64:
            raise ApiError(404, "not_found", "no such vehicle")
        return name

    async def list_vehicles(request: Request) -> JSONResponse:
        return await run(request, "read", lambda u: queries.vehicles(engine, u.tenant_id))

    async def one_vehicle(request: Request) -> JSONResponse:
        def answer(u: User) -> Any:
            found = queries.vehicle(engine, u.tenant_id, vehicle_name(request))
            if found is None:
                raise ApiError(404, "not_found", "no such vehicle")
            return found

        return await run(request, "read", answer)

    async def last_positions(request: Request) -> JSONResponse:
        return await run(request, "read", lambda u: queries.last_positions(engine, u.tenant_id))

    async def track(request: Request) -> JSONResponse:
        def answer(u: User) -> Any:
            day = request.query_params.get("day", "")
            try:
                start, end = queries.day_bounds(day)
            except ValueError:
                raise ApiError(400, "bad_parameter", f"day: {day[:40]!r} is not YYYY-MM-DD") from None
            found = queries.track(engine, u.tenant_id, vehicle_name(request), start, end)
            if found is None:
                raise ApiError(404, "not_found", "no such vehicle")
            return found

        return await run(request, "read", answer)

    async def events(request: Request) -> JSONResponse:
        def answer(u: User) -> Any:
            vehicle = request.query_params.get("vehicle")
            return queries.events(
                engine,
                u.tenant_id,
                wire_id=vehicle[:64] if vehicle else None,
                since=query_float(request, "since", 0.0),
                limit=query_int(request, "limit", 100, 1, MAX_LIMIT),
            )

        return await run(request, "read", answer)

    async def dead_letters(request: Request) -> JSONResponse:
        return await run(
            request,
            "dead_letters",
            lambda u: queries.dead_letters(
                engine, u.tenant_id, limit=query_int(request, "limit", 100, 1, MAX_LIMIT)
            ),
        )

    # ---- fleet-console: the latest signal values (vehicle page, the map's battery levels) ----
    async def vehicle_signals(request: Request) -> JSONResponse:
        def answer(u: User) -> Any:
            found = latest.vehicle_signals(engine, u.tenant_id, vehicle_name(request))
            if found is None:
                raise ApiError(404, "not_found", "no such vehicle")
            return found

        return await run(request, "read", answer)

    async def last_signal_values(request: Request) -> JSONResponse:
        def answer(u: User) -> Any:
            path = request.query_params.get("path", "")
            if not 0 < len(path) <= 256:
                raise ApiError(400, "bad_parameter", "path: a VSS path is needed (at most 256 characters)")
            return latest.last_values(engine, u.tenant_id, path)

        return await run(request, "read", answer)

    async def spec(request: Request) -> JSONResponse:
        return JSONResponse(document)

    async def live_feed(ws: WebSocket) -> None:
        await ws.accept()
        try:
            token = await asyncio.wait_for(ws.receive_text(), AUTH_TIMEOUT_S)
        except (TimeoutError, WebSocketDisconnect, KeyError):
            with contextlib.suppress(Exception):
                await ws.close(code=4401)
            return
        user = await asyncio.to_thread(user_for_token, engine, token[:256].strip())
        if user is None or live is None:
            await ws.close(code=4401 if user is None else 4503)
            return
        queue = live.subscribe(user.tenant_id)
        try:
            await ws.send_text(json.dumps({"type": "hello", "user": user.name, "role": user.role}))
            await _feed_until_behind(ws, queue)
        except WebSocketDisconnect:
            pass
        finally:
            live.unsubscribe(queue)

    app = Starlette(
        routes=[
            Route("/openapi.json", spec),
            Route("/api/vehicles", list_vehicles),
            Route("/api/vehicles/{vehicle}", one_vehicle),
            Route("/api/vehicles/{vehicle}/track", track),
            Route("/api/positions/last", last_positions),
            Route("/api/events", events),
            Route("/api/dead-letters", dead_letters),
            Route("/api/vehicles/{vehicle}/signals", vehicle_signals),  # fleet-console
            Route("/api/signals/last", last_signal_values),  # fleet-console
            WebSocketRoute("/api/live", live_feed),
            *domain_routes(engine, webhooks_changed, domain_status),
            *api_commands.routes(store, wake),
        ]
    )
    app.state.openapi = document  # ops-console: rooms mounted later add their paths (server.py)
    return app
