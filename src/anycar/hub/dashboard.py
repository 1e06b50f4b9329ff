"""The cabin dashboard as a hub component: the static page at ``/`` on the hub's HTTP port.

The page's ``config.json`` is answered at request time, because the VISS WebSocket's port is
known only once the hub listens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

import anycar.dashboard
from anycar.api.rest import API_PREFIX

if TYPE_CHECKING:
    from anycar.hub.hub import Hub


class DashboardComponent:
    name = "dashboard"

    def __init__(self, refresh_ms: int = 2000) -> None:
        self.refresh_ms = refresh_ms
        self._hub: Hub | None = None

    def endpoints(self) -> dict[str, str]:
        hub = self._hub
        if hub is None or hub.http is None:
            return {}
        return {"dashboard": f"{hub.http.scheme}://{hub.config.host}:{hub.http.port}/"}

    async def start(self, hub: Hub) -> None:
        self._hub = hub

        async def config(request: Request) -> JSONResponse:
            return JSONResponse(
                {"viss": hub.endpoints().get("viss"), "api": API_PREFIX, "refresh_ms": self.refresh_ms}
            )

        static = anycar.dashboard.app(viss_url=None, api_base=API_PREFIX, refresh_ms=self.refresh_ms)
        hub.rest.fallback = Starlette(
            routes=[Route("/config.json", config, methods=["GET"]), Mount("/", app=static)]
        )

    async def stop(self) -> None:
        return None
