"""The clock a hub's components live on.

A real car lives on the wall clock. A simulated car lives on the simulator's clock, which runs
``--speedup`` times faster (and stands still when the simulator does): what happens "after
dark", "for 10 s" or "600 s after the door opened" must follow the clock of the car it is about,
or a 60x demo drives through a night before a 30 s delay ends. The hub hands one ``Clock`` to
every component that measures time about the car (``Hub.clock``).

``time()`` is seconds since the epoch on that clock (for times of day, the sun, traces);
``monotonic()`` never jumps (for bounded windows); ``loop_delay(s)`` is how long the asyncio
loop (always real time) must wait for ``s`` seconds of this clock to pass.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from typing import Protocol


class Clock(Protocol):
    """What components ask of the hub's clock."""

    def time(self) -> float: ...

    def monotonic(self) -> float: ...

    def loop_delay(self, seconds: float) -> float: ...


class WallClock:
    """The real car's clock: the host's wall and monotonic clocks, one second per second."""

    rate = 1.0
    tzinfo: dt.tzinfo | None = None  # times of day in the host's local zone

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def loop_delay(self, seconds: float) -> float:
        return max(0.0, seconds)


WALL = WallClock()


class SimClock:
    """The simulated car's clock: its start time plus the simulated seconds it has stepped.

    ``source`` gives (epoch seconds at the simulation's start, simulated seconds so far); ``rate``
    is the runner's speedup (simulated seconds per real second; ``inf`` runs as fast as it can,
    where the loop waits only a tick). It advances in the simulator's steps, so it stands still
    with a stalled simulator: the car's time does not pass while the car does not move.
    """

    def __init__(
        self, start_epoch: float, elapsed: _Elapsed, rate: float, tzinfo: dt.tzinfo | None = None
    ) -> None:
        if not rate > 0:
            raise ValueError("a clock's rate must be positive")
        self.start_epoch = start_epoch
        self._elapsed = elapsed
        self.rate = rate
        self.tzinfo = tzinfo  # the simulated car's zone (its start time's): its "22:00" is its own

    def time(self) -> float:
        return self.start_epoch + self._elapsed()

    def monotonic(self) -> float:
        return self._elapsed()

    def loop_delay(self, seconds: float) -> float:
        if seconds <= 0:
            return 0.0
        if math.isinf(self.rate):
            return 0.001
        return seconds / self.rate


class _Elapsed(Protocol):
    def __call__(self) -> float: ...
