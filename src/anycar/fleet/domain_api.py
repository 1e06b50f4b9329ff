"""The domain's REST routes (trips, stops, geofences, geofence events, alerts, rules, webhooks,
reports), mounted into the fleet API by ``anycar.fleet.api``, with their OpenAPI paths.

As in the rest of the API: the token is checked first (before any parameter or body is read),
then the role (every role reads; owner and dispatcher write geofences, rules and webhooks and
acknowledge alerts), and every query is given the caller's tenant only. Bodies are bounded
(256 KiB) and read only after authentication; text filters are bounded and passed as bound
parameters, never into SQL text.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from anycar.fleet import db, reports, rules, webhooks
from anycar.fleet import domain_queries as dq
from anycar.fleet.geofences import GeofenceError
from anycar.fleet.params import ApiError, error, query_float, query_int
from anycar.fleet.registry import User, user_for_token

MAX_LIMIT = 1000
MAX_BODY = 256 * 1024
WRITERS = frozenset({"owner", "dispatcher"})
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _text(request: Request, name: str, max_len: int) -> str | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if len(raw) > max_len:
        raise ApiError(400, "bad_parameter", f"{name}: at most {max_len} characters")
    return raw


def _window(request: Request) -> tuple[float, float]:
    day = _text(request, "day", 10)
    if day is not None:
        try:
            p = reports.period(day=day)
        except reports.ReportError as exc:
            raise ApiError(400, "bad_parameter", str(exc)) from None
        return p["start"], p["end"]
    return query_float(request, "since", 0.0), query_float(request, "until", 1e12)


def _path_int(request: Request, name: str) -> int:
    raw = str(request.path_params[name])
    if not raw.isdigit() or len(raw) > 12:
        raise ApiError(404, "not_found", f"no such {name}")
    return int(raw)


def domain_routes(
    engine: Engine,
    on_webhooks_changed: Callable[[int], None] | None = None,
    status: Callable[[], dict[str, Any]] | None = None,
) -> list[Route]:
    """The routes, for ``Starlette(routes=[…])``; ``status`` answers ``/api/domain/status``."""

    def user_of(request: Request, write: bool = False) -> User:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        user = user_for_token(engine, token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise ApiError(
                401, "unauthenticated", "Authorization: Bearer TOKEN needed (anycar fleet user add)"
            )
        if "read" not in user.rights or (write and user.role not in WRITERS):
            raise ApiError(403, "forbidden", f"role {user.role} may not {'change' if write else 'read'} this")
        return user

    async def body_of(request: Request) -> Any:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            raise ApiError(413, "too_large", f"body: at most {MAX_BODY} bytes")
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_BODY:
                raise ApiError(413, "too_large", f"body: at most {MAX_BODY} bytes")
        if not raw:
            return None
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            raise ApiError(400, "bad_body", "body: not JSON") from None

    def handler(
        write: bool, answer: Callable[[Request, User, Any], Any], *, body: bool = False, status: int = 200
    ) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            try:
                user = await asyncio.to_thread(user_of, request, write)
                doc = await body_of(request) if body else None
                result = await asyncio.to_thread(answer, request, user, doc)
            except ApiError as exc:
                return error(exc.status, exc.reason, exc.message)
            except (GeofenceError, rules.RulesError, webhooks.WebhookError, reports.ReportError) as exc:
                return error(400, "bad_request", str(exc))
            if isinstance(result, Response):
                return result
            if status == 204:
                return Response(status_code=204)
            return JSONResponse(result, status_code=status)

        return endpoint

    def vehicle_filter(request: Request) -> str | None:
        return _text(request, "vehicle", 64)

    def limit(request: Request) -> int:
        value = query_int(request, "limit", 100, 1, MAX_LIMIT)
        return 100 if value is None else value

    # ---- trips and stops -------------------------------------------------------------------
    def trip_list(request: Request, user: User, _: Any) -> Any:
        since, until = _window(request)
        return dq.trip_list(
            engine,
            user.tenant_id,
            wire_id=vehicle_filter(request),
            since=since,
            until=until,
            limit=limit(request),
        )

    def vehicle_trips(request: Request, user: User, _: Any) -> Any:
        wire = str(request.path_params["vehicle"])[:65]
        if len(wire) > 64 or dq.vehicle_id(engine, user.tenant_id, wire) is None:
            raise ApiError(404, "not_found", "no such vehicle")
        since, until = _window(request)
        return dq.trip_list(
            engine, user.tenant_id, wire_id=wire, since=since, until=until, limit=MAX_LIMIT, oldest_first=True
        )

    def stop_list(request: Request, user: User, _: Any) -> Any:
        since, until = _window(request)
        return dq.stop_list(
            engine,
            user.tenant_id,
            wire_id=vehicle_filter(request),
            since=since,
            until=until,
            limit=limit(request),
        )

    # ---- geofences -------------------------------------------------------------------------
    def fences(request: Request, user: User, _: Any) -> Any:
        return dq.geofence_collection(engine, user.tenant_id)

    def fence_add(request: Request, user: User, doc: Any) -> Any:
        return dq.add_geofence(engine, user.tenant_id, doc)

    def fence_get(request: Request, user: User, _: Any) -> Any:
        found = dq.geofence(engine, user.tenant_id, _path_int(request, "geofence"))
        if found is None:
            raise ApiError(404, "not_found", "no such geofence")
        return found

    def fence_put(request: Request, user: User, doc: Any) -> Any:
        found = dq.replace_geofence(engine, user.tenant_id, _path_int(request, "geofence"), doc)
        if found is None:
            raise ApiError(404, "not_found", "no such geofence")
        return found

    def fence_delete(request: Request, user: User, _: Any) -> Any:
        if not dq.delete_geofence(engine, user.tenant_id, _path_int(request, "geofence")):
            raise ApiError(404, "not_found", "no such geofence")
        return None

    def fence_events(request: Request, user: User, _: Any) -> Any:
        return dq.geofence_event_list(
            engine,
            user.tenant_id,
            wire_id=vehicle_filter(request),
            fence_id=query_int(request, "geofence", None, 0, 2**31),
            since=query_float(request, "since", 0.0),
            limit=limit(request),
        )

    # ---- alerts ----------------------------------------------------------------------------
    def alert_list(request: Request, user: User, _: Any) -> Any:
        state = _text(request, "state", 16) or "all"
        if state not in dq.STATES:
            raise ApiError(400, "bad_parameter", f"state: one of {', '.join(dq.STATES)}")
        since, until = _window(request)
        return dq.alert_list(
            engine,
            user.tenant_id,
            wire_id=vehicle_filter(request),
            type_=_text(request, "type", 32),
            state=state,
            since=since,
            until=until,
            limit=limit(request),
        )

    def alert_ack(request: Request, user: User, doc: Any) -> Any:
        note = None
        if doc is not None:
            if (
                not isinstance(doc, dict)
                or not isinstance(doc.get("note", ""), str)
                or len(doc.get("note", "")) > 1000
            ):
                raise ApiError(400, "bad_body", 'body: {"note": "at most 1000 characters"} or nothing')
            note = doc.get("note") or None
        found = dq.acknowledge(engine, user.tenant_id, _path_int(request, "alert"), user.name, note)
        if found is None:
            raise ApiError(404, "not_found", "no such alert")
        return found

    # ---- rules -----------------------------------------------------------------------------
    def rules_get(request: Request, user: User, _: Any) -> Any:
        with engine.connect() as conn:
            override = rules.override_of(conn, user.tenant_id)
        return {"defaults": rules.defaults(), "override": override, "effective": rules.merge(override)}

    def rules_put(request: Request, user: User, doc: Any) -> Any:
        effective = rules.set_override(engine, user.tenant_id, doc)
        return {"defaults": rules.defaults(), "override": rules.check_override(doc), "effective": effective}

    def rules_delete(request: Request, user: User, _: Any) -> Any:
        rules.clear_override(engine, user.tenant_id)
        return None

    # ---- webhooks --------------------------------------------------------------------------
    def hooks(request: Request, user: User, _: Any) -> Any:
        return webhooks.listing(engine, user.tenant_id)

    def hook_add(request: Request, user: User, doc: Any) -> Any:
        if not isinstance(doc, dict):
            raise ApiError(400, "bad_body", 'body: {"url": "https://…", "events": ["alert", "geofence"]}')
        made = webhooks.add(engine, user.tenant_id, doc.get("url"), doc.get("events"))
        if on_webhooks_changed is not None:
            on_webhooks_changed(user.tenant_id)
        return made

    def hook_delete(request: Request, user: User, _: Any) -> Any:
        if not webhooks.remove(engine, user.tenant_id, _path_int(request, "webhook")):
            raise ApiError(404, "not_found", "no such webhook")
        if on_webhooks_changed is not None:
            on_webhooks_changed(user.tenant_id)
        return None

    # ---- reports ---------------------------------------------------------------------------
    def report_period(request: Request) -> dict[str, Any]:
        return reports.period(day=_text(request, "day", 10), week=_text(request, "week", 8))

    def render(request: Request, user: User, report: dict[str, Any]) -> Any:
        fmt = _text(request, "format", 8) or "json"
        if fmt == "json":
            return report
        if fmt == "csv":
            name = f"anycar-{report['report']}-{report['period']['label']}.csv"
            return Response(
                reports.to_csv(report),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{name}"'},
            )
        if fmt == "html":
            with engine.connect() as conn:
                tenant = (
                    conn.execute(select(db.tenants.c.name).where(db.tenants.c.id == user.tenant_id)).scalar()
                    or ""
                )
            return Response(
                reports.to_html(report, tenant),
                media_type="text/html; charset=utf-8",
                headers={"Content-Security-Policy": REPORT_CSP, "X-Content-Type-Options": "nosniff"},
            )
        raise ApiError(400, "bad_parameter", "format: json, csv or html")

    def fleet_report(request: Request, user: User, _: Any) -> Any:
        return render(request, user, reports.fleet_report(engine, user.tenant_id, report_period(request)))

    def vehicle_report(request: Request, user: User, _: Any) -> Any:
        wire = str(request.path_params["vehicle"])[:65]
        vid = dq.vehicle_id(engine, user.tenant_id, wire) if len(wire) <= 64 else None
        if vid is None:
            raise ApiError(404, "not_found", "no such vehicle")
        return render(
            request, user, reports.vehicle_report(engine, user.tenant_id, vid, report_period(request))
        )

    def domain_status(request: Request, user: User, _: Any) -> Any:
        if status is None:
            raise ApiError(404, "not_found", "no domain runner in this process")
        return status()

    R, W = False, True
    return [
        Route("/api/domain/status", handler(W, domain_status)),
        Route("/api/trips", handler(R, trip_list)),
        Route("/api/vehicles/{vehicle}/trips", handler(R, vehicle_trips)),
        Route("/api/stops", handler(R, stop_list)),
        Route("/api/geofences", handler(R, fences), methods=["GET"]),
        Route("/api/geofences", handler(W, fence_add, body=True, status=201), methods=["POST"]),
        Route("/api/geofences/{geofence}", handler(R, fence_get), methods=["GET"]),
        Route("/api/geofences/{geofence}", handler(W, fence_put, body=True), methods=["PUT"]),
        Route("/api/geofences/{geofence}", handler(W, fence_delete, status=204), methods=["DELETE"]),
        Route("/api/geofence-events", handler(R, fence_events)),
        Route("/api/alerts", handler(R, alert_list)),
        Route("/api/alerts/{alert}/ack", handler(W, alert_ack, body=True), methods=["POST"]),
        Route("/api/rules", handler(R, rules_get), methods=["GET"]),
        Route("/api/rules", handler(W, rules_put, body=True), methods=["PUT"]),
        Route("/api/rules", handler(W, rules_delete, status=204), methods=["DELETE"]),
        Route("/api/webhooks", handler(W, hooks), methods=["GET"]),
        Route("/api/webhooks", handler(W, hook_add, body=True, status=201), methods=["POST"]),
        Route("/api/webhooks/{webhook}", handler(W, hook_delete, status=204), methods=["DELETE"]),
        Route("/api/reports/fleet", handler(R, fleet_report)),
        Route("/api/reports/vehicles/{vehicle}", handler(R, vehicle_report)),
    ]


# ---- OpenAPI -----------------------------------------------------------------------------------
def _q(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "schema": schema,
        **({"description": description} if description else {}),
    }


def _p(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


_STR64 = {"type": "string", "maxLength": 64}
_LIMIT = _q("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT})
_SINCE = _q("since", {"type": "number"}, "epoch seconds")
_UNTIL = _q("until", {"type": "number"}, "epoch seconds")
_DAY = _q("day", {"type": "string", "format": "date"}, "a UTC day YYYY-MM-DD")
_WEEK = _q("week", {"type": "string", "pattern": r"^\d{4}-W\d{2}$"}, "an ISO week YYYY-Www")
_FORMAT = _q("format", {"enum": ["json", "csv", "html"]})
_ID = {"type": "integer", "minimum": 0}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _arr(name: str) -> dict[str, Any]:
    return {"type": "array", "items": _ref(name)}


def _op(
    summary: str,
    ok: dict[str, Any] | None,
    params: list[dict[str, Any]],
    *,
    body: dict[str, Any] | None = None,
    status: str = "200",
    writers: bool = False,
) -> dict[str, Any]:
    errors = {
        str(c): {"description": d, "content": {"application/json": {"schema": _ref("Error")}}}
        for c, d in (
            (400, "a bad parameter or body (the message names the field)"),
            (401, "no or unknown token"),
            (403, "the role lacks the right" + (" (owner and dispatcher write)" if writers else "")),
            (404, "not found in the caller's tenant"),
        )
    }
    responses: dict[str, Any] = {
        status: {"description": "OK"}
        if ok is None
        else {"description": "OK", "content": {"application/json": {"schema": ok}}}
    }
    op: dict[str, Any] = {"summary": summary, "parameters": params, "responses": {**responses, **errors}}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


def _report_responses(op: dict[str, Any]) -> dict[str, Any]:
    op["responses"]["200"]["content"] = {
        "application/json": {"schema": _ref("Report")},
        "text/csv": {"schema": {"type": "string"}},
        "text/html": {"schema": {"type": "string"}},
    }
    return op


def domain_paths() -> dict[str, Any]:
    vehicle = _p("vehicle", _STR64)
    return {
        "/api/trips": {
            "get": _op(
                "trips, newest first (the one under way: open, ending at its latest sample)",
                _arr("Trip"),
                [_q("vehicle", _STR64), _DAY, _SINCE, _UNTIL, _LIMIT],
            )
        },
        "/api/vehicles/{vehicle}/trips": {
            "get": _op("one vehicle's trips, oldest first", _arr("Trip"), [vehicle, _DAY, _SINCE, _UNTIL])
        },
        "/api/stops": {
            "get": _op(
                "stops, newest first", _arr("Stop"), [_q("vehicle", _STR64), _DAY, _SINCE, _UNTIL, _LIMIT]
            )
        },
        "/api/geofences": {
            "get": _op("the tenant's geofences", _ref("FeatureCollection"), []),
            "post": _op(
                "add a geofence (Polygon, or Point + properties.radius_m)",
                _ref("Feature"),
                [],
                body=_ref("Feature"),
                status="201",
                writers=True,
            ),
        },
        "/api/geofences/{geofence}": {
            "get": _op("one geofence", _ref("Feature"), [_p("geofence", _ID)]),
            "put": _op(
                "replace a geofence",
                _ref("Feature"),
                [_p("geofence", _ID)],
                body=_ref("Feature"),
                writers=True,
            ),
            "delete": _op("delete a geofence", None, [_p("geofence", _ID)], status="204", writers=True),
        },
        "/api/geofence-events": {
            "get": _op(
                "enter and exit events, newest first",
                _arr("GeofenceEvent"),
                [_q("vehicle", _STR64), _q("geofence", _ID), _SINCE, _LIMIT],
            )
        },
        "/api/alerts": {
            "get": _op(
                "alerts, newest first",
                _arr("Alert"),
                [
                    _q("vehicle", _STR64),
                    _q("type", {"type": "string", "maxLength": 32}),
                    _q("state", {"enum": list(dq.STATES)}),
                    _DAY,
                    _SINCE,
                    _UNTIL,
                    _LIMIT,
                ],
            )
        },
        "/api/alerts/{alert}/ack": {
            "post": _op(
                "acknowledge an alert",
                _ref("Alert"),
                [_p("alert", _ID)],
                body={"type": "object", "properties": {"note": {"type": "string", "maxLength": 1000}}},
                writers=True,
            )
        },
        "/api/rules": {
            "get": _op("the tenant's alert rules: defaults, override, effective", _ref("Rules"), []),
            "put": _op(
                "set the tenant's override (any subset of rules.yaml)",
                _ref("Rules"),
                [],
                body={"type": "object"},
                writers=True,
            ),
            "delete": _op("back to the defaults", None, [], status="204", writers=True),
        },
        "/api/webhooks": {
            "get": _op("the tenant's webhooks (no secrets)", _arr("Webhook"), [], writers=True),
            "post": _op(
                "add a webhook; the answer has its HMAC secret, shown once",
                _ref("Webhook"),
                [],
                body={
                    "type": "object",
                    "required": ["url"],
                    "properties": {
                        "url": {"type": "string", "format": "uri", "maxLength": 2048},
                        "events": {"type": "array", "items": {"enum": list(webhooks.KINDS)}},
                    },
                },
                status="201",
                writers=True,
            ),
        },
        "/api/webhooks/{webhook}": {
            "delete": _op("delete a webhook", None, [_p("webhook", _ID)], status="204", writers=True)
        },
        "/api/domain/status": {
            "get": _op(
                "this process's domain runner, offline checker and webhook sender: running, crashes, errors, queue",
                {"type": "object"},
                [],
                writers=True,
            )
        },
        "/api/reports/fleet": {
            "get": _report_responses(
                _op("the fleet report of a day or week", _ref("Report"), [_DAY, _WEEK, _FORMAT])
            )
        },
        "/api/reports/vehicles/{vehicle}": {
            "get": _report_responses(
                _op("one vehicle's report of a day or week", _ref("Report"), [vehicle, _DAY, _WEEK, _FORMAT])
            )
        },
    }


_NUM = {"type": ["number", "null"]}
DOMAIN_SCHEMAS: dict[str, Any] = {
    "Trip": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "vehicle": {"type": "string"},
            "start_ts": {"type": "number"},
            "end_ts": _NUM,
            "duration_s": _NUM,
            "start_lat": _NUM,
            "start_lon": _NUM,
            "end_lat": _NUM,
            "end_lon": _NUM,
            "distance_m": {"type": "number"},
            "max_speed": _NUM,
            "avg_speed": _NUM,
            "energy_kwh": _NUM,
            "soc_start": _NUM,
            "soc_end": _NUM,
            "open": {"type": "boolean"},
        },
    },
    "Stop": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "vehicle": {"type": "string"},
            "start_ts": {"type": "number"},
            "end_ts": _NUM,
            "duration_s": _NUM,
            "lat": _NUM,
            "lon": _NUM,
            "open": {"type": "boolean"},
        },
    },
    "Feature": {
        "type": "object",
        "required": ["type", "geometry", "properties"],
        "properties": {
            "type": {"const": "Feature"},
            "id": {"type": "integer"},
            "geometry": {
                "type": "object",
                "properties": {"type": {"enum": ["Polygon", "Point"]}, "coordinates": {"type": "array"}},
            },
            "properties": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "maxLength": 128},
                    "radius_m": {"type": "number"},
                    "speed_limit_kmh": {"type": "number"},
                },
            },
        },
    },
    "FeatureCollection": {
        "type": "object",
        "properties": {"type": {"const": "FeatureCollection"}, "features": _arr("Feature")},
    },
    "GeofenceEvent": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "vehicle": {"type": "string"},
            "geofence_id": {"type": "integer"},
            "geofence_name": {"type": "string"},
            "ts": {"type": "number"},
            "kind": {"enum": ["enter", "exit"]},
            "lat": _NUM,
            "lon": _NUM,
        },
    },
    "Alert": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "vehicle": {"type": "string"},
            "ts": {"type": "number"},
            "type": {"type": "string"},
            "severity": {"enum": list(rules.SEVERITIES)},
            "message": {"type": "string"},
            "data": {},
            "lat": _NUM,
            "lon": _NUM,
            "cleared_ts": _NUM,
            "ack_ts": _NUM,
            "ack_by": {"type": ["string", "null"]},
            "ack_note": {"type": ["string", "null"]},
            "late": {
                "type": "boolean",
                "description": "raised from a sample that arrived late; ts is its time",
            },
            "raised_ts": _NUM,
            "withdrawn_ts": _NUM,
            "withdrawn_reason": {
                "type": ["string", "null"],
                "description": "why data that came later withdrew it",
            },
        },
    },
    "Rules": {
        "type": "object",
        "properties": {
            "defaults": {"type": "object"},
            "override": {"type": "object"},
            "effective": {"type": "object"},
        },
    },
    "Webhook": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "url": {"type": "string"},
            "events": {"type": "array", "items": {"type": "string"}},
            "secret": {"type": "string", "description": "only in the answer to POST"},
            "delivered": {"type": "integer"},
            "failed": {"type": "integer"},
            "last_status": {"type": ["string", "null"]},
        },
    },
    "Report": {
        "type": "object",
        "properties": {
            "report": {"enum": ["fleet", "vehicle"]},
            "period": {"type": "object"},
            "vehicles": {"type": "array"},
            "days": {"type": "array"},
            "totals": {"type": "object"},
        },
    },
}
