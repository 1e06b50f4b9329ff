"""VISS v2 over HTTP: ``GET /Vehicle/Speed`` (or ``/Vehicle.Speed``) reads, ``POST /Vehicle/...``
with ``{"value": ...}`` sets.

Filters travel in the ``filter`` query parameter as JSON (``?filter={"type":"paths",...}``), the
token in ``Authorization: Bearer``. The body is the same JSON a WebSocket client gets; the HTTP
status is the VISS error number. Subscriptions need a connection that stays open, so they are
served over WebSocket only. Each client address has its own rate limit.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse
from starlette.routing import Route

from anycar.api.viss.errors import VissError, http_headers
from anycar.api.viss.messages import error_response, parse_object
from anycar.api.viss.service import VissService
from anycar.ratelimit import TokenBucket


def routes(service: VissService, prefix: str = "/Vehicle") -> list[Route]:
    buckets: dict[str, TokenBucket] = {}

    def allow(host: str) -> bool:
        bucket = buckets.get(host)
        if bucket is None:
            if len(buckets) > 4096:
                buckets.clear()
            bucket = buckets[host] = TokenBucket(service.limits.requests_per_s, service.limits.burst)
        return bucket.take()

    async def handle(request: HttpRequest) -> JSONResponse:
        action = "get" if request.method == "GET" else "set"
        path = request.url.path
        token = request.headers.get("authorization")
        request_id = request.query_params.get("requestId", "http")
        try:
            if not allow(request.client.host if request.client else "unknown"):
                raise VissError("too_many_requests", "this client sends too many HTTP requests")
            data: dict[str, Any] = {"action": action, "path": path, "requestId": request_id}
            raw_filter = request.query_params.get("filter")
            if raw_filter is not None:
                try:
                    data["filter"] = json.loads(raw_filter)
                except json.JSONDecodeError as exc:
                    raise VissError("bad_request", f"query parameter 'filter' is not JSON: {exc}") from None
            if action == "set":
                declared = request.headers.get("content-length", "0")
                if declared.isdigit() and int(declared) > service.limits.max_message_bytes:
                    raise VissError(
                        "bad_request", f"body of {declared} bytes exceeds {service.limits.max_message_bytes}"
                    )
                body = await request.body()
                if len(body) > service.limits.max_message_bytes:
                    raise VissError(
                        "bad_request", f"body of {len(body)} bytes exceeds {service.limits.max_message_bytes}"
                    )
                try:
                    payload = json.loads(body or b"null")
                except json.JSONDecodeError as exc:
                    raise VissError("bad_request", f"body is not JSON: {exc}") from None
                if not isinstance(payload, dict) or "value" not in payload:
                    raise VissError("bad_request", 'body must be a JSON object {"value": ...}')
                data["value"] = payload["value"]
            req = parse_object(data)
            if action == "get":
                return JSONResponse(service.get(req, token))
            return JSONResponse(await service.set(req, token))
        except VissError as err:
            return JSONResponse(
                error_response(err, action, request_id), status_code=err.number, headers=http_headers(err)
            )

    return [
        Route(prefix, handle, methods=["GET", "POST"]),
        Route(prefix + "/{rest:path}", handle, methods=["GET", "POST"]),
        # the dotted form the spec also uses: GET /Vehicle.Acceleration.Longitudinal?filter=...
        Route(prefix + ".{rest:path}", handle, methods=["GET", "POST"]),
    ]
