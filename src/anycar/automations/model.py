"""What a checked definition is made of: triggers, conditions, actions, automations, scenes.

Plain, immutable data built by ``compiler.py``; the engine keeps run-time state elsewhere.
``where`` is always ``file:line`` so that traces and errors point at the definition.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from anycar.automations.expressions import Expression
from anycar.automations.place import LATITUDE, LONGITUDE


# -- triggers -------------------------------------------------------------------------------
@dataclass(frozen=True)
class SignalTrigger:
    """A signal changes, equals a value (``to``/``from``), or enters a range (``above``/``below``,
    with hysteresis); held ``for_s`` seconds if set; unavailable for less than ``grace_s`` is no
    interruption."""

    path: str
    to: tuple[Any, ...] | None = None
    from_: tuple[Any, ...] | None = None
    above: float | None = None
    below: float | None = None
    hysteresis: float = 0.0
    for_s: float = 0.0
    grace_s: float = 10.0
    id: str = ""
    where: str = ""

    @property
    def is_range(self) -> bool:
        return self.above is not None or self.below is not None

    def describe(self) -> str:
        parts = [self.path]
        if self.from_ is not None:
            parts.append(f"from {_one(self.from_)}")
        if self.to is not None:
            parts.append(f"to {_one(self.to)}")
        if self.above is not None:
            parts.append(f"above {self.above:g}")
        if self.below is not None:
            parts.append(f"below {self.below:g}")
        if self.hysteresis:
            parts.append(f"(hysteresis {self.hysteresis:g})")
        if self.to is None and self.from_ is None and not self.is_range:
            parts.append("changes")
        if self.for_s:
            parts.append(f"for {self.for_s:g} s")
        return " ".join(parts)


@dataclass(frozen=True)
class TimeTrigger:
    at_s: int  # seconds after local midnight
    id: str = ""
    where: str = ""

    def describe(self) -> str:
        return f"at {self.at_s // 3600:02d}:{self.at_s // 60 % 60:02d}:{self.at_s % 60:02d}"


@dataclass(frozen=True)
class IntervalTrigger:
    every_s: float
    id: str = ""
    where: str = ""

    def describe(self) -> str:
        return f"every {self.every_s:g} s"


@dataclass(frozen=True)
class SunTrigger:
    event: str  # sunrise | sunset | dawn | dusk
    offset_s: float = 0.0
    id: str = ""
    where: str = ""

    def describe(self) -> str:
        return self.event + (f" {self.offset_s:+g} s" if self.offset_s else "")


@dataclass(frozen=True)
class DrivingTrigger:
    to: str  # a state or "any"
    from_: str | None = None
    id: str = ""
    where: str = ""

    def describe(self) -> str:
        return f"driving state {'from ' + self.from_ + ' ' if self.from_ else ''}to {self.to}"


@dataclass(frozen=True)
class AccessoryTrigger:
    event: str  # fitted | removed | shed | restored
    instance: str | None = None
    id: str = ""
    where: str = ""

    def describe(self) -> str:
        return f"{self.instance or 'an accessory'} {self.event}"


@dataclass(frozen=True)
class GeofenceTrigger:
    name: str
    shape: Any  # anycar.automations.place.Fence
    event: str  # enter | leave
    id: str = ""
    where: str = ""

    def describe(self) -> str:
        return f"{self.event} geofence {self.name}"


@dataclass(frozen=True)
class FleetEventTrigger:
    """A ``fleet_event`` command from the fleet cloud (over the uplink), by its type."""

    event: str  # e.g. delivery_assigned
    id: str = ""
    where: str = ""

    def describe(self) -> str:
        return f"fleet event {self.event}"


Trigger = (
    SignalTrigger
    | TimeTrigger
    | IntervalTrigger
    | SunTrigger
    | DrivingTrigger
    | AccessoryTrigger
    | GeofenceTrigger
    | FleetEventTrigger
)


# -- conditions -----------------------------------------------------------------------------
@dataclass(frozen=True)
class AllOf:
    items: tuple[Condition, ...]
    where: str = ""


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Condition, ...]
    where: str = ""


@dataclass(frozen=True)
class NoneOf:
    items: tuple[Condition, ...]
    where: str = ""


@dataclass(frozen=True)
class SignalCondition:
    path: str
    equals: tuple[Any, ...] | None = None
    above: float | None = None
    below: float | None = None
    for_s: float = 0.0
    key: str = ""  # for "has been true for": the tracker's key
    where: str = ""

    def describe(self) -> str:
        parts = [self.path]
        if self.equals is not None:
            parts.append(f"is {_one(self.equals)}")
        if self.above is not None:
            parts.append(f"> {self.above:g}")
        if self.below is not None:
            parts.append(f"< {self.below:g}")
        if self.for_s:
            parts.append(f"for {self.for_s:g} s")
        return " ".join(parts)

    def holds(self, value: Any) -> bool:
        if value is None:
            return False
        if self.equals is not None and value not in self.equals:
            return False
        if self.above is not None or self.below is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return False
            if self.above is not None and not value > self.above:
                return False
            if self.below is not None and not value < self.below:
                return False
        return True


@dataclass(frozen=True)
class TimeCondition:
    after_s: int | None = None
    before_s: int | None = None
    weekdays: frozenset[int] | None = None  # 0 = Monday
    where: str = ""


@dataclass(frozen=True)
class SunCondition:
    after: str | None = None
    before: str | None = None
    where: str = ""


@dataclass(frozen=True)
class DrivingCondition:
    states: frozenset[str]
    where: str = ""


@dataclass(frozen=True)
class TemplateCondition:
    expression: Expression
    where: str = ""


@dataclass(frozen=True)
class TriggerCondition:
    ids: frozenset[str]
    where: str = ""


Condition = (
    AllOf
    | AnyOf
    | NoneOf
    | SignalCondition
    | TimeCondition
    | SunCondition
    | DrivingCondition
    | TemplateCondition
    | TriggerCondition
)


# -- actions --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Actuate:
    path: str
    value: Any
    template: Expression | None = None
    timeout_s: float | None = None
    continue_on_error: bool = False
    where: str = ""


@dataclass(frozen=True)
class ApplyScene:
    scene: str
    continue_on_error: bool = False
    where: str = ""


@dataclass(frozen=True)
class Delay:
    seconds: float
    where: str = ""


@dataclass(frozen=True)
class WaitFor:
    triggers: tuple[Trigger, ...]
    timeout_s: float | None = None
    continue_on_timeout: bool = True
    where: str = ""


@dataclass(frozen=True)
class Branch:
    conditions: tuple[Condition, ...]
    sequence: tuple[Action, ...]


@dataclass(frozen=True)
class Choose:
    branches: tuple[Branch, ...]
    default: tuple[Action, ...] = ()
    where: str = ""


@dataclass(frozen=True)
class Repeat:
    sequence: tuple[Action, ...]
    count: int | None = None
    while_: tuple[Condition, ...] = ()
    until: tuple[Condition, ...] = ()
    cap: int = 1000
    where: str = ""


@dataclass(frozen=True)
class Notify:
    message: str
    where: str = ""


@dataclass(frozen=True)
class Stop:
    reason: str
    error: bool = False
    where: str = ""


Action = Actuate | ApplyScene | Delay | WaitFor | Choose | Repeat | Notify | Stop


# -- the whole --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Automation:
    id: str
    triggers: tuple[Trigger, ...]
    conditions: tuple[Condition, ...]
    actions: tuple[Action, ...]
    alias: str = ""
    description: str = ""
    owner: str = "owner"
    mode: str = "single"
    max: int = 10
    max_runs_per_minute: int = 600
    variables: dict[str, Any] = field(default_factory=dict)  # name -> constant or ("signal", path)
    enabled: bool = True
    source: str = ""
    where: str = ""
    origin: str = "file"  # file | rest
    raw: dict[str, Any] = field(default_factory=dict, compare=False)
    targets: tuple[str, ...] = ()  # every actuator it may set (scenes included)

    @property
    def title(self) -> str:
        return self.alias or self.id


@dataclass(frozen=True)
class Scene:
    id: str
    targets: dict[str, Any]
    name: str = ""
    owner: str = "owner"
    source: str = ""
    where: str = ""
    origin: str = "file"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "owner": self.owner, "targets": dict(self.targets)}


def _one(values: tuple[Any, ...]) -> str:
    return repr(values[0]) if len(values) == 1 else "one of " + ", ".join(map(repr, values))


# -- walking the tree -------------------------------------------------------------------------
def walk_actions(actions: Iterable[Action]) -> Iterable[Action]:
    for action in actions:
        yield action
        if isinstance(action, Choose):
            for b in action.branches:
                yield from walk_actions(b.sequence)
            yield from walk_actions(action.default)
        elif isinstance(action, Repeat):
            yield from walk_actions(action.sequence)


def walk_conditions(conds: Iterable[Condition]) -> Iterable[Condition]:
    for c in conds:
        yield c
        if isinstance(c, (AllOf, AnyOf, NoneOf)):
            yield from walk_conditions(c.items)


def all_conditions(a: Automation) -> Iterable[Condition]:
    yield from walk_conditions(a.conditions)
    for action in walk_actions(a.actions):
        if isinstance(action, Choose):
            for b in action.branches:
                yield from walk_conditions(b.conditions)
        elif isinstance(action, Repeat):
            yield from walk_conditions((*action.while_, *action.until))


def signal_conditions(a: Automation) -> Iterable[SignalCondition]:
    return (c for c in all_conditions(a) if isinstance(c, SignalCondition))


def wait_paths(a: Automation) -> set[str]:
    """Signals that waits may watch: subscribed up front so a wait never needs a new subscription."""
    out: set[str] = set()
    for action in walk_actions(a.actions):
        if isinstance(action, WaitFor):
            for t in action.triggers:
                if isinstance(t, SignalTrigger):
                    out.add(t.path)
                elif isinstance(t, GeofenceTrigger):
                    out.update((LATITUDE, LONGITUDE))
    return out


def read_paths(a: Automation) -> set[str]:
    """Every signal an automation reads: triggers (waits included), conditions, templates,
    variables, the car's position for the sun and geofences."""
    out: set[str] = set(wait_paths(a))
    for t in a.triggers:
        if isinstance(t, SignalTrigger):
            out.add(t.path)
        elif isinstance(t, (GeofenceTrigger, SunTrigger)):
            out.update((LATITUDE, LONGITUDE))
    for c in all_conditions(a):
        if isinstance(c, SignalCondition):
            out.add(c.path)
        elif isinstance(c, TemplateCondition):
            out.update(c.expression.signals)
        elif isinstance(c, SunCondition):
            out.update((LATITUDE, LONGITUDE))
    for action in walk_actions(a.actions):
        if isinstance(action, Actuate) and action.template is not None:
            out.update(action.template.signals)
    out.update(
        v[1] for v in a.variables.values() if isinstance(v, tuple) and len(v) == 2 and v[0] == "signal"
    )
    return out
