"""Request bodies, read only after the caller is authenticated and never beyond a cap.

A chunked body has no Content-Length, so a cap on the header alone is no cap: ``BodyLimit``
(ASGI middleware round the whole HTTP app) counts the bytes as they stream in and stops at
the limit, and ``read_body`` is the one way a route reads a body, with its own (smaller)
limit. Both answer 413. Routes authenticate first (``require`` / ``caller_grants``), so an
unauthenticated client never makes the hub read more than the headers.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from anycar import decoding
from anycar.errors import AnycarError

MAX_BODY_BYTES = 1 << 20  # what any route of the hub may receive (1 MiB)


class BodyTooLarge(AnycarError):
    """A request body beyond the route's cap: refused while streaming, never buffered whole."""

    code = 413
    reason = "payload_too_large"

    def __init__(self, limit: int, declared: int | None = None) -> None:
        size = f"of {declared} bytes " if declared is not None else ""
        super().__init__(f"request body {size}exceeds {limit} bytes")
        self.limit = limit


def declared_length(headers: Any) -> int | None:
    """The Content-Length a client declared, or ``None`` (chunked); a malformed one is a 400."""
    raw = headers.get("content-length")
    if raw is None:
        return None
    if not raw.strip().isdigit():
        raise AnycarError(f"Content-Length {raw[:20]!r} is not a number")
    return int(raw)


async def read_body(request: Request, limit: int) -> bytes:
    """The body of ``request``, refused with ``BodyTooLarge`` as soon as it passes ``limit``."""
    declared = declared_length(request.headers)
    if declared is not None and declared > limit:
        raise BodyTooLarge(limit, declared)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json_object(request: Request, limit: int) -> dict[str, Any]:
    """A capped body that must be a JSON object (an empty body is ``{}``)."""
    body = await read_body(request, limit)
    try:
        value = decoding.loads(body or b"{}", max_bytes=limit, what="request body")
    except decoding.DecodingError as exc:
        raise AnycarError(str(exc)) from None
    if not isinstance(value, dict):
        raise AnycarError("request body must be a JSON object")
    return value


class BodyLimit:
    """ASGI middleware: no HTTP request body passes ``max_bytes``, however it is sent.

    A declared length above the cap is answered 413 before the route runs; a chunked body is
    counted while the route reads it and ends in ``BodyTooLarge`` (413) at the cap.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        try:
            declared = declared_length(headers)
        except AnycarError as exc:
            await _refuse(scope, receive, send, 400, exc.reason, str(exc))
            return
        if declared is not None and declared > self.max_bytes:
            big = BodyTooLarge(self.max_bytes, declared)
            await _refuse(scope, receive, send, big.code, big.reason, str(big))
            return
        seen = 0
        limit = self.max_bytes

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)


async def _refuse(scope: Scope, receive: Receive, send: Send, code: int, reason: str, message: str) -> None:
    body = {"error": {"code": code, "reason": reason, "message": message}}
    await JSONResponse(body, status_code=code, headers={"connection": "close"})(scope, receive, send)


__all__ = ["MAX_BODY_BYTES", "BodyLimit", "BodyTooLarge", "read_body", "read_json_object"]
