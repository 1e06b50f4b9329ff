"""The REST management API: what VISS and gRPC do not cover, described by OpenAPI.

It is built from route groups. The API itself brings ``core_group`` (server info, signal
browsing, providers, subscriptions); the composition root registers further groups (brand
profile, mount points, accessories, grants) from the rooms that own them, each with its routes
and the OpenAPI path items that describe them. ``/openapi.json`` is assembled from every group.

Handlers call ``require(request, action, path)`` to check the caller's token before anything
else (before reading a body, before looking a path up); a body is read with
``anycar.api.bodies.read_body`` and every body is capped by ``BodyLimit``. Errors are
``{"error": {"code", "reason", "message"}}`` with the HTTP status ``code``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

from anycar import __version__
from anycar.api.auth import Action, Authorizer, Grants, TokenError, TokenExpired, TokenMissing
from anycar.api.bodies import MAX_BODY_BYTES, BodyLimit
from anycar.broker import SignalBroker
from anycar.errors import AnycarError, ConfigError
from anycar.http_listener import HttpListener

log = logging.getLogger(__name__)
API_PREFIX = "/api/v1"


@dataclass
class RouteGroup:
    """Routes one room serves, with their OpenAPI description (``paths`` and ``schemas``)."""

    name: str
    routes: list[BaseRoute]
    paths: dict[str, Any] = field(default_factory=dict)
    schemas: dict[str, Any] = field(default_factory=dict)
    description: str = ""


def require(request: Request, action: Action, path: str = "Vehicle") -> Grants:
    """The caller's grants, checked for ``action`` on ``path``; raises 401/403 errors.

    ``path`` may be a branch: the default asks for ``action`` on every signal of the vehicle
    (the set the catalog holds now), which is what the hub-wide views show."""
    authorizer: Authorizer = request.app.state.authorizer
    grants = authorizer.grants(request.headers.get("authorization"))
    grants.check(action, path)
    return grants


def error_body(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "reason": reason, "message": message}}


def challenge_headers(exc: AnycarError, realm: str = "anycar") -> dict[str, str]:
    """A 401 names the scheme to authenticate with (RFC 7235 §3.1: it MUST): the REST API
    takes Bearer tokens (RFC 6750 §3), with ``error="invalid_token"`` for a token that was
    given but cannot be used, as VISS over HTTP answers. A 401 that is not about the token (a
    wrong pairing code, a forged accessory manifest) names the scheme alone."""
    if exc.code != 401:
        return {}
    challenge = f'Bearer realm="{realm}"'
    if isinstance(exc, TokenError) and not isinstance(exc, TokenMissing):
        description = (
            "The access token expired" if isinstance(exc, TokenExpired) else "The access token is invalid"
        )
        challenge += f', error="invalid_token", error_description="{description}"'
    return {"WWW-Authenticate": challenge}


async def _anycar_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AnycarError)  # nosec B101 # Starlette calls this handler only for this exception class
    return JSONResponse(
        error_body(exc.code, exc.reason, str(exc)), status_code=exc.code, headers=challenge_headers(exc)
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)  # nosec B101 # Starlette calls this handler only for this exception class
    return JSONResponse(
        error_body(exc.status_code, "http_error", str(exc.detail)), status_code=exc.status_code
    )


_ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "integer"},
                "reason": {"type": "string"},
                "message": {"type": "string"},
            },
            "required": ["code", "reason", "message"],
        }
    },
}


ERROR_DESCRIPTIONS = {
    400: "malformed parameter, pattern or body (the message names it)",
    401: "token missing, invalid or expired",
    403: "token scope does not cover this",
    404: "unknown path, or the pattern matches nothing",
    409: "conflicts with the current state",
    413: "body too large",
    423: "locked",
    429: "too many requests",
}


def ok_responses(
    description: str,
    schema: dict[str, Any] | None = None,
    *,
    errors: tuple[int, ...] | dict[int, str] = (),
) -> dict[str, Any]:
    """200 with ``schema``, 401 and 403 (every route checks the token), and ``errors``: codes,
    or codes with this route's own descriptions. Every error has the ``Error`` body."""
    content = {"application/json": {"schema": schema or {"type": "object"}}}
    out: dict[str, Any] = {"200": {"description": description, "content": content}}
    described = errors if isinstance(errors, dict) else {}
    for code in sorted({401, 403, *errors}):
        text = described.get(code) or ERROR_DESCRIPTIONS[code]
        out[str(code)] = {"description": text, "content": _error_content()}
    return out


def path_parameter(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


def _error_content() -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


class RestApi:
    """Collects route groups and builds the Starlette app and its OpenAPI document."""

    def __init__(
        self,
        authorizer: Authorizer,
        *,
        title: str = "anycar hub management API",
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.authorizer = authorizer
        self.max_body_bytes = max_body_bytes
        self.title = title
        self.groups: list[RouteGroup] = []
        self.extra_routes: list[BaseRoute] = []
        self.fallback: ASGIApp | None = None  # served for every path nothing else claims (the dashboard)

    def add_group(self, group: RouteGroup) -> None:
        if any(g.name == group.name for g in self.groups):
            raise ConfigError(f"REST route group {group.name!r} is registered twice")
        self.groups.append(group)

    def add_routes(self, routes: Sequence[BaseRoute]) -> None:
        """Routes outside the management API (VISS over HTTP), not in the OpenAPI document."""
        self.extra_routes.extend(routes)

    def openapi(self) -> dict[str, Any]:
        paths: dict[str, Any] = {}
        schemas: dict[str, Any] = {"Error": _ERROR_SCHEMA}
        for group in self.groups:
            for path, item in group.paths.items():
                if path in paths:
                    raise ConfigError(f"OpenAPI path {path} is described by two route groups")
                paths[path] = item
            schemas.update(group.schemas)
        return {
            "openapi": "3.1.0",
            "info": {"title": self.title, "version": __version__},
            "tags": [{"name": g.name, "description": g.description} for g in self.groups],
            "paths": paths,
            "components": {
                "schemas": schemas,
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            },
            "security": [{"bearer": []}],
        }

    def app(self) -> Starlette:
        document = self.openapi()

        async def openapi(request: Request) -> JSONResponse:
            return JSONResponse(document)

        routes: list[BaseRoute] = [Route("/openapi.json", openapi, methods=["GET"])]
        for group in self.groups:
            routes.extend(group.routes)
        routes.extend(self.extra_routes)
        if self.fallback is not None:
            routes.append(Mount("/", app=self.fallback))
        app = Starlette(
            routes=routes,
            exception_handlers={AnycarError: _anycar_error, HTTPException: _http_error},
            middleware=[Middleware(BodyLimit, max_bytes=self.max_body_bytes)],
        )
        app.state.authorizer = self.authorizer
        return app


def core_group(broker: SignalBroker, info: Callable[[], dict[str, Any]]) -> RouteGroup:
    """Server info, signal browsing with current values, providers and subscriptions."""

    async def server_info(request: Request) -> JSONResponse:
        require(request, Action.READ)
        return JSONResponse(info())

    async def signals(request: Request) -> JSONResponse:
        grants = caller_grants(request)
        pattern = request.query_params.get("pattern", "Vehicle")
        found = grants.visible(broker.catalog, pattern, Action.READ)
        limit = _int(request.query_params.get("limit"), 500, 1, 5000)
        out = []
        for sig in found[:limit]:
            dp = broker.get(sig.path)
            out.append(
                {
                    "path": sig.path,
                    "id": sig.id,
                    **sig.metadata(),
                    "value": dp.value if dp is not None else None,
                    "timestamp": dp.timestamp if dp is not None else None,
                    "provider": broker.provider_of(sig.path),
                }
            )
        return JSONResponse({"pattern": pattern, "total": len(found), "signals": out})

    async def signal(request: Request) -> JSONResponse:
        grants = caller_grants(request)
        sig = grants.signal(broker.catalog, request.path_params["path"].replace("/", "."), Action.READ)
        dp = broker.get(sig.path)
        return JSONResponse(
            {
                "path": sig.path,
                "id": sig.id,
                "metadata": sig.metadata(),
                "value": dp.value if dp is not None else None,
                "timestamp": dp.timestamp if dp is not None else None,
                "provider": broker.provider_of(sig.path),
            }
        )

    async def providers(request: Request) -> JSONResponse:
        require(request, Action.READ)
        stats = broker.stats()
        return JSONResponse({"providers": stats["providers"]})

    async def subscriptions(request: Request) -> JSONResponse:
        require(request, Action.READ)
        stats = broker.stats()
        return JSONResponse(
            {
                "subscriptions": stats["subscriptions"],
                "dropped": stats["dropped"],
                "expired": stats["expired"],
                "updates": stats["updates"],
                "rejected": stats["rejected"],
                "actuations": stats["actuations"],
            }
        )

    p = API_PREFIX
    return RouteGroup(
        name="hub",
        description="Server information, the signal catalog with current values, providers and subscriptions.",
        routes=[
            Route(f"{p}/info", server_info, methods=["GET"]),
            Route(f"{p}/signals", signals, methods=["GET"]),
            Route(f"{p}/signals/{{path:path}}", signal, methods=["GET"]),
            Route(f"{p}/providers", providers, methods=["GET"]),
            Route(f"{p}/subscriptions", subscriptions, methods=["GET"]),
        ],
        paths={
            f"{p}/info": {
                "get": {
                    "tags": ["hub"],
                    "summary": "Server name, versions, ports, auth mode",
                    "responses": ok_responses("server information"),
                }
            },
            f"{p}/signals": {
                "get": {
                    "tags": ["hub"],
                    "summary": "Signals matching a pattern, with current values and providers",
                    "parameters": [
                        {
                            "name": "pattern",
                            "in": "query",
                            "schema": {"type": "string", "default": "Vehicle"},
                        },
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "default": 500}},
                    ],
                    "responses": ok_responses("matching signals", errors=(400, 404)),
                }
            },
            f"{p}/signals/{{path}}": {
                "get": {
                    "tags": ["hub"],
                    "summary": "One signal's metadata, value and provider",
                    "parameters": [path_parameter("path", "a VSS path, with '.' or '/' between nodes")],
                    "responses": ok_responses("the signal", errors=(400, 404)),
                }
            },
            f"{p}/providers": {
                "get": {
                    "tags": ["hub"],
                    "summary": "Registered providers and their counters",
                    "responses": ok_responses("providers"),
                }
            },
            f"{p}/subscriptions": {
                "get": {
                    "tags": ["hub"],
                    "summary": "Open subscriptions, queues and drops",
                    "responses": ok_responses("subscriptions"),
                }
            },
        },
    )


def caller_grants(request: Request) -> Grants:
    """The caller's grants (authenticated, not yet checked for anything): for routes that check
    each path themselves, through ``Grants.signal`` / ``resolve`` / ``visible``."""
    authorizer: Authorizer = request.app.state.authorizer
    return authorizer.grants(request.headers.get("authorization"))


def _int(text: str | None, default: int, lo: int, hi: int) -> int:
    if text is None:
        return default
    try:
        return max(lo, min(hi, int(text)))
    except ValueError:
        raise AnycarError(f"query parameter must be an integer, got {text[:20]!r}") from None


class HttpServer(HttpListener):
    """The hub's REST and VISS-over-HTTP server (``anycar.http_listener`` does the work)."""

    def __init__(
        self, app: Any, host: str, port: int, *, tls_cert: str | None = None, tls_key: str | None = None
    ) -> None:
        super().__init__(app, host, port, tls_cert=tls_cert, tls_key=tls_key)

    async def start(self) -> None:
        await super().start()
        log.info("REST and VISS-over-HTTP listening on %s://%s:%d", self.scheme, self.host, self.port)


__all__ = [
    "API_PREFIX",
    "HttpServer",
    "RestApi",
    "RouteGroup",
    "core_group",
    "error_body",
    "ok_responses",
    "path_parameter",
    "require",
]
