"""The end of a fleet component's background task, in one place.

Every fleet-side component (ingest, domain, live bus, sender, offline checker, maintenance, the
logistics ETA and POD outbox, the swap reconciler) owns one long-lived task that its ``stop()``
must leave ended, not merely cancelled: a task still running after ``stop()`` would write to a
database or a broker that is being closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any


async def stop_task(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` (if any) and wait until it has ended."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class Periodic:
    """A fleet component that runs one pass every ``interval_s`` in its own task. A pass that
    raises is logged with ``failure`` and counted in ``crashes``, and the next pass runs: the
    loop never dies silently. Subclasses give ``name``, ``log``, ``failure`` and ``run_once``."""

    name = "periodic"
    failure = "a pass failed; the next one runs"
    log = logging.getLogger("anycar.fleet.tasks")

    def __init__(self, interval_s: float) -> None:
        self.interval_s = float(interval_s)
        self.passes = 0
        self.crashes = 0
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
                self.passes += 1
            except asyncio.CancelledError:
                raise
            except Exception:
                self.crashes += 1
                self.log.exception(self.failure)
            await asyncio.sleep(self.interval_s)
