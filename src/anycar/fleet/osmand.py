"""Plain GPS trackers and phones over the OsmAnd HTTP protocol that Traccar Client speaks.

``GET /?id=ID&lat=..&lon=..&timestamp=..&speed=..&bearing=..`` (or the same as a form body of a
POST), as Traccar's OsmAndProtocolDecoder reads it: ``id`` or ``deviceid`` names the device;
``timestamp`` is epoch seconds, milliseconds, ISO 8601 or ``yyyy-MM-dd HH:mm:ss`` (UTC);
``location=lat,lon`` may replace ``lat``/``lon``; ``speed`` is in knots (stored as km/h, as the
hubs' ``Vehicle.Speed``); ``bearing`` or ``heading`` in degrees. An unknown or revoked id is
answered 400 before anything else is read, as Traccar does; a tracker's id is minted with a
random suffix (``anycar fleet vehicle add VIN --tracker``), so it is its credential. Repeats of
one fix (a client resending after a lost answer) are dropped by (id, timestamp).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from anycar.fleet.live import LiveFeed
from anycar.fleet.store import Accepted, Store

KNOT_KMH = 1.852
MAX_QUERY = 4096
MAX_BODY = 16 * 1024
MAX_FIELDS = 64
BOOT = "osmand"  # the dedup key's "boot" for tracker fixes; seq is the fix time in ms


class OsmAndError(ValueError):
    """A request that is not a usable fix; the message names the field."""


def _float(params: Mapping[str, str], name: str) -> float | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise OsmAndError(f"{name}: {raw[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise OsmAndError(f"{name}: {raw[:40]!r} is not a finite number")
    return value


def parse_time(raw: str) -> float:
    """Epoch seconds of an OsmAnd ``timestamp`` (seconds, ms, ISO 8601, or 'yyyy-MM-dd HH:mm:ss' UTC)."""
    try:
        number = int(raw)
    except ValueError:
        pass
    else:
        return number / 1000 if number >= 2**31 - 1 else float(number)
    try:
        when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise OsmAndError(f"timestamp: {raw[:40]!r} is neither epoch seconds, ms nor a date") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def parse_fix(params: Mapping[str, str], now: float) -> dict[str, Any]:
    """The position in an OsmAnd request's parameters, shaped for ``Store.commit``."""
    lat, lon = _float(params, "lat"), _float(params, "lon")
    if "location" in params:
        parts = params["location"].split(",")
        if len(parts) != 2:
            raise OsmAndError("location: expected 'lat,lon'")
        lat, lon = _float({"lat": parts[0]}, "lat"), _float({"lon": parts[1]}, "lon")
    if lat is None or lon is None:
        raise OsmAndError("lat, lon: both needed")
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise OsmAndError(f"lat, lon: {lat}, {lon} is not on Earth")
    if lat == 0 and lon == 0:
        raise OsmAndError("lat, lon: 0, 0 is a tracker without a fix")
    if params.get("valid") in ("false", "0"):
        raise OsmAndError("valid: the tracker says this fix is not valid")
    ts = parse_time(params["timestamp"]) if params.get("timestamp") else now
    if ts > now + 3600:
        raise OsmAndError(f"timestamp: {ts:.0f} is more than an hour ahead")
    speed = _float(params, "speed")
    heading = _float(params, "bearing")
    if heading is None:
        heading = _float(params, "heading")
    return {
        "kind": "position",
        "boot": BOOT,
        "seq": max(1, round(ts * 1000)),
        "ts": ts,
        "lat": lat,
        "lon": lon,
        "speed": None if speed is None else speed * KNOT_KMH,
        "heading": heading,
    }


async def _params(request: Request) -> dict[str, str]:
    query = request.url.query
    if len(query) > MAX_QUERY:
        raise OsmAndError(f"query: longer than {MAX_QUERY} bytes")
    if not query and request.method == "POST":
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                raise OsmAndError(f"body: longer than {MAX_BODY} bytes")
        query = body.decode("ascii", errors="replace")
    try:
        pairs = parse_qsl(query, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:
        raise OsmAndError(f"query: more than {MAX_FIELDS} fields") from None
    return dict(pairs)


def osmand_app(store: Store, live: LiveFeed | None = None) -> Starlette:
    """The OsmAnd listener (Traccar's port is 5055)."""

    async def receive(request: Request) -> Response:
        try:
            params = await _params(request)
        except OsmAndError as exc:
            return PlainTextResponse(str(exc) + "\n", status_code=400)
        device = params.get("id") or params.get("deviceid") or ""
        ref = await asyncio.to_thread(store.vehicle, device) if 0 < len(device) <= 64 else None
        if ref is None or ref.revoked:
            return PlainTextResponse("id: unknown device\n", status_code=400)
        try:
            fix = parse_fix(params, time.time())
        except OsmAndError as exc:
            return PlainTextResponse(str(exc) + "\n", status_code=400)
        stored = await asyncio.to_thread(store.commit, [Accepted(ref, fix)])
        if live is not None:
            live.publish("position", stored.positions)
        return Response(status_code=200)

    return Starlette(routes=[Route("/", receive, methods=["GET", "POST"])])
