"""The owner's revocation route: ``POST /api/v1/trust/{key_id}/revoke[?reason=...]``.

A revocation reaches the running hub at once: the key is marked revoked in the shared store,
hellos under it are refused from now on, and every connection under it (fitted or waiting) is
ended. Owner-only (``anycar.hub.owner``); nothing but the path and a short query is read, and
only after the caller is known to be the owner.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from anycar.api.rest import API_PREFIX, RouteGroup, ok_responses
from anycar.errors import AnycarError, ConfigError
from anycar.hub.owner import require_owner

if TYPE_CHECKING:
    from anycar.accessories.manager import AccessoryManager

MAX_REASON = 200


class AccessoriesStopped(AnycarError):
    code = 503
    reason = "unavailable"


def revocation_group(current: Callable[[], AccessoryManager | None]) -> RouteGroup:
    """The route on the ``current()`` manager (a restarted hub keeps its routes)."""

    async def revoke(request: Request) -> JSONResponse:
        require_owner(request, "revoking a vendor key")
        manager = current()
        if manager is None:
            raise AccessoriesStopped("the accessory server is not running")
        reason = request.query_params.get("reason", "revoked by owner").strip() or "revoked by owner"
        if len(reason) > MAX_REASON:
            raise ConfigError(f"query parameter 'reason' is over {MAX_REASON} characters")
        key, closing = manager.revoke_vendor_key(request.path_params["key_id"], reason)
        return JSONResponse({**key.to_dict(), "sessions_closed": closing})

    path = f"{API_PREFIX}/trust/{{key_id}}/revoke"
    return RouteGroup(
        name="revocation",
        description="Revoke a vendor key on the running hub (the owner's 'admin' right).",
        routes=[Route(path, revoke, methods=["POST"])],
        paths={
            path: {
                "post": {
                    "tags": ["revocation"],
                    "summary": "Revoke a vendor key now: hellos under it are refused and its "
                    "accessories' connections end (owner only: the 'admin' scope)",
                    "parameters": [
                        {"name": "key_id", "in": "path", "required": True, "schema": {"type": "string"}},
                        {
                            "name": "reason",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "maxLength": MAX_REASON},
                        },
                    ],
                    "responses": ok_responses(
                        "the key as revoked, and how many connections end",
                        errors={
                            400: "the reason is too long",
                            404: "no trusted key has this id",
                            503: "the accessory server is not running",
                        },
                    ),
                }
            }
        },
    )
