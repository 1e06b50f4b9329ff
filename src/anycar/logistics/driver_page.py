"""delivery-exec: the driver's phone page, for vehicles without a display (or without a hub).

A dispatcher makes a link for one vehicle (``POST /api/vehicles/{vehicle}/driver-link``,
dispatch right): ``/driver/TOKEN``, valid ``DRIVER_LINK_S``. The token is the only credential,
stored as its SHA-256, scoped to that vehicle in that tenant: the page shows the vehicle's next
stop with its live ETA and reports an outcome (delivered / failed) with the recipient's PIN
and a signature drawn on the screen, for the orders of that vehicle only. A phone report is a
proof of delivery of its own kind (``source: phone``): PIN checked, signature hashed and kept
as a thumbnail; it is not signed by a hub (``verified: false``), and that is not an exception.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import secrets
import time
from importlib import resources
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Engine
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from anycar.fleet import db
from anycar.fleet.alerting import alert
from anycar.fleet.domain_tables import alerts
from anycar.fleet.registry import user_for_token
from anycar.logistics.api import RIGHTS
from anycar.logistics.execution import outbox_put, pin_digest
from anycar.logistics.execution_tables import deliveries, driver_links, pods

DRIVER_LINK_S = 16 * 3600.0
MAX_BODY = 96 * 1024  # a signature PNG of a small canvas is a few KiB
CSP = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:"
D = deliveries.c


def _asset(name: str) -> str:
    return (resources.files("anycar.logistics") / "data" / name).read_text("utf-8")


def _error(status: int, reason: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": status, "reason": reason, "message": message}}, status_code=status)


def make_link(
    engine: Engine, tenant_id: int, vehicle: str, now: float | None = None
) -> dict[str, Any] | None:
    now = time.time() if now is None else now
    v = db.vehicles.c
    token = secrets.token_urlsafe(24)
    with engine.begin() as conn:
        vid = conn.execute(
            select(v.id).where(and_(v.tenant_id == tenant_id, v.wire_id == vehicle[:64]))
        ).scalar()
        if vid is None:
            return None
        conn.execute(
            insert(driver_links).values(
                token_sha256=hashlib.sha256(token.encode()).hexdigest(),
                tenant_id=tenant_id,
                vehicle_id=vid,
                created=now,
                expires=now + DRIVER_LINK_S,
            )
        )
    return {"url": f"/driver/{token}", "vehicle": vehicle, "expires": now + DRIVER_LINK_S}


def _link(engine: Engine, token: str) -> Any:
    if not 16 <= len(token) <= 64:
        return None
    with engine.connect() as conn:
        row = conn.execute(
            select(driver_links).where(
                driver_links.c.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
            )
        ).first()
    return row if row is not None and row.expires > time.time() else None


def next_stop(engine: Engine, link: Any) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(deliveries)
            .where(and_(D.vehicle_id == link.vehicle_id, D.tenant_id == link.tenant_id))
            .where(D.status.in_(["planned", "arriving"]))
            .order_by(D.plan_id.desc(), D.seq)
        ).all()
    stops = [
        {
            "order": r.order_ref,
            "kind": r.kind,
            "lat": r.lat,
            "lon": r.lon,
            "window": r.window,
            "planned": r.planned,
            "eta_ts": r.eta_ts,
            "weight_kg": r.weight_kg,
            "pin_required": r.pin is not None,
        }
        for r in rows
    ]
    return {"next": stops[0] if stops else None, "remaining": len(stops)}


def report(engine: Engine, link: Any, body: dict[str, Any]) -> dict[str, Any] | None:
    """The driver's outcome for one of the vehicle's open orders; None if it is not one."""
    order, status, now = str(body["order"])[:64], body["status"], time.time()
    with engine.begin() as conn:
        found = conn.execute(
            select(deliveries).where(
                and_(
                    D.tenant_id == link.tenant_id,
                    D.vehicle_id == link.vehicle_id,
                    D.order_ref == order,
                    D.status.in_(["planned", "arriving"]),
                )
            )
        ).first()
        if found is None:
            return None
        pin = body.get("pin")
        photo = None
        if body.get("signature"):
            png = base64.b64decode(str(body["signature"]).split(",", 1)[1], validate=True)
            photo = {"sha256": hashlib.sha256(png).hexdigest(), "thumbnail": str(body["signature"])[:65536]}
        problems = []
        if status == "delivered" and found.pin is not None:
            if not pin:
                problems.append("no PIN entered")
            elif not secrets.compare_digest(pin_digest(order, pin), pin_digest(order, found.pin)):
                problems.append("wrong PIN")
        record = {
            "source": "phone",
            "order": order,
            "outcome": status,
            "ts": now,
            "pin": {"source": "phone" if pin else None, "digest": pin_digest(order, pin) if pin else None},
            "signature_image": photo,
            **({"reason": str(body["reason"])[:512]} if body.get("reason") else {}),
        }
        conn.execute(
            insert(pods).values(
                tenant_id=link.tenant_id,
                vehicle_id=link.vehicle_id,
                order_ref=order,
                ts=now,
                outcome=status,
                verified=False,
                key_id="phone",
                exceptions=problems,
                record=record,
                received=now,
                note="reported on the driver's phone page (not signed by a hub)",
            )
        )
        conn.execute(update(deliveries).where(D.id == found.id).values(status=status))
        conn.execute(
            update(db.orders)
            .where(and_(db.orders.c.tenant_id == link.tenant_id, db.orders.c.ref == order))
            .values(status=status, updated=now)
        )
        if problems:
            row = {
                "tenant_id": link.tenant_id,
                "vehicle_id": link.vehicle_id,
                **alert(
                    now,
                    "pod_exception",
                    "warning",
                    f"order {order}: " + "; ".join(problems),
                    {"order": order, "exceptions": problems},
                    None,
                    None,
                ),
            }
            conn.execute(insert(alerts).values(**row))
        # sent once this commits, by the fleet's PodOutbox (logistics-rest: was submitted here)
        outbox_put(
            conn, link.tenant_id, f"delivery_{status}", {"order": order, "ts": now, "exceptions": problems}
        )
    return {"order": order, "status": status, "exceptions": problems}


def driver_routes(engine: Engine) -> list[Route]:
    async def script(request: Request) -> Response:
        return Response(
            _asset("driver.js"), media_type="text/javascript", headers={"X-Content-Type-Options": "nosniff"}
        )

    async def page(request: Request) -> Response:
        link = await asyncio.to_thread(_link, engine, str(request.path_params["token"]))
        if link is None:
            return HTMLResponse(
                "<!doctype html><title>anycar</title><p>This link is not valid (or expired).</p>", 404
            )
        return HTMLResponse(
            _asset("driver.html"),
            headers={
                "Content-Security-Policy": CSP,
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
                "Cache-Control": "no-store",
            },
        )

    async def nxt(request: Request) -> JSONResponse:
        link = await asyncio.to_thread(_link, engine, str(request.path_params["token"]))
        if link is None:
            return _error(404, "not_found", "this link is not valid (or expired)")
        return JSONResponse(
            await asyncio.to_thread(next_stop, engine, link), headers={"Cache-Control": "no-store"}
        )

    async def outcome(request: Request) -> JSONResponse:
        link = await asyncio.to_thread(_link, engine, str(request.path_params["token"]))
        if link is None:
            return _error(404, "not_found", "this link is not valid (or expired)")
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_BODY:
                return _error(413, "too_large", f"body over {MAX_BODY} bytes")
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return _error(400, "bad_json", "body: not JSON")
        if (
            not isinstance(body, dict)
            or body.get("status") not in ("delivered", "failed")
            or not isinstance(body.get("order"), str)
        ):
            return _error(
                400,
                "bad_parameter",
                'body: {"order": ID, "status": "delivered"|"failed", "pin"?, "signature"?}',
            )
        pin, sig = body.get("pin"), body.get("signature")
        if pin is not None and not (isinstance(pin, str) and pin.isdigit() and len(pin) <= 12):
            return _error(400, "bad_parameter", "pin: up to 12 digits")
        if sig is not None and not (isinstance(sig, str) and sig.startswith("data:image/png;base64,")):
            return _error(400, "bad_parameter", "signature: a data:image/png;base64 URL")
        try:
            done = await asyncio.to_thread(report, engine, link, body)
        except (binascii.Error, ValueError, IndexError):
            return _error(400, "bad_parameter", "signature: not base64")
        if done is None:
            return _error(404, "not_found", f"order {body['order'][:64]} is not an open stop of this vehicle")
        return JSONResponse(done)

    async def new_link(request: Request) -> JSONResponse:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        user = (
            await asyncio.to_thread(user_for_token, engine, token.strip())
            if scheme.lower() == "bearer"
            else None
        )
        if user is None:
            return _error(401, "unauthenticated", "Authorization: Bearer TOKEN needed")
        if "dispatch" not in RIGHTS.get(user.role, frozenset()):
            return _error(403, "forbidden", f"role {user.role} has no 'dispatch' right")
        made = await asyncio.to_thread(make_link, engine, user.tenant_id, str(request.path_params["vehicle"]))
        return JSONResponse(made, status_code=201) if made else _error(404, "not_found", "no such vehicle")

    return [
        Route("/api/vehicles/{vehicle}/driver-link", new_link, methods=["POST"]),
        Route("/driver/driver.js", script, methods=["GET"]),
        Route("/driver/{token}", page, methods=["GET"]),
        Route("/driver/{token}/next", nxt, methods=["GET"]),
        Route("/driver/{token}/outcome", outcome, methods=["POST"]),
    ]
