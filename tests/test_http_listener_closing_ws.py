"""Stopping a listener while one of its WebSockets is already closing (CI, session 8: a console
browser test's teardown raised ``InvalidState: connection is closing`` out of uvicorn's shutdown).
The client sends its close while the server still has data it cannot flush to it (the client
reads nothing), so the server has answered the close but the connection is not gone yet when the
listener stops. The stop ends quietly and closes the other connection too."""

from __future__ import annotations

import asyncio
import base64
import os

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from anycar.http_listener import HttpListener


async def _floods(ws: WebSocket) -> None:
    await ws.accept()
    await ws.send_bytes(b"x" * 8_000_000)  # more than the socket buffers take: the rest waits
    await ws.receive()


async def _stays(ws: WebSocket) -> None:
    await ws.accept()
    await ws.receive()  # until the server's shutdown disconnects it


async def _handshake(port: int, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


async def test_stop_with_a_websocket_already_closing() -> None:
    app = Starlette(routes=[WebSocketRoute("/flood", _floods), WebSocketRoute("/stay", _stays)])
    listener = HttpListener(app, "127.0.0.1", 0, force_exit=True)
    await listener.start()
    staying_r, staying_w = await _handshake(listener.port, "/stay")
    _, closing_w = await _handshake(listener.port, "/flood")
    await asyncio.sleep(0.3)  # the flood is in the buffers
    mask = os.urandom(4)
    code = (1000).to_bytes(2, "big")
    closing_w.write(bytes([0x88, 0x82]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(code)))
    await closing_w.drain()
    await asyncio.sleep(0.3)  # the server has answered it: closing, not yet gone
    await asyncio.wait_for(listener.stop(), 10)  # raised InvalidState before
    rest = await asyncio.wait_for(staying_r.read(), 5)  # the other connection was closed as well
    assert rest[:1] in (b"\x88", b""), rest
    for writer in (closing_w, staying_w):
        writer.close()
