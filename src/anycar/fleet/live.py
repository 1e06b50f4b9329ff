"""The live feed: positions and events as they are committed, fanned out per tenant.

Each WebSocket client gets a bounded queue; a client that does not keep up is dropped the moment
its queue is full, instead of slowing the ingest, which only ever does a non-blocking put: its
queue is emptied at once (what it had not been sent yet is never sent, and its memory is freed)
and ``behind`` is set, so its sender stops and closes the socket with 4408 without first writing
out a queue's worth of stale items to a client that cannot read them.
"""

from __future__ import annotations

import asyncio
from typing import Any

QUEUE = 1000


class Subscription(asyncio.Queue[dict[str, Any] | None]):
    """One client's queue; ``behind`` is set when it overflowed (the queue then holds ``None``)."""

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize)
        self.behind = asyncio.Event()


class LiveFeed:
    def __init__(self, bound: int = QUEUE) -> None:
        """``bound``: items a client may fall behind before it is dropped."""
        self.bound = bound
        self._clients: dict[Subscription, int] = {}
        self.dropped = 0

    def subscribe(self, tenant_id: int) -> Subscription:
        queue = Subscription(self.bound)
        self._clients[queue] = tenant_id
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        self._clients.pop(queue, None)  # type: ignore[call-overload]

    def clients(self) -> int:
        return len(self._clients)

    def publish(self, kind: str, items: list[dict[str, Any]]) -> None:
        """Called on the event loop after a commit; never waits."""
        for item in items:
            tenant = item["tenant_id"]
            message = {
                "type": kind,
                **{k: v for k, v in item.items() if k not in ("tenant_id", "vehicle_id")},
            }
            for queue, client_tenant in list(self._clients.items()):
                if client_tenant != tenant:
                    continue
                try:
                    queue.put_nowait(message)
                except asyncio.QueueFull:
                    self._drop(queue)

    def _drop(self, queue: Subscription) -> None:
        """Too slow: out of the feed, its backlog gone, its sender told to close now."""
        self._clients.pop(queue, None)
        self.dropped += 1
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(None)  # for a reader of the queue alone: the end
        queue.behind.set()
