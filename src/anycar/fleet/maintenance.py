"""The storage's periodic care, as a supervised fleet component: day partitions made ahead,
each tenant's retention applied, the dedup table pruned.

It runs once at start and then every ``interval_s``. A round that fails is logged with its
traceback, counted (``status()``: ``failures``, ``last_error``) and retried after a short
backoff; if the task itself ends for any other reason it is logged and started again, so it is
never silently dead. Any number of processes may run it on one database: PostgreSQL's advisory
lock makes their rounds take turns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from anycar.fleet import partitions, retention
from anycar.fleet.tasks import stop_task

log = logging.getLogger("anycar.fleet.maintenance")
DAY = 86_400.0


@dataclass
class MaintenanceStats:
    rounds: int = 0
    failures: int = 0
    restarts: int = 0
    last_error: str = ""
    last_round: dict[str, Any] = field(default_factory=dict)
    last_ok: float | None = None


class Maintenance:
    name = "maintenance"

    def __init__(
        self,
        engine: Engine,
        *,
        interval_s: float = 300.0,
        ahead_days: int = 3,
        give_up_s: float = retention.GIVE_UP_S,
        forget_s: float = retention.FORGET_S,
        retry_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.interval_s = interval_s
        self.ahead_days = ahead_days
        self.give_up_s = give_up_s
        self.forget_s = forget_s
        self.retry_s = retry_s
        self.clock = clock
        self.stats = MaintenanceStats()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._wake = asyncio.Event()

    def run_once(self) -> dict[str, Any]:
        """One round, synchronously (the loop runs it in a thread)."""
        now = self.clock()
        made = partitions.ensure_days(self.engine, now - DAY, now + self.ahead_days * DAY)
        kept = retention.apply(self.engine, now)
        pruned = retention.prune_received(self.engine, now, give_up_s=self.give_up_s, forget_s=self.forget_s)
        return {"partitions_made": made, **kept, "received": pruned}

    async def start(self) -> None:
        self._stopping = False
        self._spawn()

    def _spawn(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="fleet-maintenance")
        self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if self._stopping:
            return
        exc = None if task.cancelled() else task.exception()
        self.stats.restarts += 1
        self.stats.last_error = f"task ended: {exc!r}"
        log.error("fleet maintenance ended unexpectedly (%r); starting it again", exc)
        self._spawn()

    def poke(self) -> None:
        """Run a round now (tests, and the operator's command)."""
        self._wake.set()

    async def _loop(self) -> None:
        while not self._stopping:
            wait = self.interval_s
            try:
                result = await asyncio.to_thread(self.run_once)
                self.stats.rounds += 1
                self.stats.last_round = result
                self.stats.last_ok = self.clock()
            except Exception as exc:
                self.stats.failures += 1
                self.stats.last_error = f"{type(exc).__name__}: {str(exc)[:300]}"
                log.exception("fleet maintenance round failed; retrying in %.0f s", self.retry_s)
                wait = self.retry_s
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def stop(self) -> None:
        self._stopping = True
        await stop_task(self._task)
        self._task = None

    def status(self) -> dict[str, Any]:
        return {"running": self._task is not None and not self._task.done(), **vars(self.stats)}
