"""The fleet demo's recipients: their phones and their front doors, beside the fleet cloud.

**Phones**: the fleet's customer webhooks (``delivery_eta`` carries the order's PIN the first
time, then ``delivery_delivered`` / ``delivery_failed``) reach ``POST /hook``; each body is checked
against the webhook's HMAC secret before it is read. **Doors**: a demo driver (in the hubs
process) rings with ``POST /door/{order}`` and the doorbell token; the recipient answers as
``data/delivery.yaml`` says for that attempt: ``home`` with the PIN they were sent (which the
driver has them type on the button panel), ``absent`` with why, or ``waiting`` (409) while the
PIN has not reached them yet. The PIN never passes through the vehicle's route: only through
the recipient, as in the real flow.
"""

from __future__ import annotations

import hmac
import json
import secrets
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from anycar.fleet.webhooks import SIGNATURE, sign
from anycar.fleetdemo.delivery import DeliverySpec
from anycar.http_listener import HttpListener

MAX_BODY = 64 * 1024
EVENTS = ["delivery_eta", "delivery_delivered", "delivery_failed"]


class Recipients:
    """The day's recipients as one small HTTP service on a free port."""

    def __init__(self, spec: DeliverySpec, host: str = "127.0.0.1") -> None:
        self.spec = spec
        self.token = secrets.token_urlsafe(24)  # the doorbell's: only the demo's drivers have it
        self.secret: str | None = None  # the webhook's HMAC secret, once registered
        self.pins: dict[str, str] = {}
        self.rings: dict[str, int] = {}
        self.notified: dict[str, list[str]] = {}  # order -> the webhook kinds its recipient got
        self.refused = 0
        self.listener = HttpListener(
            Starlette(
                routes=[
                    Route("/hook", self.hook, methods=["POST"]),
                    Route("/door/{order}", self.door, methods=["POST"]),
                ]
            ),
            host,
            0,
            what="the demo's recipients",
        )

    @property
    def url(self) -> str:
        return f"http://{self.listener.host}:{self.listener.port}"

    async def start(self) -> None:
        await self.listener.start()

    async def stop(self) -> None:
        await self.listener.stop()

    async def _body(self, request: Request) -> bytes | None:
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_BODY:
                return None
        return raw

    async def hook(self, request: Request) -> Response:
        raw = await self._body(request)
        if raw is None:
            return JSONResponse({"error": f"body over {MAX_BODY} bytes"}, status_code=413)
        given = request.headers.get(SIGNATURE, "")
        if self.secret is None or not hmac.compare_digest(given, sign(self.secret, raw)):
            self.refused += 1
            return JSONResponse({"error": "bad signature"}, status_code=401)
        try:
            doc = json.loads(raw)
        except ValueError:
            return JSONResponse({"error": "not JSON"}, status_code=400)
        order = str(doc.get("order") or "")[:64] if isinstance(doc, dict) else ""
        if not order:
            return Response(status_code=204)
        kind = str(doc.get("type") or "")[:32]
        self.notified.setdefault(order, []).append(kind)
        pin = doc.get("pin")
        if kind == "delivery_eta" and isinstance(pin, str) and pin.isdigit() and len(pin) <= 12:
            self.pins[order] = pin
        return Response(status_code=204)

    async def door(self, request: Request) -> JSONResponse:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
            return JSONResponse({"error": "no doorbell token"}, status_code=401)
        order = str(request.path_params["order"])[:64]
        return JSONResponse(*self.answer(order))

    def answer(self, order: str) -> tuple[dict[str, Any], int]:
        """What the recipient of ``order`` says at this ring, and the HTTP status."""
        who = self.spec.recipient(order)
        attempt = self.rings.get(order, 0)
        if who.answer(attempt) == "absent":
            self.rings[order] = attempt + 1
            return {"answer": "absent", "why": who.why, "attempt": attempt + 1}, 200
        pin = who.pin if who.pin != "sent" else self.pins.get(order)
        if pin is None:
            return {"answer": "waiting", "why": "the recipient has not got the PIN yet"}, 409
        self.rings[order] = attempt + 1
        return {"answer": "home", "pin": pin, "attempt": attempt + 1}, 200
