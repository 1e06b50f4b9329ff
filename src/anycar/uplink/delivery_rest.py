"""delivery-exec: the hub's REST view of the round: ``GET /api/v1/delivery`` (the route, what is
done, the next stop and what the display shows; read scope) and ``POST /api/v1/delivery/complete``
(the driver closes the current stop: ``{"outcome": "delivered"|"failed", "reason": ..., "pin":
...}``; actuate scope), answered with the signed proof of delivery; a swap stop (demo-route)
closes with ``swapped`` or ``failed`` and is answered with what the hub recorded (no POD)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from anycar.api.auth import Action
from anycar.api.rest import API_PREFIX, RouteGroup, error_body, ok_responses, require
from anycar.errors import AnycarError

MAX_BODY = 4096


def delivery_group(keeper: Callable[[], Any]) -> RouteGroup:
    def refused(code: int, reason: str, message: str) -> JSONResponse:
        return JSONResponse(error_body(code, reason, message), status_code=code)

    async def view(request: Request) -> JSONResponse:
        require(request, Action.READ)
        found = keeper()
        return JSONResponse(found.view() if found is not None else {"route": None, "next": None, "done": {}})

    async def complete(request: Request) -> JSONResponse:
        require(request, Action.ACTUATE, "Vehicle.Accessories")
        found = keeper()
        if found is None:
            return refused(409, "no_route", "this hub keeps no route")
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_BODY:
                return refused(413, "too_large", f"body over {MAX_BODY} bytes")
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return refused(400, "bad_json", "body: not JSON")
        if not isinstance(body, dict) or body.get("outcome") not in ("delivered", "failed", "swapped"):
            return refused(400, "bad_parameter", "outcome: delivered, failed or swapped")
        pin = body.get("pin")
        if pin is not None and not (isinstance(pin, str) and pin.isdigit() and len(pin) <= 12):
            return refused(400, "bad_parameter", "pin: up to 12 digits")
        reason = body.get("reason", "")
        if not isinstance(reason, str):
            return refused(400, "bad_parameter", "reason: text")
        try:
            record = found.complete(body["outcome"], reason, pin)
        except AnycarError as exc:
            return refused(409, "no_stop", str(exc))
        return JSONResponse(record)

    p = f"{API_PREFIX}/delivery"
    return RouteGroup(
        name="delivery",
        description="The round the fleet pushed: next stop, proofs of delivery (delivery-exec).",
        routes=[Route(p, view, methods=["GET"]), Route(f"{p}/complete", complete, methods=["POST"])],
        paths={
            p: {
                "get": {
                    "tags": ["delivery"],
                    "summary": "The route, the stops done, the next stop",
                    "responses": ok_responses("the round"),
                }
            },
            f"{p}/complete": {
                "post": {
                    "tags": ["delivery"],
                    "summary": "Close the current stop (delivered or failed); the signed proof of delivery",
                    "responses": ok_responses("the signed record", errors=(400, 409, 413)),
                }
            },
        },
    )
