"""``/api/v1/automations`` and ``/api/v1/scenes``: the same definitions as the files, their state,
traces, a dry run, enable/disable/trigger; scenes listed, applied and snapshotted.

Every route checks the caller's token before it reads a body; bodies are bounded. A definition
sent here acts with its sender's grant and may set only what the sender's token may actuate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from anycar.api.auth import Action, Grants
from anycar.api.rest import API_PREFIX, RouteGroup, caller_grants, ok_responses
from anycar.automations import model as m
from anycar.automations.source import Document, SourceError, parse_yaml
from anycar.errors import AnycarError, ConfigError, InvalidValue
from anycar.model.datatypes import ValueRejected

if TYPE_CHECKING:
    from anycar.automations.component import AutomationsComponent
    from anycar.automations.engine import Engine

MAX_BODY = 256 * 1024


class Forbidden(AnycarError):
    code = 403
    reason = "forbidden"


class NotFound(AnycarError):
    code = 404
    reason = "not_found"


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise ConfigError(f"request body is over {MAX_BODY} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise ConfigError(f"request body is over {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _mapping(request: Request) -> dict[str, Any]:
    raw = await _body(request)
    if not raw.strip():
        return {}
    try:
        doc = parse_yaml(raw.decode("utf-8"), "request body")
    except (SourceError, UnicodeDecodeError) as exc:
        raise ConfigError(str(exc)) from None
    if not isinstance(doc.data, dict):
        raise ConfigError("request body must be a JSON or YAML object")
    return doc.data


def _limit(request: Request, default: int = 20) -> int:
    try:
        return max(1, min(100, int(request.query_params.get("limit", str(default)))))
    except ValueError:
        raise ConfigError("limit must be an integer") from None


def rest_group(component: AutomationsComponent) -> RouteGroup:
    def engine() -> Engine:
        if component.engine is None:
            raise ConfigError("automations are not running")
        return component.engine

    def automation(request: Request) -> Any:
        ident = request.path_params["id"]
        a = engine().automations.get(ident)
        if a is None:
            raise NotFound(f"no automation {ident!r} (see GET {API_PREFIX}/automations)")
        return a

    def may_actuate(grants: Grants, targets: Any) -> None:
        for path in targets:
            grants.check(Action.ACTUATE, path)

    def may_see(grants: Grants, a: Any) -> None:
        """Reading an automation (its definition, traces, a dry run) needs read rights on every
        signal it reads or sets: its traces show their values."""
        for path in (*m.read_paths(a), *a.targets):
            grants.check(Action.READ, path)

    def sees(grants: Grants, a: Any) -> bool:
        try:
            may_see(grants, a)
        except AnycarError:
            return False
        return True

    async def list_all(request: Request) -> JSONResponse:
        grants = caller_grants(request)
        e = engine()
        return JSONResponse(
            {
                "automations": [e.describe(a) for a in e.automations.values() if sees(grants, a)],
                "not_active": [
                    s.to_dict() for s in e.status.values() if s.state not in ("active", "disabled")
                ],
                "problems": [p.to_dict() for p in e.file_problems],
                "health": e.health(),
            }
        )

    async def health(request: Request) -> JSONResponse:
        caller_grants(request)
        return JSONResponse(engine().health())

    async def add(request: Request) -> JSONResponse:
        grants = caller_grants(request)  # authenticated before the body is read
        raw = await _body(request)
        e = engine()
        try:
            doc = parse_yaml(raw.decode("utf-8", errors="replace"), "request body")
        except SourceError as exc:
            return _invalid([exc.problem.to_dict()])
        data = doc.data
        if isinstance(data, dict) and not grants.open:
            for kind in ("automations", "scenes"):
                for item in data.get(kind) or []:
                    owner = (
                        item.setdefault("owner", grants.subject) if isinstance(item, dict) else grants.subject
                    )
                    if owner != grants.subject:
                        raise Forbidden(
                            f"a definition sent by {grants.subject} acts as {grants.subject}, not {owner}"
                        )
        problems = e.check_document(doc)
        if problems:
            return _invalid([p.to_dict() for p in problems])
        new_scenes, new_automations = e.compiled(doc)
        for scene in new_scenes:
            may_actuate(grants, scene.targets)
        for a in new_automations:  # never more than the sender's token: what it sets and reads
            may_actuate(grants, a.targets)
            may_see(grants, a)
        items = [(kind, item) for kind in ("scene", "automation") for item in data.get(kind + "s") or []]
        e.put_rest(items)
        added = [f"{kind}:{item['id']}" for kind, item in items]
        refused = [
            e.status[i.split(":", 1)[1]].to_dict()
            for i in added
            if i.startswith("automation:")
            and e.status.get(i.split(":", 1)[1]) is not None
            and e.status[i.split(":", 1)[1]].state == "refused"
        ]
        return JSONResponse({"added": added, "refused": refused})

    async def show(request: Request) -> JSONResponse:
        grants = caller_grants(request)
        a = automation(request)
        may_see(grants, a)
        return JSONResponse({**engine().describe(a), "definition": a.raw})

    async def delete(request: Request) -> JSONResponse:
        grants = caller_grants(request)
        a = automation(request)
        may_actuate(grants, a.targets)
        if a.origin != "rest" or not engine().drop_rest("automation", a.id):
            raise ConfigError(f"{a.id} comes from {a.where}; edit or remove that file instead")
        return JSONResponse({"deleted": a.id})

    async def set_enabled(request: Request, enabled: bool) -> JSONResponse:
        grants = caller_grants(request)
        a = automation(request)
        may_actuate(grants, a.targets)
        engine().set_enabled(a.id, enabled)
        return JSONResponse({"id": a.id, "enabled": enabled})

    async def enable(request: Request) -> JSONResponse:
        return await set_enabled(request, True)

    async def disable(request: Request) -> JSONResponse:
        return await set_enabled(request, False)

    async def trigger(request: Request) -> JSONResponse:
        grants = caller_grants(request)
        a = automation(request)
        may_actuate(grants, a.targets)
        run_id = engine().trigger(a.id)
        return JSONResponse({"id": a.id, "run_id": run_id, "started": run_id is not None})

    async def test(request: Request) -> JSONResponse:
        grants = caller_grants(request)
        a = automation(request)
        may_see(grants, a)
        body = await _mapping(request)
        at = body.get("at", {})
        if not isinstance(at, dict):
            raise ConfigError("'at' must be an object of VSS path -> value")
        e = engine()
        overrides: dict[str, Any] = {}
        for path, value in at.items():
            if path == "driving_state":
                overrides[path] = str(value)
                continue
            sig = e.broker.catalog.get(str(path))
            try:
                overrides[sig.path] = sig.validate(value) if value is not None else None
            except ValueRejected as exc:
                raise InvalidValue(sig.path, str(exc)) from None
        return JSONResponse(await e.dry_run(a.id, overrides))

    async def traces(request: Request) -> JSONResponse:
        grants = caller_grants(request)
        a = automation(request)
        may_see(grants, a)
        return JSONResponse({"id": a.id, "traces": engine().traces(a.id, _limit(request))})

    async def scenes(request: Request) -> JSONResponse:
        grants = caller_grants(request)
        visible = [
            s for s in engine().scenes.values() if all(grants.allows(Action.READ, p) for p in s.targets)
        ]
        return JSONResponse({"scenes": [s.to_dict() for s in visible]})

    async def apply(request: Request) -> JSONResponse:
        grants = caller_grants(request)
        ident = request.path_params["id"]
        scene = engine().scenes.get(ident)
        if scene is None:
            raise NotFound(f"no scene {ident!r}")
        may_actuate(grants, scene.targets)
        outcomes = await engine().acting.apply_scene(scene)
        return JSONResponse({"scene": scene.id, "outcomes": outcomes})

    async def snapshot(request: Request) -> JSONResponse:
        grants = caller_grants(request)
        body = await _mapping(request)
        ident, patterns = body.get("id"), body.get("patterns")
        if (
            not isinstance(ident, str)
            or not isinstance(patterns, list)
            or not all(isinstance(p, str) for p in patterns)
        ):
            raise ConfigError(
                "snapshot needs 'id' (a scene id) and 'patterns' (a list of VSS paths or patterns)"
            )
        e = engine()
        scene = e.acting.snapshot(ident, patterns, str(body.get("name", "")))
        may_actuate(grants, scene["targets"])
        if body.get("save"):
            if not grants.open:
                scene["owner"] = grants.subject
            problems = e.check_document(Document("snapshot", {"scenes": [scene]}))
            if problems:
                return _invalid([p.to_dict() for p in problems])
            e.put_rest([("scene", scene)])
        return JSONResponse({"scene": scene, "saved": bool(body.get("save"))})

    p = API_PREFIX
    tag = "automations"

    def op(summary: str, **extra: Any) -> dict[str, Any]:
        """An operation: 200, 401, 403, and 400 for input, 404 for a named resource."""
        responses = ok_responses(summary)
        if "parameters" in extra or "requestBody" in extra:
            responses["400"] = _error(
                "malformed parameter or body, or an invalid definition (the message names it)"
            )
        if any(p.get("in") == "path" for p in extra.get("parameters", [])) or "requestBody" in extra:
            responses["404"] = _error("no such automation or scene, or an unknown VSS path")
        return {"tags": [tag], "summary": summary, "responses": responses, **extra}

    id_param = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
    doc_body = {
        "description": "a definitions document (YAML or JSON) as in the files: automations and/or scenes",
        "content": {
            "application/yaml": {"schema": {"$ref": "#/components/schemas/AutomationsDocument"}},
            "application/json": {"schema": {"$ref": "#/components/schemas/AutomationsDocument"}},
        },
    }
    from anycar.automations.source import schema

    return RouteGroup(
        name=tag,
        description="Automations (trigger, condition, action) and scenes; their state, traces and dry runs.",
        routes=[
            Route(f"{p}/automations", list_all, methods=["GET"]),
            Route(f"{p}/automations", add, methods=["POST"]),
            Route(f"{p}/automations/health", health, methods=["GET"]),
            Route(f"{p}/automations/{{id}}", show, methods=["GET"]),
            Route(f"{p}/automations/{{id}}", delete, methods=["DELETE"]),
            Route(f"{p}/automations/{{id}}/traces", traces, methods=["GET"]),
            Route(f"{p}/automations/{{id}}/trigger", trigger, methods=["POST"]),
            Route(f"{p}/automations/{{id}}/test", test, methods=["POST"]),
            Route(f"{p}/automations/{{id}}/enable", enable, methods=["POST"]),
            Route(f"{p}/automations/{{id}}/disable", disable, methods=["POST"]),
            Route(f"{p}/scenes", scenes, methods=["GET"]),
            Route(f"{p}/scenes/snapshot", snapshot, methods=["POST"]),
            Route(f"{p}/scenes/{{id}}/apply", apply, methods=["POST"]),
        ],
        paths={
            f"{p}/automations": {
                "get": op(
                    "Every automation with its state and last run, the refused ones with why, and health"
                ),
                "post": op(
                    "Add or replace automations and scenes (checked like files; 400 lists every problem)",
                    requestBody=doc_body,
                ),
            },
            f"{p}/automations/health": {
                "get": op("Database state (ok, failing: running from memory), counters")
            },
            f"{p}/automations/{{id}}": {
                "get": op("One automation and its definition", parameters=id_param),
                "delete": op("Remove an automation given over REST", parameters=id_param),
            },
            f"{p}/automations/{{id}}/traces": {
                "get": op(
                    "The last runs, newest first: trigger, values seen, conditions and why, each action's outcome and duration",
                    parameters=[
                        *id_param,
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "default": 20}},
                    ],
                ),
            },
            f"{p}/automations/{{id}}/trigger": {
                "post": op("Run it now (conditions are checked)", parameters=id_param)
            },
            f"{p}/automations/{{id}}/test": {
                "post": op(
                    "Dry run: evaluate with the given values and say what would happen, without acting",
                    parameters=id_param,
                    requestBody={
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"at": {"type": "object", "additionalProperties": True}},
                                }
                            }
                        }
                    },
                ),
            },
            f"{p}/automations/{{id}}/enable": {
                "post": op("Enable (kept across restarts)", parameters=id_param)
            },
            f"{p}/automations/{{id}}/disable": {
                "post": op("Disable (kept across restarts); cancels its runs", parameters=id_param)
            },
            f"{p}/scenes": {"get": op("Scenes and their targets")},
            f"{p}/scenes/{{id}}/apply": {
                "post": op("Apply a scene: one batch, one outcome per signal", parameters=id_param)
            },
            f"{p}/scenes/snapshot": {
                "post": op(
                    "A scene from the current values of the actuators under some patterns (save: keep it)",
                    requestBody={
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["id", "patterns"],
                                    "properties": {
                                        "id": {"type": "string"},
                                        "name": {"type": "string"},
                                        "save": {"type": "boolean"},
                                        "patterns": {"type": "array", "items": {"type": "string"}},
                                    },
                                }
                            }
                        }
                    },
                ),
            },
        },
        schemas={"AutomationsDocument": {k: v for k, v in schema().items() if k not in ("$schema", "$id")}},
    )


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _invalid(problems: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse(
        {
            "error": {
                "code": 400,
                "reason": "invalid_definition",
                "message": problems[0]["message"] if problems else "invalid",
            },
            "problems": problems,
        },
        status_code=400,
    )
