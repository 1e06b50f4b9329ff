"""The live feed: positions and events as they are committed, fanned out per tenant.

Each WebSocket client gets a bounded queue; a client that does not keep up is dropped (its queue
overflows) instead of slowing the ingest, which only ever does a non-blocking put.
"""

from __future__ import annotations

import asyncio
from typing import Any

QUEUE = 1000


class LiveFeed:
    def __init__(self) -> None:
        self._clients: dict[asyncio.Queue[dict[str, Any] | None], int] = {}
        self.dropped = 0

    def subscribe(self, tenant_id: int) -> asyncio.Queue[dict[str, Any] | None]:
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(QUEUE)
        self._clients[queue] = tenant_id
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        self._clients.pop(queue, None)

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
                    self._clients.pop(queue, None)
                    self.dropped += 1
                    queue.get_nowait()
                    queue.put_nowait(None)  # tells the client's sender to close: too slow
