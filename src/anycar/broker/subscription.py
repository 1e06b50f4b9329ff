"""A subscriber's bounded queue of updates.

Publishers only append; when the queue is full the oldest update is dropped and counted, so a
subscriber that never reads costs memory up to its bound and never slows anyone else.

With ``max_age_s`` the queue is bounded in time as well: an update that waited longer than
that when the subscriber comes to take it is dropped and counted (``expired``) if a later update
of the same signal is queued, so a slow subscriber gets superseded values at most that late,
whatever the publishing rate (the size bound alone allows ``queue_size / rate`` seconds: 2 s at
5,000 values/s for 10,000). A signal's newest value is never expired, however late: dropping it
would leave the subscriber without the signal's value until it changes again (a lamp's
brightness, set once, would show "unknown" for good); so at most one stale update per signal.
The age is counted from when the update was queued, not from its timestamp: a provider
replaying old samples is not "late".
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from anycar.broker.datapoint import Datapoint
from anycar.broker.filters import SubscriptionFilter
from anycar.errors import AnycarError

DEFAULT_QUEUE_SIZE = 10_000


class Subscription:
    """Updates for a set of patterns; iterate with ``async for batch in sub``.

    ``unknown`` maps each pattern that matched nothing to the error that says why; the other
    patterns are served regardless.
    """

    def __init__(
        self,
        patterns: list[str],
        *,
        name: str = "",
        filter: SubscriptionFilter | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        on_close: Callable[[Subscription], None] | None = None,
        max_age_s: float | None = None,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        if max_age_s is not None and max_age_s <= 0:
            raise ValueError("max_age_s must be positive (or None: no time bound)")
        self.patterns = patterns
        self.name = name
        self.filter = filter
        self.unknown: dict[str, AnycarError] = {}
        self.signal_ids: set[int] = set()
        self.dropped = 0
        self.expired = 0
        self.delivered = 0
        self.closed = False
        self._maxlen = queue_size
        self._queue: deque[Datapoint] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._on_close = on_close
        self._value_filter = filter is not None and filter.has_value_conditions
        self._period = filter.min_period_s if filter is not None and filter.min_period_s else None
        self._last_value: dict[str, Any] = {}
        self._last_sent: dict[str, float] = {}
        self._held: dict[str, Datapoint] = {}
        filtered = bool(self._value_filter or self._period)
        self.offer = self._offer_filtered if filtered else self._offer_fast
        self.offer_many = self._offer_many_filtered if filtered else self._offer_many_fast
        # with a time bound: (how many updates had been queued, ever, once this offer was in;
        # monotonic time of that offer), oldest first, one per offer that queued something.
        # Updates ever queued = delivered + dropped + expired + still queued.
        self._max_age = max_age_s
        self._marks: deque[tuple[int, float]] = deque()
        if max_age_s is not None:
            self._plain_offer, self._plain_offer_many = self.offer, self.offer_many
            self.offer, self.offer_many = self._offer_aged, self._offer_many_aged

    # -- publisher side (hot path) ----------------------------------------------------------
    def _offer_fast(self, dp: Datapoint) -> None:
        queue = self._queue
        if len(queue) >= self._maxlen:
            queue.popleft()
            self.dropped += 1
        queue.append(dp)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _offer_many_fast(self, batch: list[Datapoint]) -> None:
        """Several updates at once, oldest first: what ``offer`` of each does, in one step."""
        queue = self._queue
        queue.extend(batch)
        over = len(queue) - self._maxlen
        if over > 0:
            for _ in range(over):
                queue.popleft()
            self.dropped += over
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _offer_many_filtered(self, batch: list[Datapoint]) -> None:
        for dp in batch:
            self._offer_filtered(dp)

    def _offer_filtered(self, dp: Datapoint) -> None:
        path = dp.path
        if self._value_filter and dp.value is not None:
            assert self.filter is not None  # nosec B101 # narrows an Optional for mypy; an invariant of this object, not a check of outside input
            if not self.filter.passes(dp.value, self._last_value.get(path)):
                return
        if self._period is not None:
            now = time.monotonic()
            last = self._last_sent.get(path)
            if last is not None and now - last < self._period:
                self._held[path] = dp
                self._wake()
                return
            self._last_sent[path] = now
            self._held.pop(path, None)
        self._last_value[path] = dp.value
        self._offer_fast(dp)

    def _offer_aged(self, dp: Datapoint) -> None:
        self._plain_offer(dp)
        self._mark()

    def _offer_many_aged(self, batch: list[Datapoint]) -> None:
        self._plain_offer_many(batch)
        self._mark()

    def _mark(self) -> None:
        queued = self.delivered + self.dropped + self.expired + len(self._queue)
        marks = self._marks
        if marks and marks[-1][0] == queued:
            return  # nothing new was queued (a filter held or refused it)
        gone = queued - len(self._queue)
        while marks and marks[0][0] <= gone:  # their updates were dropped: at most one mark per queued update
            marks.popleft()
        marks.append((queued, time.monotonic()))

    def _expire(self) -> None:
        """Drop (and count) the queued updates that waited longer than ``max_age_s``."""
        marks = self._marks
        if not marks:
            return
        assert self._max_age is not None  # nosec B101 # marks exist only with a time bound; narrows an Optional for mypy
        oldest_allowed = time.monotonic() - self._max_age
        if marks[0][1] >= oldest_allowed:
            return
        stale_until, stale_at = 0, 0.0
        while marks and marks[0][1] < oldest_allowed:
            stale_until, stale_at = marks.popleft()
        queue = self._queue
        stale = min(len(queue), stale_until - (self.delivered + self.dropped + self.expired))
        if stale <= 0:
            return
        # Only a stale update that a later one of the same signal supersedes goes: the newest
        # value of each signal stays (at the front, in order), however late, or a signal that
        # does not change again would stay unknown to this subscriber for good.
        later = {queue[i].path for i in range(stale, len(queue))}
        kept: list[Datapoint] = []
        for _ in range(stale):
            item = queue.popleft()
            kept.append(item)
        survivors: list[Datapoint] = []
        for item in reversed(kept):
            if item.path not in later:
                later.add(item.path)
                survivors.append(item)
        queue.extendleft(survivors)  # extendleft reverses: back in queued order
        self.expired += stale - len(survivors)
        if survivors:  # still stale: a mark of their own, so a later update still supersedes them
            marks.appendleft((self.delivered + self.dropped + self.expired + len(survivors), stale_at))

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- subscriber side --------------------------------------------------------------------
    @property
    def pending(self) -> int:
        return len(self._queue)

    def _release_held(self) -> float | None:
        """Move held-back values whose period is over into the queue; seconds to the next."""
        if not self._held:
            return None
        assert self._period is not None  # nosec B101 # narrows an Optional for mypy; an invariant of this object, not a check of outside input
        now = time.monotonic()
        wait: float | None = None
        for path, dp in list(self._held.items()):
            due = self._last_sent.get(path, 0.0) + self._period
            if due <= now:
                del self._held[path]
                self._last_sent[path] = now
                self._last_value[path] = dp.value
                self._offer_fast(dp)
            else:
                wait = due - now if wait is None else min(wait, due - now)
        return wait

    def drain(self, max_items: int | None = None) -> list[Datapoint]:
        """Take what is queued now, without waiting (updates older than ``max_age_s`` are dropped)."""
        self._release_held()
        self._expire()
        queue = self._queue
        n = len(queue) if max_items is None else min(max_items, len(queue))
        if n == len(queue):
            batch = list(queue)
            queue.clear()
        else:
            batch = [queue.popleft() for _ in range(n)]
        self.delivered += len(batch)
        return batch

    async def get(self, max_items: int | None = None, timeout: float | None = None) -> list[Datapoint]:
        """Wait for at least one update and return all queued (up to ``max_items``).

        Returns an empty list on timeout or when the subscription is closed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = self._release_held()
            self._expire()
            if self._queue:
                return self.drain(max_items)
            if self.closed:
                return []
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                wait = left if wait is None else min(wait, left)
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                if wait is None:
                    await waiter
                else:
                    await asyncio.wait_for(waiter, wait)
            except TimeoutError:
                pass
            finally:
                if self._waiter is waiter:
                    self._waiter = None

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> list[Datapoint]:
        batch = await self.get()
        if not batch:
            raise StopAsyncIteration
        return batch

    def close(self) -> None:
        """Stop receiving; a waiting reader wakes up with an empty batch."""
        if self.closed:
            return
        self.closed = True
        self._wake()
        if self._on_close is not None:
            self._on_close(self)

    def stats(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "patterns": list(self.patterns),
            "signals": len(self.signal_ids),
            "queued": len(self._queue),
            "delivered": self.delivered,
            "dropped": self.dropped,
            "expired": self.expired,
            "queue_size": self._maxlen,
            "max_age_ms": round(self._max_age * 1000) if self._max_age is not None else None,
        }
