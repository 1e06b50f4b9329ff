"""Run-time state of triggers: the threshold with hysteresis, the ``for:`` timer that survives a
restart and tolerates a short unavailability, geofence inside/outside.

A watch is told each new value of its signal(s) by the engine's index and calls ``fire`` when
its trigger happens. It never scans anything: one watch, one trigger.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable
from typing import Any

from anycar.automations import model as m
from anycar.automations.place import LATITUDE, LONGITUDE

Fire = Callable[[dict[str, Any]], None]
_UNSET: Any = object()


def since_key(automation: str, where: str, spec: Any) -> str:
    """A key for a persisted "true since" that changes when the trigger's meaning changes."""
    text = f"{spec.describe() if hasattr(spec, 'describe') else spec}"
    return f"{automation}:{where}:{zlib.crc32(text.encode()):08x}"


class Timing:
    """What watches need from the engine: wall time, the loop, and the durable "since" store."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        wall: Callable[[], float],
        load_since: Callable[[str], float | None],
        save_since: Callable[[str, float | None], None],
        delay: Callable[[float], float] = lambda s: max(0.0, s),
        *,
        exact: bool = True,
    ) -> None:
        self.loop = loop
        self.wall = wall
        self.load_since = load_since
        self.save_since = save_since
        self.delay = delay  # the clock's seconds as the loop's (a simulated car's run faster)
        self.exact = exact  # the wall clock: a timer's moment is trusted as it fires

    def call_later(self, seconds: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        """Call back after ``seconds`` of the clock."""
        return self.loop.call_later(self.delay(seconds), callback)


class SignalWatch:
    """One signal trigger (or a "has been true for" condition, with ``fire`` unused)."""

    def __init__(self, spec: m.SignalTrigger, key: str, timing: Timing, fire: Fire) -> None:
        self.spec = spec
        self.key = key
        self.timing = timing
        self.fire = fire
        self.last: Any = _UNSET  # last available value
        self.holding = False  # the trigger's condition holds now
        self.since: float | None = None  # wall time it started holding (for: only)
        self.unavailable_at: float | None = None
        self.due_while_unavailable = False
        self._previous_at_start: Any = None  # the value before the for: started holding
        self._timer: asyncio.TimerHandle | None = None
        self._grace: asyncio.TimerHandle | None = None

    @property
    def paths(self) -> tuple[str, ...]:
        return (self.spec.path,)

    # -- the condition --------------------------------------------------------------------------
    def _holds(self, value: Any, previous: Any) -> bool:
        s = self.spec
        if s.is_range:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return False
            h = s.hysteresis if self.holding else 0.0
            lo_ok = s.above is None or value > s.above - h
            hi_ok = s.below is None or value < s.below + h
            return lo_ok and hi_ok
        if s.to is not None and value not in s.to:
            return False
        if s.from_ is not None and s.to is None:
            # only "from": holds once the value has left the from-set
            return value not in s.from_
        return True

    def _transition_ok(self, previous: Any) -> bool:
        s = self.spec
        return s.from_ is None or (previous is not _UNSET and previous in s.from_)

    # -- start-up ------------------------------------------------------------------------------
    def prime(self, value: Any) -> None:
        """Take the current value without firing; resume a persisted ``for:`` timer."""
        persisted = self.timing.load_since(self.key) if self.spec.for_s else None
        changes_only = not (self.spec.is_range or self.spec.to is not None or self.spec.from_ is not None)
        if value is not None:
            self.last = value
            self.holding = persisted is not None if changes_only else self._holds(value, _UNSET)
        if persisted is None:
            return
        if value is None:
            # not heard yet after a restart: keep the timer, as a short unavailability
            self.holding = True
            self.since = persisted
            self._unavailable()
            self._schedule()
        elif self.holding:
            self.since = persisted
            self._schedule()
        else:
            self.timing.save_since(self.key, None)

    # -- values -------------------------------------------------------------------------------
    def on_value(self, value: Any, info: dict[str, Any]) -> None:
        if value is None:
            if self.last is not _UNSET or self.since is not None:
                self._unavailable()
            return
        back_from_unavailable = self.unavailable_at is not None
        if back_from_unavailable:
            self._available()
        previous = self.last
        self.last = value
        if previous is _UNSET and self.since is None:
            # the first value seen (after a start or a long drop-out) is where we start from,
            # not a change: a restarted hub does not re-run what already happened
            self.holding = self._holds(value, previous)
            return
        if not self.spec.is_range and self.spec.to is None and self.spec.from_ is None:
            if previous is _UNSET or previous == value:
                return
            self._hit(value, previous, info, restart_timer=True)
            return
        now_holds = self._holds(value, previous)
        was = self.holding
        self.holding = now_holds
        if now_holds and not was and self._transition_ok(previous):
            self._hit(value, previous, info, restart_timer=False)
        elif not now_holds and self.since is not None:
            self._cancel()
        elif now_holds and back_from_unavailable and self.due_while_unavailable:
            self.due_while_unavailable = False
            self._fire_now(value, previous, {**info, "late": "the for: duration ended while unavailable"})

    def _hit(self, value: Any, previous: Any, info: dict[str, Any], *, restart_timer: bool) -> None:
        if not self.spec.for_s:
            self.fire({**info, "value": value, "previous": None if previous is _UNSET else previous})
            return
        if self.since is not None and not restart_timer:
            return
        self._cancel()
        self.since = self.timing.wall()
        self.timing.save_since(self.key, self.since)
        self._previous_at_start = None if previous is _UNSET else previous
        self._schedule()

    def _schedule(self) -> None:
        assert self.since is not None  # nosec B101 # narrows an Optional for mypy; an invariant of this object, not a check of outside input
        if self._timer is not None:
            self._timer.cancel()
        left = max(0.0, self.since + self.spec.for_s - self.timing.wall())
        self._timer = self.timing.call_later(left, self._due)

    def _due(self) -> None:
        self._timer = None
        if (
            not self.timing.exact
            and self.since is not None
            and self.timing.wall() < self.since + self.spec.for_s
        ):
            # a simulated clock behind its speed-up: the for: ends when the car's clock says so
            self._timer = self.timing.loop.call_later(0.02, self._due)
            return
        if self.unavailable_at is not None:
            self.due_while_unavailable = True
            return
        self._fire_now(self.last, self._previous_at_start, {})

    def _fire_now(self, value: Any, previous: Any, info: dict[str, Any]) -> None:
        since = self.since
        self.since = None
        self.timing.save_since(self.key, None)
        self.fire({**info, "value": value, "previous": previous, "held_since": since})

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.since is not None:
            self.since = None
            self.timing.save_since(self.key, None)
        self.due_while_unavailable = False

    # -- unavailability and its grace ------------------------------------------------------------
    def _unavailable(self) -> None:
        if self.unavailable_at is None:
            self.unavailable_at = self.timing.wall()
            if self.since is not None:
                self._grace = self.timing.call_later(self.spec.grace_s, self._grace_over)

    def _available(self) -> None:
        self.unavailable_at = None
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None

    def _grace_over(self) -> None:
        self._grace = None
        self.holding = False
        self.last = _UNSET
        self._cancel()

    def held_for(self) -> float | None:
        """Seconds the condition has held, for "has been true for" (``None``: not holding)."""
        if self.since is None:
            return None
        return self.timing.wall() - self.since

    def close(self) -> None:
        for handle in (self._timer, self._grace):
            if handle is not None:
                handle.cancel()
        self._timer = self._grace = None


class HeldWatch:
    """Since when a signal condition has held, for ``for:`` in conditions; persisted like timers."""

    def __init__(self, cond: m.SignalCondition, key: str, timing: Timing) -> None:
        self.cond = cond
        self.key = key
        self.timing = timing
        self.since: float | None = None

    @property
    def paths(self) -> tuple[str, ...]:
        return (self.cond.path,)

    def prime(self, value: Any) -> None:
        persisted = self.timing.load_since(self.key)
        if value is not None and self.cond.holds(value):
            self.since = persisted if persisted is not None else self.timing.wall()
            if persisted is None:
                self.timing.save_since(self.key, self.since)
        elif value is None and persisted is not None:
            self.since = persisted
        elif persisted is not None:
            self.timing.save_since(self.key, None)

    def on_value(self, value: Any, info: dict[str, Any]) -> None:
        if value is None:
            return  # unavailable: no change of what we know
        if self.cond.holds(value):
            if self.since is None:
                self.since = self.timing.wall()
                self.timing.save_since(self.key, self.since)
        elif self.since is not None:
            self.since = None
            self.timing.save_since(self.key, None)

    def held_for(self) -> float | None:
        return None if self.since is None else self.timing.wall() - self.since

    def close(self) -> None:
        return None


class FenceWatch:
    """Inside or outside a geofence, from latitude and longitude."""

    def __init__(self, spec: m.GeofenceTrigger, fire: Fire) -> None:
        self.spec = spec
        self.fire = fire
        self.lat: float | None = None
        self.lon: float | None = None
        self.inside: bool | None = None

    @property
    def paths(self) -> tuple[str, ...]:
        return (LATITUDE, LONGITUDE)

    def prime(self, lat: Any, lon: Any) -> None:
        self.lat, self.lon = lat, lon
        if lat is not None and lon is not None:
            self.inside = self.spec.shape.contains(float(lat), float(lon))

    def on_value_of(self, path: str, value: Any, info: dict[str, Any]) -> None:
        if value is None:
            return
        if path == LATITUDE:
            self.lat = value
        else:
            self.lon = value
        if self.lat is None or self.lon is None:
            return
        inside = self.spec.shape.contains(float(self.lat), float(self.lon))
        was = self.inside
        self.inside = inside
        if was is None or was == inside:
            return
        if inside == (self.spec.event == "enter"):
            self.fire({**info, "value": [self.lat, self.lon], "previous": None})

    def close(self) -> None:
        return None
