"""Traces of runs: the last N per automation in memory (this run of the hub), written to the
store in batches, and read back newest first across restarts."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from anycar.automations.store import Store

TRACE_FLUSH_S = 0.5


class TraceBook:
    def __init__(self, store: Store, kept: int) -> None:
        self.store = store
        self.kept = kept
        self.rings: dict[str, deque[dict[str, Any]]] = {}
        self.unsaved: list[dict[str, Any]] = []

    def ring(self, automation: str) -> deque[dict[str, Any]]:
        ring = self.rings.get(automation)
        if ring is None:
            ring = self.rings[automation] = deque(maxlen=self.kept)
        return ring

    def keep(self, trace: dict[str, Any]) -> None:
        self.ring(trace["automation"]).append(trace)
        self.unsaved.append(trace)

    def save(self) -> None:
        batch, self.unsaved = self.unsaved, []
        self.store.save_traces(batch)

    async def flush_forever(self) -> None:
        while True:
            await asyncio.sleep(TRACE_FLUSH_S)
            if self.unsaved:
                self.save()

    def traces(self, automation: str, limit: int = 20) -> list[dict[str, Any]]:
        """Newest first: memory (this run of the hub), then the database (earlier runs)."""
        mine = list(reversed(self.rings.get(automation, ())))
        seen = {t["run_id"] for t in mine}
        older = [t for t in self.store.traces(automation, limit) if t["run_id"] not in seen]
        return (mine + older)[:limit]

    def last_run(self, automation: str) -> dict[str, Any] | None:
        ring = self.rings.get(automation)
        if ring:
            return ring[-1]
        older = self.store.traces(automation, 1)
        return older[0] if older else None
