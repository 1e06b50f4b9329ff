"""VISS v2 over WebSocket (subprotocol ``VISSv2``), with TLS when a certificate is configured.

A token may come with every request (``"authorization"``) or once, in the handshake's
``Authorization: Bearer`` header, as the default for the connection. Messages up to the
configured limit are parsed; larger ones (up to 16 times the limit) get a ``bad_request``
back; anything larger still closes the connection with code 1009 (message too big), because
the WebSocket layer refuses to buffer it.
"""

from __future__ import annotations

import json
import logging
import ssl
from pathlib import Path
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from anycar.api.viss.service import VissService, VissSession
from anycar.errors import ConfigError

log = logging.getLogger(__name__)
SUBPROTOCOL = Subprotocol("VISSv2")


def tls_context(cert: str | Path, key: str | Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load TLS certificate {cert} / key {key}: {exc}") from None
    return ctx


def _select(connection: ServerConnection, offered: Any) -> Subprotocol | None:
    return SUBPROTOCOL if SUBPROTOCOL in offered else None


class VissWebSocketServer:
    def __init__(
        self,
        service: VissService,
        *,
        host: str = "127.0.0.1",
        port: int = 8090,
        tls_cert: str | Path | None = None,
        tls_key: str | Path | None = None,
    ) -> None:
        self.service = service
        self.host = host
        self.requested_port = port
        self.port = 0
        self.ssl = tls_context(tls_cert, tls_key) if tls_cert and tls_key else None
        self._server: Server | None = None

    @property
    def scheme(self) -> str:
        return "wss" if self.ssl else "ws"

    async def start(self) -> None:
        limit = self.service.limits.max_message_bytes
        try:
            self._server = await serve(
                self._connection,
                self.host,
                self.requested_port,
                subprotocols=[SUBPROTOCOL],
                select_subprotocol=_select,
                max_size=max(limit * 16, 1 << 20),
                ssl=self.ssl,
                ping_interval=20,
                ping_timeout=20,
                close_timeout=2,
                compression=None,  # loopback and in-vehicle links: CPU matters more than bytes
            )
        except OSError as exc:
            raise ConfigError(
                f"VISS WebSocket cannot listen on {self.host}:{self.requested_port}: {exc.strerror}"
            ) from None
        sock = next(iter(self._server.sockets))
        self.port = sock.getsockname()[1]
        log.info("VISS v2 WebSocket listening on %s://%s:%d", self.scheme, self.host, self.port)

    async def _connection(self, ws: ServerConnection) -> None:
        header = ws.request.headers.get("Authorization") if ws.request is not None else None

        async def send(message: dict[str, Any] | str) -> None:
            await ws.send(message if isinstance(message, str) else json.dumps(message, separators=(",", ":")))

        session = VissSession(self.service, send, default_token=header, peer=str(ws.remote_address))
        try:
            async for message in ws:
                await session.handle(message)
        except ConnectionClosed:
            pass
        finally:
            session.close()

    async def stop(self) -> None:
        self.service.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
