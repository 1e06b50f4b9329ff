"""The uplink's REST views on the hub: ``/api/v1/uplink`` (link, spool, drops, counters) and
``/api/v1/uplink/campaigns`` — what ``anycar uplink status|campaigns`` show, for the dashboard
and tools that already hold a hub token (read scope)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from anycar.api.auth import Action
from anycar.api.rest import API_PREFIX, RouteGroup, ok_responses, require

if TYPE_CHECKING:
    from anycar.uplink.component import UplinkComponent


def uplink_group(uplink: UplinkComponent) -> RouteGroup:
    async def status(request: Request) -> JSONResponse:
        require(request, Action.READ)
        return JSONResponse(uplink.status())

    async def campaigns(request: Request) -> JSONResponse:
        require(request, Action.READ)
        running = {c.id for c in uplink.runners_campaigns()}
        return JSONResponse(
            {"campaigns": [{**c.summary(), "running": c.id in running} for c in uplink.campaigns.values()]}
        )

    p = f"{API_PREFIX}/uplink"
    return RouteGroup(
        name="uplink",
        description="The MQTT uplink to the fleet: the link, the spool and its drops, campaigns.",
        routes=[Route(p, status, methods=["GET"]), Route(f"{p}/campaigns", campaigns, methods=["GET"])],
        paths={
            p: {
                "get": {
                    "tags": ["uplink"],
                    "summary": "Link state, spool depth and drops by reason",
                    "responses": ok_responses("uplink status"),
                }
            },
            f"{p}/campaigns": {
                "get": {
                    "tags": ["uplink"],
                    "summary": "Campaigns, where each came from and whether it runs",
                    "responses": ok_responses("campaigns"),
                }
            },
        },
    )
