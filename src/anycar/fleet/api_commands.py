"""The fleet API's routes for commands, the accessory inventory and OTA (mounted by ``fleet_api``).

As everywhere in the API: the token first, then the role's right (``read``; ``command`` for
owners and dispatchers; ``firmware`` for owners), then the parameters, and every query for the
caller's tenant only. A request body is read only after that, and at most ``MAX_BODY`` bytes of
it. The one route without a token is a release's image (``/firmware/{token}.bin``): its URL holds
a random token that only the commands of a rollout carry, and the image is signed anyway.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from anycar.fleet import commands as cmds
from anycar.fleet import inventory, ota
from anycar.fleet.params import error
from anycar.fleet.registry import User, user_for_token
from anycar.fleet.store import Store

MAX_BODY = 48 * 1024 * 1024  # a base64 image of up to 32 MiB, and its release
MAX_COMMAND_BODY = 64 * 1024
MAX_LIMIT = 1000


class Refusal(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


def _user(engine: Any, request: Request, right: str) -> User:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    user = user_for_token(engine, token.strip()) if scheme.lower() == "bearer" else None
    if user is None:
        raise Refusal(401, "unauthenticated", "Authorization: Bearer TOKEN needed (anycar fleet user add)")
    if right not in user.rights:
        raise Refusal(403, "forbidden", f"role {user.role} has no {right!r} right")
    return user


async def _body(request: Request, limit: int) -> Any:
    """The JSON body, read to at most ``limit`` bytes (a longer one is refused, not buffered)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise Refusal(413, "too_large", f"body: more than {limit} bytes")
    data = bytearray()
    async for part in request.stream():
        data += part
        if len(data) > limit:
            raise Refusal(413, "too_large", f"body: more than {limit} bytes")
    try:
        return json.loads(data or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refusal(400, "bad_body", f"body: not JSON: {str(exc)[:200]}") from None


def _int(request: Request, name: str, low: int, high: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise Refusal(400, "bad_parameter", f"{name}: {raw[:40]!r} is not an integer") from None
    if not low <= value <= high:
        raise Refusal(400, "bad_parameter", f"{name}: {value} is not in {low}..{high}")
    return value


def _text(request: Request, name: str) -> str | None:
    raw = request.query_params.get(name)
    return raw[:128] if raw is not None else None


def routes(store: Store, wake: Callable[[], None] | None = None) -> list[Route]:
    """The routes; ``wake`` tells a sender in this process that a command is waiting."""
    engine = store.engine

    async def run(
        request: Request, right: str, answer: Callable[[User], Awaitable[Any]], status: int = 200
    ) -> Response:
        try:
            user = _user(engine, request, right)
            result = await answer(user)
        except Refusal as exc:
            return error(exc.status, exc.reason, exc.message)
        except (cmds.CommandError, ota.OtaError) as exc:
            return error(exc.status, exc.reason, str(exc))
        return JSONResponse(result, status_code=status)

    def threaded(fn: Callable[[User], Any]) -> Callable[[User], Awaitable[Any]]:
        async def call(user: User) -> Any:
            return await asyncio.to_thread(fn, user)

        return call

    # ---- commands ----------------------------------------------------------------------------
    async def send(request: Request) -> Response:
        async def answer(user: User) -> Any:
            body = await _body(request, MAX_COMMAND_BODY)
            if not isinstance(body, dict):
                raise Refusal(400, "bad_body", "body: a JSON object with one action")
            ttl = body.pop("ttl_s", 30)
            if not isinstance(ttl, int | float) or isinstance(ttl, bool):
                raise Refusal(400, "bad_body", "ttl_s: a number of seconds")
            if len(body) != 1:
                raise Refusal(
                    400, "bad_body", f"body: exactly one action of {', '.join(cmds.USER_ACTIONS)} (and ttl_s)"
                )
            ((action, action_body),) = body.items()
            found = await asyncio.to_thread(
                cmds.new_command,
                engine,
                user.tenant_id,
                str(request.path_params["vehicle"]),
                action,
                action_body,
                ttl_s=float(ttl),
                user=user.name,
            )
            if wake is not None:
                wake()
            return found

        return await run(request, "command", answer, 202)

    async def send_campaign(request: Request) -> Response:
        async def answer(user: User) -> Any:
            body = await _body(request, MAX_COMMAND_BODY)
            if not isinstance(body, dict) or not isinstance(body.get("campaign"), dict):
                raise Refusal(
                    400, "bad_body", "body: {campaign: {id, version, signals, collect, ...}, ttl_s}"
                )
            ttl = body.get("ttl_s", 600)
            if not isinstance(ttl, int | float) or isinstance(ttl, bool):
                raise Refusal(400, "bad_body", "ttl_s: a number of seconds")
            found = await asyncio.to_thread(
                cmds.new_campaign,
                engine,
                user.tenant_id,
                str(request.path_params["vehicle"]),
                body["campaign"],
                ttl_s=float(ttl),
                user=user.name,
            )
            if wake is not None:
                wake()
            return found

        return await run(request, "command", answer, 202)

    async def vehicle_commands(request: Request) -> Response:
        vehicle = str(request.path_params["vehicle"])
        return await run(
            request,
            "read",
            threaded(
                lambda u: cmds.listing(
                    engine, u.tenant_id, vehicle=vehicle, limit=_int(request, "limit", 1, MAX_LIMIT) or 100
                )
            ),
        )

    async def all_commands(request: Request) -> Response:
        def answer(u: User) -> Any:
            status = _text(request, "status")
            if status is not None and status not in cmds.STATUSES:
                raise Refusal(400, "bad_parameter", f"status: one of {', '.join(cmds.STATUSES)}")
            return cmds.listing(
                engine,
                u.tenant_id,
                vehicle=_text(request, "vehicle"),
                status=status,
                rollout=_int(request, "rollout", 1, 2**31),
                limit=_int(request, "limit", 1, MAX_LIMIT) or 100,
            )

        return await run(request, "read", threaded(answer))

    async def one_command(request: Request) -> Response:
        def answer(u: User) -> Any:
            found = cmds.get(engine, u.tenant_id, str(request.path_params["id"]))
            if found is None:
                raise Refusal(404, "not_found", "no such command")
            return found

        return await run(request, "read", threaded(answer))

    # ---- inventory ---------------------------------------------------------------------------
    def accessory_listing(request: Request, vehicle: str | None) -> Callable[[User], Awaitable[Any]]:
        def answer(u: User) -> Any:
            return inventory.listing(
                engine,
                u.tenant_id,
                vehicle=vehicle if vehicle is not None else _text(request, "vehicle"),
                model=_text(request, "model"),
                firmware=_text(request, "firmware"),
                vendor_id=_int(request, "vendor_id", 1, 65535),
                product_id=_int(request, "product_id", 1, 65535),
                limit=_int(request, "limit", 1, 10_000) or 1000,
            )

        return threaded(answer)

    async def accessories(request: Request) -> Response:
        return await run(request, "read", accessory_listing(request, None))

    async def vehicle_accessories(request: Request) -> Response:
        return await run(request, "read", accessory_listing(request, str(request.path_params["vehicle"])))

    # ---- firmware and rollouts ---------------------------------------------------------------
    async def list_releases(request: Request) -> Response:
        return await run(
            request,
            "read",
            threaded(
                lambda u: ota.releases(
                    engine,
                    vendor_id=_int(request, "vendor_id", 1, 65535),
                    product_id=_int(request, "product_id", 1, 65535),
                )
            ),
        )

    async def upload(request: Request) -> Response:
        async def answer(user: User) -> Any:
            body = await _body(request, MAX_BODY)
            if not isinstance(body, dict) or not isinstance(body.get("image_base64"), str):
                raise Refusal(400, "bad_body", "body: {release: {...signed...}, image_base64: '...'}")
            try:
                image = base64.b64decode(body["image_base64"], validate=True)
            except (binascii.Error, ValueError):
                raise Refusal(400, "bad_body", "image_base64: not valid base64") from None
            return await asyncio.to_thread(ota.upload, engine, body.get("release"), image, user=user.name)

        return await run(request, "firmware", answer, 201)

    async def image(request: Request) -> Response:
        name = str(request.path_params["name"])
        token = name.removesuffix(".bin")
        data = await asyncio.to_thread(ota.image, engine, token)
        if data is None:
            return error(404, "not_found", "no such image")
        return Response(data, media_type="application/octet-stream")

    async def start_rollout(request: Request) -> Response:
        async def answer(user: User) -> Any:
            body = await _body(request, MAX_COMMAND_BODY)
            if not isinstance(body, dict) or not isinstance(body.get("release"), int):
                raise Refusal(
                    400, "bad_body", "body: {release: ID, percent: 1..100, max_failures, max_in_flight}"
                )
            options = {k: body[k] for k in ("max_failures", "max_in_flight") if k in body}
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in options.values()):
                raise Refusal(400, "bad_body", "max_failures and max_in_flight: integers")
            percent = body.get("percent", 100)
            if not isinstance(percent, int) or isinstance(percent, bool):
                raise Refusal(400, "bad_body", "percent: an integer 1..100")
            base = str(body.get("base_url") or str(request.base_url)).rstrip("/")
            found = await asyncio.to_thread(
                ota.start, engine, user.tenant_id, body["release"], percent=percent, base_url=base, **options
            )
            if wake is not None:
                wake()
            return found

        return await run(request, "firmware", answer, 201)

    async def rollouts(request: Request) -> Response:
        return await run(request, "read", threaded(lambda u: ota.listing(engine, u.tenant_id)))

    def rollout_id(request: Request) -> int:
        raw = str(request.path_params["id"])
        if not raw.isdigit() or len(raw) > 12:
            raise Refusal(404, "not_found", "no such rollout")
        return int(raw)

    async def rollout(request: Request) -> Response:
        def answer(u: User) -> Any:
            found = ota.progress(engine, u.tenant_id, rollout_id(request))
            if found is None:
                raise Refusal(404, "not_found", "no such rollout")
            return found

        return await run(request, "read", threaded(answer))

    async def rollout_change(request: Request) -> Response:
        what = str(request.path_params["what"])

        async def answer(user: User) -> Any:
            rid = rollout_id(request)
            percent = None
            if what == "widen":
                body = await _body(request, MAX_COMMAND_BODY)
                percent = body.get("percent") if isinstance(body, dict) else None
                if not isinstance(percent, int) or isinstance(percent, bool):
                    raise Refusal(400, "bad_body", "percent: an integer")
            found = await asyncio.to_thread(ota.change, engine, user.tenant_id, rid, what, percent)
            if wake is not None:
                wake()
            return found

        return await run(request, "firmware", answer)

    return [
        Route("/api/vehicles/{vehicle}/commands", send, methods=["POST"]),
        Route("/api/vehicles/{vehicle}/commands", vehicle_commands, methods=["GET"]),
        Route("/api/vehicles/{vehicle}/campaigns", send_campaign, methods=["POST"]),
        Route("/api/commands", all_commands),
        Route("/api/commands/{id}", one_command),
        Route("/api/accessories", accessories),
        Route("/api/vehicles/{vehicle}/accessories", vehicle_accessories),
        Route("/api/firmware", list_releases, methods=["GET"]),
        Route("/api/firmware", upload, methods=["POST"]),
        Route("/firmware/{name}", image),
        Route("/api/rollouts", rollouts, methods=["GET"]),
        Route("/api/rollouts", start_rollout, methods=["POST"]),
        Route("/api/rollouts/{id}", rollout),
        Route("/api/rollouts/{id}/{what:str}", rollout_change, methods=["POST"]),
    ]


def _schema_ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


SCHEMAS: dict[str, Any] = {
    "Command": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "vehicle": {"type": "string"},
            "action": {"enum": ["actuate", "scene", "firmware", "fleet_event", "campaign"]},
            "body": {},
            "status": {"enum": list(cmds.STATUSES)},
            "reason": {"type": ["string", "null"]},
            "results": {"type": "array"},
            "created": {"type": "number"},
            "sent": {"type": ["number", "null"]},
            "expires": {"type": ["number", "null"]},
            "answered": {"type": ["number", "null"]},
            "user": {"type": ["string", "null"]},
            "rollout": {"type": ["integer", "null"]},
        },
    },
    "Accessory": {
        "type": "object",
        "properties": {
            k: {"type": t}
            for k, t in (
                ("vehicle", "string"),
                ("id", "string"),
                ("vendor_id", "integer"),
                ("vendor", "string"),
                ("product_id", "integer"),
                ("model", "string"),
                ("serial", ["string", "null"]),
                ("firmware", "string"),
                ("mount", "string"),
                ("status", "string"),
                ("updated", "number"),
            )
        },
    },
    "Release": {
        "type": "object",
        "properties": {
            k: {"type": t}
            for k, t in (
                ("id", "integer"),
                ("vendor_id", "integer"),
                ("product_id", "integer"),
                ("version", "string"),
                ("size", "integer"),
                ("sha256", "string"),
                ("notes", "string"),
                ("key_id", "string"),
                ("uploaded", "number"),
                ("uploaded_by", ["string", "null"]),
            )
        },
    },
    "Rollout": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "release": _schema_ref("Release"),
            "percent": {"type": "integer"},
            "state": {"enum": ["running", "paused", "aborted", "done"]},
            "reason": {"type": ["string", "null"]},
            "targets": {"type": "integer"},
            "by_status": {"type": "object", "additionalProperties": {"type": "integer"}},
            "succeeded": {"type": "integer"},
            "failed": {"type": "integer"},
            "in_flight": {"type": "integer"},
            "waiting": {"type": "integer"},
        },
    },
}


def _op(
    method: str,
    summary: str,
    schema: dict[str, Any],
    params: tuple[str, ...] | list[str] = (),
    body: bool = False,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "summary": summary,
        "parameters": [
            {
                "name": p,
                "in": "path" if p in ("vehicle", "id", "what") else "query",
                "required": p in ("vehicle", "id", "what"),
                "schema": {"type": "string"},
            }
            for p in params
        ],
        "responses": {
            "200" if method == "get" else "201": {
                "description": "OK",
                "content": {"application/json": {"schema": schema}},
            },
            **{
                str(c): {"description": d}
                for c, d in (
                    (400, "bad input"),
                    (401, "no token"),
                    (403, "no right"),
                    (404, "not in the caller's tenant"),
                )
            },
        },
    }
    if body:
        out["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    return {method: out}


def _array(name: str) -> dict[str, Any]:
    return {"type": "array", "items": _schema_ref(name)}


PATHS: dict[str, Any] = {
    "/api/vehicles/{vehicle}/commands": {
        **_op("get", "a vehicle's commands, newest first", _array("Command"), ["vehicle", "limit"]),
        **_op(
            "post",
            "send a command: exactly one of actuate {path: value}, scene {id}, fleet_event {type, data}; "
            "ttl_s (default 30); right 'command' (owner, dispatcher)",
            _schema_ref("Command"),
            ["vehicle"],
            body=True,
        ),
    },
    "/api/vehicles/{vehicle}/campaigns": _op(
        "post",
        "send a campaign (docs/uplink.md) to a vehicle, signed; its status follows the hub's campaign-ack "
        "(accepted, refused, stale, removed); right 'command'",
        _schema_ref("Command"),
        ["vehicle"],
        body=True,
    ),
    "/api/commands": _op(
        "get", "commands, newest first", _array("Command"), ["vehicle", "status", "rollout", "limit"]
    ),
    "/api/commands/{id}": _op("get", "one command and its outcome", _schema_ref("Command"), ["id"]),
    "/api/accessories": _op(
        "get",
        "the fitted accessories across the fleet (filters: vehicle, model, firmware, vendor_id, product_id)",
        _array("Accessory"),
        ["vehicle", "model", "firmware", "vendor_id", "product_id", "limit"],
    ),
    "/api/vehicles/{vehicle}/accessories": _op(
        "get", "what is fitted in one vehicle", _array("Accessory"), ["vehicle"]
    ),
    "/api/firmware": {
        **_op("get", "the firmware ledger", _array("Release"), ["vendor_id", "product_id"]),
        **_op(
            "post",
            "upload a vendor-signed release: {release, image_base64}; right 'firmware' (owner)",
            _schema_ref("Release"),
            body=True,
        ),
    },
    "/api/rollouts": {
        **_op("get", "the tenant's rollouts with their progress", _array("Rollout")),
        **_op(
            "post",
            "roll a release out: {release, percent, max_failures, max_in_flight, base_url}; right 'firmware'",
            _schema_ref("Rollout"),
            body=True,
        ),
    },
    "/api/rollouts/{id}": _op("get", "one rollout's progress", _schema_ref("Rollout"), ["id"]),
    "/api/rollouts/{id}/{what}": _op(
        "post",
        "pause, resume, abort, or widen ({percent}) a rollout",
        _schema_ref("Rollout"),
        ["id", "what"],
        body=True,
    ),
}
