"""The uplink's background tasks: they never die silently, and they sleep cancellably.

``supervised`` runs a task's work again after a crash (logged and counted). ``Wakeup`` sleeps
until woken or a deadline: ``asyncio.wait_for(event.wait(), t)`` on Python 3.11 can swallow a cancellation when the event
is set at the same moment (CPython gh-86296); a spool that is written to all the time hits
that, and then its task never stops. A bare future with a timer has no such race.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("anycar.uplink")


async def supervised(
    work: Callable[[], Awaitable[None]], what: str, crashes: dict[str, int], pause: float = 1.0
) -> None:
    """Run ``work()`` until it returns; after a crash log it, count it in ``crashes[what]`` and
    start it again, so no background task dies silently."""
    while True:
        try:
            await work()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            crashes[what] = crashes.get(what, 0) + 1
            log.exception("uplink %s failed; starting it again", what)
            await asyncio.sleep(pause)


class Wakeup:
    def __init__(self) -> None:
        self._waiter: asyncio.Future[None] | None = None
        self._pending = False

    def set(self) -> None:
        """Wake the sleeper now, or make its next sleep return at once."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        else:
            self._pending = True

    def clear(self) -> None:
        self._pending = False

    async def sleep(self, timeout: float | None) -> None:
        if self._pending:
            self._pending = False
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiter = waiter
        timer = None
        if timeout is not None:
            timer = loop.call_later(max(0.0, timeout), _fire, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()


def _fire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
