"""Evaluating conditions, each with its result and the reason, for the trace."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from anycar.automations import model as m
from anycar.automations.expressions import ExpressionFailed
from anycar.automations.place import LATITUDE, LONGITUDE, is_between


@dataclass
class Scope:
    """What a condition may look at: values (live, or given for a dry run), time, driving state,
    which trigger fired, variables, and how long "has been true for" conditions have held."""

    value_of: Callable[[str], Any]
    now: float
    driving_state: str | None = None
    trigger_id: str = ""
    trigger_value: Any = None
    trigger_previous: Any = None
    variables: dict[str, Any] = field(default_factory=dict)
    held_for: Callable[[str], float | None] = lambda key: None
    seen: dict[str, Any] = field(default_factory=dict)
    overridden: frozenset[str] = frozenset()
    tz: dt.tzinfo | None = None  # the car's time zone (a simulated car's); None: the hub's local

    def read(self, path: str) -> Any:
        value = self.value_of(path)
        self.seen[path] = value
        return value

    def lookup(self, name: str) -> Any:
        if name == "value":
            return self.trigger_value
        if name == "previous":
            return self.trigger_previous
        if name == "trigger":
            return self.trigger_id
        if name in self.variables:
            var = self.variables[name]
            if isinstance(var, tuple) and len(var) == 2 and var[0] == "signal":
                return self.read(var[1])
            return var
        return self.read(name)


Record = Callable[[dict[str, Any]], None]


def check_all(
    conditions: tuple[m.Condition, ...], scope: Scope, record: Record, where: str = "conditions"
) -> bool:
    """All must hold; stops at the first that does not (like Home Assistant), recording each."""
    for i, cond in enumerate(conditions):
        ok, why = check(cond, scope)
        record({"where": f"{where}[{i}]", "at": getattr(cond, "where", ""), "result": ok, "why": why})
        if not ok:
            return False
    return True


def check(cond: m.Condition, scope: Scope) -> tuple[bool, str]:
    if isinstance(cond, m.AllOf):
        for item in cond.items:
            ok, why = check(item, scope)
            if not ok:
                return False, f"and: {why}"
        return True, f"and: all {len(cond.items)} hold"
    if isinstance(cond, m.AnyOf):
        reasons = []
        for item in cond.items:
            ok, why = check(item, scope)
            if ok:
                return True, f"or: {why}"
            reasons.append(why)
        return False, "or: none holds (" + "; ".join(reasons) + ")"
    if isinstance(cond, m.NoneOf):
        for item in cond.items:
            ok, why = check(item, scope)
            if ok:
                return False, f"not: {why}"
        return True, "not: none of them holds"
    if isinstance(cond, m.SignalCondition):
        value = scope.read(cond.path)
        if value is None:
            return False, f"{cond.path} has no value"
        if not cond.holds(value):
            return (
                False,
                f"{cond.path} is {value!r}, wanted {cond.describe().removeprefix(cond.path).strip()}",
            )
        if cond.for_s:
            if cond.path in scope.overridden:
                return True, f"{cond.path} is {value!r} (given; held for {cond.for_s:g} s assumed)"
            held = scope.held_for(cond.key)
            if held is None or held < cond.for_s:
                return False, f"{cond.path} is {value!r} but only for {held or 0:.1f} s of {cond.for_s:g} s"
            return True, f"{cond.path} is {value!r} for {held:.1f} s (>= {cond.for_s:g} s)"
        return True, f"{cond.path} is {value!r}"
    if isinstance(cond, m.TimeCondition):
        return _time(cond, scope.now, scope.tz)
    if isinstance(cond, m.SunCondition):
        lat, lon = scope.read(LATITUDE), scope.read(LONGITUDE)
        if lat is None or lon is None:
            return False, "the car's position is not known"
        ok = is_between(float(lat), float(lon), scope.now, cond.after, cond.before)
        span = " and ".join(f"{k} {v}" for k, v in (("after", cond.after), ("before", cond.before)) if v)
        return ok, f"{'it is' if ok else 'it is not'} {span} at {float(lat):.3f}, {float(lon):.3f}"
    if isinstance(cond, m.DrivingCondition):
        state = scope.driving_state
        ok = state in cond.states
        return ok, f"driving state is {state}" + (
            "" if ok else f", wanted {' or '.join(sorted(cond.states))}"
        )
    if isinstance(cond, m.TemplateCondition):
        try:
            result = cond.expression.evaluate(scope.lookup)
        except ExpressionFailed as exc:
            return False, f"template failed: {exc}"
        return bool(result), f"{cond.expression.text} -> {result!r}"
    if isinstance(cond, m.TriggerCondition):
        ok = scope.trigger_id in cond.ids
        return ok, f"trigger {scope.trigger_id or '(no id)'}" + (
            "" if ok else f", wanted {' or '.join(sorted(cond.ids))}"
        )
    return False, f"unknown condition {type(cond).__name__}"


def _time(cond: m.TimeCondition, now: float, tz: dt.tzinfo | None = None) -> tuple[bool, str]:
    local = dt.datetime.fromtimestamp(now, tz)
    secs = local.hour * 3600 + local.minute * 60 + local.second
    if cond.weekdays is not None and local.weekday() not in cond.weekdays:
        return False, f"{local:%a} is not one of the weekdays"
    after, before = cond.after_s, cond.before_s
    if after is not None and before is not None:
        ok = after <= secs < before if after < before else (secs >= after or secs < before)
    elif after is not None:
        ok = secs >= after
    elif before is not None:
        ok = secs < before
    else:
        ok = True
    return ok, f"local time {local:%H:%M:%S} is {'inside' if ok else 'outside'} the window"
