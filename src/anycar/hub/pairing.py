"""The owner's REST routes for adding an accessory to a running hub: trust its vendor's key,
see who is waiting (with the mount each would take), pair one with the code it shows.

They call the accessory manager's own API (``add_vendor_key``, ``waiting``, ``commission``) and
tell a waiting accessory why it was refused, so the maker's SDK can raise it. Owner-only: see
``anycar.hub.owner``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from anycar.accessories import signing
from anycar.accessories.errors import AttestationError, FitRefused, PairingError
from anycar.accessories.protocol import error_message
from anycar.api.auth import Action
from anycar.api.bodies import read_json_object
from anycar.api.rest import API_PREFIX, RouteGroup, ok_responses, require
from anycar.errors import AnycarError, ConfigError
from anycar.hub.owner import require_owner

if TYPE_CHECKING:
    from anycar.accessories.manager import AccessoryManager

MAX_BODY_BYTES = 16_384


class ServiceStopped(AnycarError):
    code = 503
    reason = "unavailable"


class PairingLockedOut(AnycarError):
    """Too many wrong codes for this accessory: pairing is refused for a while."""

    code = 423
    reason = "locked_out"


def waiting_view(manager: AccessoryManager) -> dict[str, Any]:
    """Accessories waiting for their pairing code, each with the mount it would take now."""
    board = manager.board
    out = []
    for key, session in list(manager.pending.items()):
        manifest = session.manifest
        if manifest is None:
            continue
        mount_id = board.suggest(manifest.mount_types, manifest.power)
        mount = manager.mounts.mounts.get(mount_id) if mount_id else None
        out.append(
            {
                "accessory": key,
                "serial": session.serial,
                **manifest.summary(),
                "key_id": session.key_id,
                "locked_for_s": round(manager.pairing.locked_for(key), 1),
                "mount": None
                if mount is None
                else {"id": mount.id, "name": mount.description or mount.id, "type": mount.type},
                "why_no_mount": None
                if mount is not None
                else "no free mount of type "
                + " or ".join(manifest.mount_types)
                + f" has {manifest.power.peak_w:g} W left",
            }
        )
    return {"waiting": out, "free": board.free()}


def _text(body: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = body.get(key)
    if not required and (value is None or value == ""):
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"field {key!r} must be a non-empty string")
    return value.strip()


def pairing_group(current: Callable[[], AccessoryManager | None]) -> RouteGroup:
    """``/api/v1/trust`` (POST) and ``/api/v1/pairing`` (GET, POST) on the ``current()`` manager
    (a restarted hub keeps its routes but gets a new manager)."""

    def manager_now() -> AccessoryManager:
        manager = current()
        if manager is None:
            raise ServiceStopped("the accessory server is not running")
        return manager

    async def trust(request: Request) -> JSONResponse:
        require_owner(request, "trusting a vendor key")  # who asks comes first
        manager = manager_now()
        body = await read_json_object(request, MAX_BODY_BYTES)
        vendor = body.get("vendor_id")
        if isinstance(vendor, str):
            try:
                vendor = int(vendor, 0)
            except ValueError:
                vendor = None
        if not isinstance(vendor, int) or isinstance(vendor, bool) or not 0 < vendor < 2**16:
            raise ConfigError("field 'vendor_id' must be a vendor id from 1 to 65535 (0x... allowed)")
        public_key = _text(body, "public_key")
        assert public_key is not None  # nosec B101 # narrows an Optional for mypy; an invariant of this object, not a check of outside input
        label = _text(body, "label", required=False) or ""
        try:
            kid = signing.key_id(signing.parse_public_key(public_key))
        except AttestationError as exc:
            raise ConfigError(f"field 'public_key': {exc}") from None
        known = manager.trust.get(kid)
        if known is not None and not known.revoked:
            return JSONResponse({**known.to_dict(), "already_trusted": True})
        key = manager.add_vendor_key(vendor, public_key, label[:200])
        return JSONResponse({**key.to_dict(), "already_trusted": False})

    async def waiting(request: Request) -> JSONResponse:
        require(request, Action.READ)
        manager = manager_now()
        return JSONResponse(waiting_view(manager))

    async def pair(request: Request) -> JSONResponse:
        require_owner(request, "pairing an accessory")  # who asks comes first
        manager = manager_now()
        body = await read_json_object(request, MAX_BODY_BYTES)
        code = _text(body, "code")
        assert code is not None  # nosec B101 # narrows an Optional for mypy; an invariant of this object, not a check of outside input
        accessory = _text(body, "accessory", required=False)
        if accessory is None:
            if len(manager.pending) != 1:
                waiting_now = ", ".join(manager.pending) or "none"
                raise ConfigError(f"say which accessory to pair (field 'accessory'); waiting: {waiting_now}")
            accessory = next(iter(manager.pending))
        session = manager.pending.get(accessory)
        mount = _text(body, "mount", required=False)
        if mount is None and session is not None and session.manifest is not None:
            mount = manager.board.suggest(session.manifest.mount_types, session.manifest.power)
            if mount is None:
                exc: AnycarError = FitRefused(
                    f"no free mount fits {accessory} ({', '.join(session.manifest.mount_types)}, "
                    f"{session.manifest.power.peak_w:g} W peak)",
                    free=manager.board.free(),
                )
                await _tell(session, exc)
                raise exc
        try:
            rec = await manager.commission(
                accessory, code, mount or "", instance=_text(body, "name", required=False)
            )
        except (PairingError, FitRefused, AttestationError) as exc:
            if session is not None:
                await _tell(session, exc)
            if isinstance(exc, PairingError) and exc.locked_until is not None:
                raise PairingLockedOut(str(exc)) from None
            raise
        fitted = manager.fitted[rec.instance]
        return JSONResponse(
            {
                "instance": rec.instance,
                "accessory": rec.accessory,
                "mount": fitted.mount.to_dict(),
                "paths": rec.paths,
                "privilege": rec.privilege,
            }
        )

    p = API_PREFIX
    errors = {
        400: "bad body (the field is named)",
        401: "token missing or invalid, or a wrong pairing code",
        403: "the token lacks the owner's 'admin' scope",
        404: "no such accessory waiting, or no such mount",
        409: "no free mount fits the accessory",
        423: "locked out after repeated wrong codes",
    }
    return RouteGroup(
        name="pairing",
        description="The owner adds an accessory: trust its vendor's key, then pair it with its code.",
        routes=[
            Route(f"{p}/trust", trust, methods=["POST"]),
            Route(f"{p}/pairing", waiting, methods=["GET"]),
            Route(f"{p}/pairing", pair, methods=["POST"]),
        ],
        paths={
            f"{p}/trust": {
                "post": {
                    "tags": ["pairing"],
                    "summary": "Trust a vendor's Ed25519 key (owner only)",
                    "requestBody": _schema(
                        {"vendor_id": {"type": ["integer", "string"]}, "public_key": {"type": "string"}},
                        ["vendor_id", "public_key"],
                    ),
                    "responses": ok_responses("the trusted key", errors={400: errors[400], 403: errors[403]}),
                }
            },
            f"{p}/pairing": {
                "get": {
                    "tags": ["pairing"],
                    "summary": "Accessories waiting for their pairing code, each with the mount it would take",
                    "responses": ok_responses("waiting accessories and free mounts"),
                },
                "post": {
                    "tags": ["pairing"],
                    "summary": "Pair a waiting accessory with the code it shows (owner only)",
                    "requestBody": _schema(
                        {
                            "code": {"type": "string"},
                            "accessory": {"type": "string"},
                            "mount": {"type": "string"},
                            "name": {"type": "string"},
                        },
                        ["code"],
                    ),
                    "responses": ok_responses("the paired accessory, its mount and signals", errors=errors),
                },
            },
        },
    )


async def _tell(session: Any, exc: AnycarError) -> None:
    """Tell the waiting accessory why it was refused (its SDK raises it)."""
    msg = error_message(exc)
    if isinstance(exc, PairingError) and exc.locked_until is not None:
        msg["reason"] = "locked_out"
    await session.send(msg)


def _schema(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "content": {
            "application/json": {"schema": {"type": "object", "properties": props, "required": required}}
        }
    }


__all__ = ["pairing_group", "waiting_view"]
