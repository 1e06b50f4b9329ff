"""The console as a Starlette app: static files, the base map and ``config.json``."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

PACKAGE = Path(str(resources.files("anycar.fleet.console")))
STATIC_DIR = PACKAGE / "static"
DATA_DIR = PACKAGE / "data"

# Nothing from elsewhere: scripts, styles, the map data, the map's web worker and every fetch
# and WebSocket go to this origin. MapLibre's CSP build needs no blob: worker and no eval.
CSP = (
    "default-src 'self'; script-src 'self'; worker-src 'self'; child-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True)
class ConsoleConfig:
    """``dashboard_url``: where a vehicle's cabin dashboard is, a template with ``{vehicle}`` and
    ``{vin}`` (e.g. ``http://{vehicle}.hubs.example:8080/``); the hubs do not report it on the
    wire, so the operator configures it (``anycar fleet serve --dashboard-url``)."""

    api_base: str = "/api"
    dashboard_url: str | None = None
    soc_refresh_s: float = 30.0


class _Static(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(HEADERS)
        return response


def vehicle_types() -> dict[str, Any]:
    """The console's vehicle types, rules and state thresholds (``data/vehicle_types.yaml``)."""
    loaded: dict[str, Any] = yaml.safe_load((DATA_DIR / "vehicle_types.yaml").read_text("utf-8"))
    return loaded


def console_app(cfg: ConsoleConfig | None = None) -> Starlette:
    cfg = cfg or ConsoleConfig()
    config = {
        "api": cfg.api_base,
        "live": cfg.api_base + "/live",
        "dashboard_url": cfg.dashboard_url,
        "soc_refresh_s": cfg.soc_refresh_s,
        "soc_path": "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",
        "vehicles": vehicle_types(),
        "attribution": "© OpenStreetMap contributors, ODbL",
    }

    async def config_json(request: Request) -> JSONResponse:
        return JSONResponse(config, headers=HEADERS)

    async def basemap(request: Request) -> FileResponse:
        return FileResponse(DATA_DIR / "basemap.geojson", media_type="application/geo+json", headers=HEADERS)

    async def basemap_licence(request: Request) -> FileResponse:
        return FileResponse(DATA_DIR / "basemap.LICENSE.md", media_type="text/markdown", headers=HEADERS)

    static = _Static(directory=str(STATIC_DIR), html=True)

    async def static_app(scope: Scope, receive: Receive, send: Send) -> None:
        await static(scope, receive, send)

    return Starlette(
        routes=[
            Route("/config.json", config_json),
            Route("/basemap.geojson", basemap),
            Route("/basemap.LICENSE.md", basemap_licence),
            Mount("/", app=static_app),
        ]
    )
