"""VISS v2 over HTTP: ``GET /Vehicle/Speed`` (or ``/Vehicle.Speed``) reads, ``POST /Vehicle/...``
with ``{"value": ...}`` sets.

Filters travel in the ``filter`` query parameter as JSON (``?filter={"type":"paths",...}``), the
token in ``Authorization: Bearer``. The body is the same JSON a WebSocket client gets; the HTTP
status is the VISS error number. Subscriptions need a connection that stays open, so they are
served over WebSocket only. Each client address has its own rate limit.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse
from starlette.routing import Route

from anycar.api.bodies import BodyTooLarge, read_body
from anycar.api.viss.errors import VissError, from_anycar, http_headers
from anycar.api.viss.messages import error_response, loads, parse_object
from anycar.api.viss.service import VissService
from anycar.errors import AnycarError
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
            try:  # who asks comes first: nothing is read or looked up for a caller without a token
                service.grants(token)
            except AnycarError as exc:
                raise from_anycar(exc) from None
            data: dict[str, Any] = {"action": action, "path": path, "requestId": request_id}
            raw_filter = request.query_params.get("filter")
            if raw_filter is not None:
                data["filter"] = loads(
                    raw_filter, service.limits.max_message_bytes, "query parameter 'filter'"
                )
            if action == "set":
                try:
                    body = await read_body(request, service.limits.max_message_bytes)
                except BodyTooLarge as exc:
                    err = VissError("bad_request", str(exc))
                    return JSONResponse(error_response(err, action, request_id), status_code=exc.code)
                except AnycarError as exc:
                    raise VissError("bad_request", str(exc)) from None
                payload = loads(body or b"null", service.limits.max_message_bytes, "body")
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
