"""The accessory WebSocket server: one JSON message per text frame, as docs/accessory-protocol.md
describes. Bad messages get an ``error`` reply naming the field and the connection carries on;
only a failed hello closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from ssl import SSLContext
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from anycar.accessories.errors import ProtocolError
from anycar.accessories.protocol import MAX_MESSAGE_BYTES, PROTOCOL_VERSION, error_message, parse_message
from anycar.accessories.session import Session
from anycar.errors import AnycarError
from anycar.ratelimit import TokenBucket

if TYPE_CHECKING:
    from anycar.accessories.manager import AccessoryManager

log = logging.getLogger(__name__)
SUBPROTOCOL = "anycar-accessory.v1"


class AccessoryServer:
    def __init__(
        self, manager: AccessoryManager, host: str = "127.0.0.1", port: int = 0, ssl: SSLContext | None = None
    ) -> None:
        self.manager = manager
        self.host = host
        self.port = port
        self.ssl = ssl
        self._server: Server | None = None

    async def start(self) -> None:
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            max_size=MAX_MESSAGE_BYTES,
            max_queue=64,
            compression=None,
            logger=log,
            ssl=self.ssl,
        )
        sock = next(iter(self._server.sockets))
        self.port = int(sock.getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    async def _handle(self, conn: ServerConnection) -> None:
        mgr = self.manager
        limits = mgr.limits
        peer = "{}:{}".format(*conn.remote_address[:2]) if conn.remote_address else "?"
        session = Session(conn, TokenBucket(limits.messages_per_s, limits.burst), peer)
        mgr.sessions.add(session)
        try:
            await session.send(
                {"type": "challenge", "protocol": PROTOCOL_VERSION, "nonce": session.nonce, "hub": "anycar"}
            )
            if not await self._hello(session, conn):
                return
            async for raw in conn:
                if mgr.rate_limited(session):
                    continue
                mgr.seen(session)
                msg_id: Any = None
                try:
                    msg = parse_message(raw)
                    msg_id = msg.get("id")
                    await mgr.handle(session, msg)
                except AnycarError as exc:
                    await session.send(error_message(exc, msg_id))
                except Exception as exc:  # a bug must cost one message, not the connection
                    log.exception("accessory message failed")
                    await session.send(
                        {
                            "type": "error",
                            "code": 500,
                            "reason": "internal_error",
                            "message": str(exc),
                            **({"id": msg_id} if msg_id is not None else {}),
                        }
                    )
        except ConnectionClosed:
            pass
        finally:
            session.closed = True
            await mgr.disconnected(session)

    async def _hello(self, session: Session, conn: ServerConnection) -> bool:
        mgr = self.manager
        try:
            raw = await asyncio.wait_for(conn.recv(), mgr.limits.hello_timeout_s)
        except TimeoutError:
            await session.send(
                {"type": "error", "code": 408, "reason": "timeout", "message": "no hello in time"}
            )
            await session.close("no hello")
            return False
        try:
            msg = parse_message(raw)
            if msg["type"] != "hello":
                raise ProtocolError(f"the first message must be hello, not {msg['type']}", field="type")
            welcome = await mgr.hello(session, msg)
        except AnycarError as exc:
            await session.send(error_message(exc))
            await session.close(exc.reason)
            return False
        await session.send(welcome)
        await mgr.after_welcome(session)
        return True
