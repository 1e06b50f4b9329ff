"""The end of a fleet component's background task, in one place.

Every fleet-side component (ingest, domain, live bus, sender, offline checker, maintenance, the
logistics ETA and POD outbox, the swap reconciler) owns one long-lived task that its ``stop()``
must leave ended, not merely cancelled: a task still running after ``stop()`` would write to a
database or a broker that is being closed.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def stop_task(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` (if any) and wait until it has ended."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
