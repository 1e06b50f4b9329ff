"""The cabin dashboard as a Starlette app: static files plus the one JSON file that tells the
page where the hub's VISS WebSocket and REST API are. The hub mounts it (e.g. at ``/``)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

STATIC_DIR = Path(str(resources.files("anycar.dashboard").joinpath("static")))
SCHEMA_NAMES = ("vehicle", "accessories", "driving-state", "signals", "events")

# The page loads nothing from elsewhere: scripts, styles and images come from this app, and it
# talks only to the hub (fetch and WebSocket, possibly on another local port).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self' ws: wss: http: https:; object-src 'none'; base-uri 'self'; frame-ancestors 'self'"
)


class _NoCacheStatic(StaticFiles):
    """Static files that the browser revalidates, so a new hub version shows at once."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def api_schema(name: str) -> dict[str, Any]:
    """The JSON Schema of one REST answer the page reads (docs/dashboard.md); for the hub's tests."""
    if name not in SCHEMA_NAMES:
        raise KeyError(f"no schema {name!r}; known: {', '.join(SCHEMA_NAMES)}")
    text = resources.files("anycar.dashboard").joinpath(f"schema/{name}.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def dashboard_config(viss_url: str | None, api_base: str, refresh_ms: int) -> dict[str, Any]:
    """What ``config.json`` holds; ``viss: null`` means ws(s)://<same host>/viss."""
    return {"viss": viss_url, "api": api_base, "refresh_ms": refresh_ms}


def app(
    *,
    viss_url: str | None = None,
    api_base: str = "/api",
    refresh_ms: int = 3000,
    static_dir: Path | None = None,
) -> Starlette:
    """The dashboard app.

    ``viss_url``: the hub's VISS v2 WebSocket (``ws://127.0.0.1:8090``); by default the page
    uses ``/viss`` on its own host. ``api_base``: where the REST endpoints of
    docs/dashboard.md live, absolute (``/api``) or a full URL.
    """
    config = dashboard_config(viss_url, api_base, refresh_ms)

    async def config_json(request: Request) -> JSONResponse:
        return JSONResponse(config, headers={"Cache-Control": "no-cache"})

    static = _NoCacheStatic(directory=str(static_dir or STATIC_DIR), html=True)

    async def static_app(scope: Scope, receive: Receive, send: Send) -> None:
        await static(scope, receive, send)

    return Starlette(routes=[Route("/config.json", config_json), Mount("/", app=static_app)])
