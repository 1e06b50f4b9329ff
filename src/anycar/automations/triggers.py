"""The engine's index of live trigger watches: by signal path for the hot path (one dictionary
look-up per update), and by kind for the triggers that do not come from signals (accessory
events, driving-state changes, fleet events). Timed triggers go to the scheduler.

Each ``watch`` returns how to stop it, so a run's ``wait`` can add watches and take them away
without the engine re-indexing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from anycar.automations import model as m
from anycar.automations.place import LATITUDE, LONGITUDE
from anycar.automations.timed import Timed
from anycar.automations.watch import FenceWatch, HeldWatch, SignalWatch, Timing, since_key

Handler = Callable[[str, Any, dict[str, Any]], None]
Fire = Callable[[dict[str, Any]], None]


class TriggerIndex:
    def __init__(self, timed: Timed, current: Callable[[str], Any]) -> None:
        self.timed = timed
        self.current = current  # a signal's current value (None if it has none)
        self.by_path: dict[str, list[Handler]] = {}
        self.watches: list[Any] = []
        self.held: dict[str, HeldWatch] = {}
        self.accessory: list[tuple[m.AccessoryTrigger, Fire]] = []
        self.driving: list[tuple[m.DrivingTrigger, Fire]] = []
        self.fleet: list[tuple[str, m.FleetEventTrigger, Fire]] = []

    def clear(self) -> None:
        for w in self.watches:
            w.close()
        self.watches = []
        self.by_path = {}
        self.held = {}
        self.timed.clear()
        self.accessory = []
        self.driving = []
        self.fleet = []

    def add(self, paths: Iterable[str], handler: Handler, watch: Any) -> None:
        for p in paths:
            self.by_path.setdefault(p, []).append(handler)
        self.watches.append(watch)

    def hold(self, automation: str, cond: m.SignalCondition, timing: Timing) -> None:
        """Watch a "has been true for" condition, so a run can ask since when it holds."""
        key = since_key(automation, cond.key, cond.describe())
        held = HeldWatch(cond, key, timing)
        self.held[f"{automation}/{cond.key}"] = held
        self.add(held.paths, _held_handler(held), held)
        held.prime(self.current(cond.path))

    def watch(
        self, automation: str, where: str, spec: m.Trigger, fire: Fire, timing: Timing
    ) -> Callable[[], None]:
        """Start watching one trigger; returns how to stop."""
        if isinstance(spec, m.SignalTrigger):
            watch = SignalWatch(spec, since_key(automation, where, spec), timing, fire)
            handler: Handler = lambda p, v, info: watch.on_value(v, info)  # noqa: E731
            self.add(watch.paths, handler, watch)
            watch.prime(self.current(spec.path))
            return lambda: self.unwatch(watch.paths, handler, watch)
        if isinstance(spec, m.GeofenceTrigger):
            fence = FenceWatch(spec, fire)
            fhandler: Handler = lambda p, v, info: fence.on_value_of(p, v, info)  # noqa: E731
            self.add(fence.paths, fhandler, fence)
            fence.prime(self.current(LATITUDE), self.current(LONGITUDE))
            return lambda: self.unwatch(fence.paths, fhandler, fence)
        if isinstance(spec, (m.TimeTrigger, m.IntervalTrigger, m.SunTrigger)):
            return self.timed.add(spec, fire)
        if isinstance(spec, m.AccessoryTrigger):
            entry = (spec, fire)
            self.accessory.append(entry)
            return lambda: self.accessory.remove(entry) if entry in self.accessory else None
        if isinstance(spec, m.DrivingTrigger):
            dentry = (spec, fire)
            self.driving.append(dentry)
            return lambda: self.driving.remove(dentry) if dentry in self.driving else None
        if isinstance(spec, m.FleetEventTrigger):
            fentry = (automation, spec, fire)
            self.fleet.append(fentry)
            return lambda: self.fleet.remove(fentry) if fentry in self.fleet else None
        raise TypeError(f"unknown trigger {spec!r}")

    def unwatch(self, paths: Iterable[str], handler: Handler, watch: Any) -> None:
        for p in paths:
            handlers = self.by_path.get(p)
            if handlers and handler in handlers:
                handlers.remove(handler)
        watch.close()
        if watch in self.watches:
            self.watches.remove(watch)


def _held_handler(held: HeldWatch) -> Handler:
    def handler(path: str, value: Any, info: dict[str, Any]) -> None:
        held.on_value(value, info)

    return handler
