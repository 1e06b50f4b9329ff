"""The cyclic garbage collector, run between messages instead of in the middle of one.

CPython starts a young collection when 700 more container objects were made than freed: by
construction that is while a message is being handled, so every collection (0.1-1 ms in the hub
at 5,000 signals/s; ~15 in 10 s, so ~3 % of messages) lands on some message's latency, and those
messages make the p99. This module moves the collector off the message path: the automatic
trigger is raised to a safety net (``SAFETY_YOUNG`` allocations, for a burst between two
ticks), and a timer collects the generations CPython's rule names (at the hub's own young
threshold, ``HUB_YOUNG``: below), every ``period_s``,
at a moment unrelated to the traffic (an idle hub is idle ~90 % of the time at 5,000/s, so a
collection now rarely meets a message). Cycles are still freed, at most ``period_s`` later.

It also collects less: the trigger counts allocations minus frees, so it fires on the peak of a
message's transient objects (55 times a second in the hub at 42,000 signals/s) and walks objects
that reference counting frees a moment later; between messages they are gone and the count is
mostly under the threshold (0-10 collections a second at the same rate; docs/performance.md).
"""

from __future__ import annotations

import asyncio
import gc

YOUNG = 700  # CPython's default young threshold: collect once this many are pending
OLDER = 10  # CPython's default: a generation is collected after this many of the younger one's
SAFETY_YOUNG = 50_000  # the automatic trigger left in place, for a burst between two ticks
PERIOD_S = 0.1
# the hub's young threshold: what is pending in a hub at the timer's ticks is nearly all alive
# (each message's Datapoints, kept ~2 s by the VISS history's rings at 5,000 signals/s; a
# NamedTuple is never untracked), so at 700 it collected 2-9 times per 15 s run at 5,000/s and
# found nothing (collected 0 in each of 24 recorded), and 0-3 of a run's 700 messages had one in
# flight; at 10,000: 0-1 per run, none in flight (docs/performance.md, api-tail2, session 8).
# Cycles wait that much longer; a young collection of 10,000 took 1.3-3.7 ms on a loaded machine.
HUB_YOUNG = 10_000


def generation_due(counts: tuple[int, int, int], young: int = YOUNG, older: int = OLDER) -> int | None:
    """The generation CPython's own trigger would collect at these ``gc.get_count()`` counts
    (the oldest one whose count is over its threshold), or None while the young one is under
    ``young``. (CPython also holds a full collection back until the long-lived objects pending
    are a quarter of all; that count is not exposed, so this collects the oldest generation at
    the count alone: after ``gc.freeze`` the old generation holds only what the process made
    since start-up.)"""
    gen0, gen1, gen2 = counts
    if gen0 < young:
        return None
    if gen1 >= older:
        return 2 if gen2 >= older else 1
    return 0


class IdleCollector:
    """``await run()`` for as long as the process serves; the thresholds go back when it ends."""

    def __init__(self, period_s: float = PERIOD_S, young: int = HUB_YOUNG) -> None:
        self.period_s = period_s
        self.young = young
        self.collections = [0, 0, 0]  # by generation, made by this collector

    def step(self) -> int | None:
        """Collect what is due now; the generation collected, or None."""
        generation = generation_due(gc.get_count(), self.young)
        if generation is not None:
            gc.collect(generation)
            self.collections[generation] += 1
        return generation

    async def run(self) -> None:
        saved = gc.get_threshold()
        gc.set_threshold(SAFETY_YOUNG, saved[1], saved[2])
        try:
            while True:
                await asyncio.sleep(self.period_s)
                self.step()
        finally:
            gc.set_threshold(*saved)
