"""uvicorn inside the fleet's event loop on a socket bound here, so port 0 works and a port in
use is a one-line error. (The hub's ``anycar.api.rest.HttpServer`` does the same for the hub;
the fleet may not import hub rooms, and this is the fleet's only server glue.)"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

import uvicorn


class PortError(OSError):
    """A listening port that cannot be had."""


class Listener:
    def __init__(self, app: Any, host: str, port: int, what: str) -> None:
        self.app, self.host, self.requested, self.what = app, host, port, what
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._sock: socket.socket | None = None

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.requested))
        except OSError as exc:
            sock.close()
            raise PortError(
                f"{self.what} cannot listen on {self.host}:{self.requested}: {exc.strerror}"
            ) from None
        sock.listen(128)
        sock.setblocking(False)
        self._sock, self.port = sock, sock.getsockname()[1]
        config = uvicorn.Config(self.app, lifespan="off", log_level="warning", access_log=False)
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
        self._server.force_exit = True  # open WebSockets (the live feed) do not hold the stop up
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.shutdown(sockets=[self._sock] if self._sock else None), 5)
        self._server = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
