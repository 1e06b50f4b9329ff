"""One accessory connection as the hub sees it: who it is, what it owes, what it may send."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from typing import Any, Protocol

from anycar.accessories.manifest import Manifest
from anycar.accessories.protocol import encode
from anycar.broker import Subscription
from anycar.ratelimit import TokenBucket
from anycar.supervisor import log_task_failure


class Connection(Protocol):
    async def send(self, message: str) -> None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


class Session:
    def __init__(self, conn: Connection, bucket: TokenBucket, peer: str = "") -> None:
        self.conn = conn
        self.peer = peer
        self.nonce = secrets.token_hex(32)
        self.bucket = bucket
        self.last_seen = time.monotonic()
        self.accessory: str | None = None  # "<vendor>:<product>:<serial>" once attested
        self.serial = ""
        self.key_id = ""
        self.manifest: Manifest | None = None
        self.pairing_proof: str | None = None
        self.instance: str | None = None  # once commissioned (or recognised)
        self.closed = False
        self.pending: dict[str, asyncio.Future[tuple[bool, str]]] = {}
        self.updates: dict[str, asyncio.Future[dict[str, Any]]] = {}  # firmware updates in progress
        self.firmware = ""  # the version the accessory said it runs (hello), if it said
        self.subscriptions: dict[str, tuple[Subscription, asyncio.Task[None]]] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self.last_rate_notice = 0.0
        self.last_rate_event = 0.0
        self._next_id = 0

    def next_id(self) -> str:
        self._next_id += 1
        return f"c{self._next_id}"

    async def send(self, msg: dict[str, Any]) -> bool:
        """Send one message; ``False`` if the connection is gone (never raises for that)."""
        if self.closed:
            return False
        try:
            await self.conn.send(encode(msg))
            return True
        except Exception:  # a dead socket is handled by the reader loop's ending
            return False

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=f"accessory-session-{self.peer}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        task.add_done_callback(log_task_failure)
        return task

    async def close(self, reason: str = "") -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(Exception):
                await self.conn.close(1000, reason[:120])

    def fail_pending(self, why: str) -> None:
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError(why))
        self.pending.clear()
        for upd in self.updates.values():
            if not upd.done():
                upd.set_exception(ConnectionError(why))
        self.updates.clear()

    def stop_subscriptions(self) -> None:
        for sub, task in self.subscriptions.values():
            sub.close()
            task.cancel()
        self.subscriptions.clear()
        for task in list(self.tasks):
            task.cancel()
