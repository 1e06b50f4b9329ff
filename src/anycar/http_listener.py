"""uvicorn inside the caller's event loop, on a socket bound here, so port 0 works and a port in
use is a one-line error. The hub's REST/VISS-over-HTTP server and the fleet's API and OsmAnd
listeners are all one of these (the fleet may import no hub room, so it lives beside both)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

import uvicorn

from anycar.errors import ConfigError


class HttpListener:
    def __init__(
        self,
        app: Any,
        host: str,
        port: int,
        *,
        what: str = "HTTP",
        tls_cert: str | None = None,
        tls_key: str | None = None,
        force_exit: bool = False,
    ) -> None:
        """``force_exit``: stop without waiting for open WebSockets (a live feed) to close."""
        self.app = app
        self.host = host
        self.requested_port = port
        self.what = what
        self.port = 0
        self.tls = (tls_cert, tls_key)
        self.force_exit = force_exit
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._sock: socket.socket | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls[0] else "http"

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.requested_port))
        except OSError as exc:
            sock.close()
            raise ConfigError(
                f"{self.what} cannot listen on {self.host}:{self.requested_port}: {exc.strerror}"
            ) from None
        sock.listen(128)
        sock.setblocking(False)
        self._sock, self.port = sock, sock.getsockname()[1]
        cert, key = self.tls
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_level="warning",
            access_log=False,
            ssl_certfile=cert,
            ssl_keyfile=key,
        )
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        await server.startup(sockets=[sock])
        self._server = server
        self._task = asyncio.create_task(server.main_loop())

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
        sockets = [self._sock] if self._sock else None
        for connection in list(self._server.server_state.connections):
            connection.shutdown = _closing_tolerant(connection)  # type: ignore[method-assign]
        if self.force_exit:
            self._server.force_exit = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.shutdown(sockets=sockets), 5)
        else:
            await self._server.shutdown(sockets=sockets)
        self._server = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _closing_tolerant(connection: Any) -> Any:
    """``connection.shutdown`` that lets a WebSocket already closing end quietly: uvicorn's sansio
    WebSocket sends its close frame again and websockets raises ``InvalidState`` ("connection is
    closing"), which would end the server's shutdown there, the other connections left open."""
    shutdown = connection.shutdown

    def call() -> None:
        try:
            shutdown()
        except Exception:
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.close()

    return call
