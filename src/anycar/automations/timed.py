"""Triggers that follow the clock: a time of day, an interval, sunrise and sunset at the car's
position. One task checks them at least once a second against the wall clock, so a clock that
jumps forward past 07:30 fires the 07:30 trigger once, and one that jumps back does not fire
it again (the next moment is worked out when a trigger fires)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from anycar.automations import model as m
from anycar.automations.place import LATITUDE, LONGITUDE, next_sun_event

Fire = Callable[[dict[str, Any]], None]


@dataclass(eq=False)
class _Entry:
    spec: m.TimeTrigger | m.IntervalTrigger | m.SunTrigger
    fire: Fire
    due: float | None = None


class Timed:
    def __init__(
        self,
        wall: Callable[[], float],
        value_of: Callable[[str], Any],
        delay: Callable[[float], float] = lambda s: max(0.0, s),
        tz: dt.tzinfo | None = None,
    ) -> None:
        self.wall = wall
        self.value_of = value_of
        self.tz = tz  # a simulated car's time zone; None: the hub's local time
        self.delay = delay  # the clock's seconds as the loop's (a simulated car's run faster)
        self._entries: list[_Entry] = []
        self._wake = asyncio.Event()

    def add(self, spec: m.TimeTrigger | m.IntervalTrigger | m.SunTrigger, fire: Fire) -> Callable[[], None]:
        """Start watching one clock trigger; returns how to stop."""
        entry = _Entry(spec, fire)
        entry.due = self.next_due(spec, self.wall())
        self._entries.append(entry)
        self._wake.set()
        return lambda: self._entries.remove(entry) if entry in self._entries else None

    def clear(self) -> None:
        self._entries = []

    def next_due(self, spec: m.TimeTrigger | m.IntervalTrigger | m.SunTrigger, now: float) -> float | None:
        """The next wall-clock moment; ``None`` for the sun while the car's position is unknown."""
        if isinstance(spec, m.IntervalTrigger):
            return now + spec.every_s
        if isinstance(spec, m.TimeTrigger) and self.tz is not None:
            day = dt.datetime.fromtimestamp(now, self.tz).replace(hour=0, minute=0, second=0, microsecond=0)
            due = day.timestamp() + spec.at_s
            return due if due > now else (day + dt.timedelta(days=1)).timestamp() + spec.at_s
        if isinstance(spec, m.TimeTrigger):
            local = time.localtime(now)
            midnight = time.mktime((local.tm_year, local.tm_mon, local.tm_mday, 0, 0, 0, 0, 0, -1))
            due = midnight + spec.at_s
            if due <= now:
                tomorrow = time.localtime(midnight + 86400 + 3600)
                due = (
                    time.mktime((tomorrow.tm_year, tomorrow.tm_mon, tomorrow.tm_mday, 0, 0, 0, 0, 0, -1))
                    + spec.at_s
                )
            return due
        lat, lon = self.value_of(LATITUDE), self.value_of(LONGITUDE)
        if lat is None or lon is None:
            return None  # asked again once the car knows where it is
        return next_sun_event(float(lat), float(lon), spec.event, now, spec.offset_s)

    async def run(self) -> None:
        while True:
            now = self.wall()
            nearest = 60.0
            for entry in list(self._entries):
                if entry.due is None:
                    entry.due = self.next_due(entry.spec, now)
                    if entry.due is None:
                        continue
                if entry.due <= now:
                    late = now - entry.due
                    entry.due = self.next_due(entry.spec, now)
                    entry.fire(
                        {"value": None, "previous": None, **({"late_s": round(late, 3)} if late > 1 else {})}
                    )
                    if entry.due is None:
                        continue
                nearest = min(nearest, entry.due - now)
            # wake at least once a second: a wall-clock jump is noticed within a second
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.01, min(1.0, self.delay(nearest))))
