"""From a schema-valid document to checked ``Automation``s and ``Scene``s, against the live
catalog: every signal known (else "did you mean"), values of the signal's datatype, units that
match, actuators (not sensors) as targets and someone providing them, the owner's grant
covering every target. Each problem names ``file:line`` and the automation's id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from anycar.automations import model as m
from anycar.automations.expressions import Expression, compile_expression, template_text
from anycar.automations.place import Fence
from anycar.automations.source import Document, Problem, Where, seconds
from anycar.errors import AnycarError, ConfigError
from anycar.model.catalog import Catalog
from anycar.model.datatypes import ValueRejected, is_numeric
from anycar.model.signal import NodeType, Signal
from anycar.policy.access import AccessControl
from anycar.policy.errors import PermissionDenied
from anycar.policy.privileges import Grant, Privilege

WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
REPEAT_CAP = 1000
# The vehicle's owner: Manage over every non-safety-critical actuator (safety needs Administer,
# which no automation gets).
OWNER_GRANT = Grant("owner", "app", Privilege.MANAGE, ("Vehicle",), ("Vehicle",))


class Invalid(Exception):
    """One problem at one place; collected, never raised out of the compiler."""

    def __init__(self, where: Where, message: str, kind: str = "invalid") -> None:
        super().__init__(message)
        self.where = where
        self.message = message
        self.kind = kind


@dataclass
class Context:
    """What the compiler checks against."""

    catalog: Catalog
    provided: Callable[[str], bool] = lambda path: True
    grant_for: Callable[[str], Grant | None] = lambda subject: None
    access: AccessControl = field(default_factory=AccessControl)
    brand: str | None = None
    has_driving_state: bool = True
    scenes: Mapping[str, m.Scene] = field(default_factory=dict)
    waiting_scenes: set[str] = field(default_factory=set)  # refused only for want of a provider


class Compiler:
    def __init__(self, ctx: Context, doc: Document) -> None:
        self.ctx = ctx
        self.doc = doc
        self._automation = ""
        self._variables: dict[str, Any] = {}
        self._targets: list[str] = []
        self._counter = 0

    # -- entry points ---------------------------------------------------------------------------
    def scenes(self) -> tuple[list[m.Scene], list[Problem]]:
        out: list[m.Scene] = []
        problems: list[Problem] = []
        for i, raw in enumerate(self.doc.data.get("scenes", []) or []):
            where: Where = ("scenes", i)
            self._automation = str(raw.get("id", ""))
            try:
                out.append(self._scene(raw, where))
            except Invalid as exc:
                problems.append(self._problem(exc))
        return out, problems

    def automations(self) -> tuple[list[m.Automation], list[Problem], list[str]]:
        """Checked automations, problems, and ids skipped as not for this brand."""
        out: list[m.Automation] = []
        problems: list[Problem] = []
        skipped: list[str] = []
        for i, raw in enumerate(self.doc.data.get("automations", []) or []):
            self._automation = str(raw.get("id", ""))
            brands = raw.get("brands")
            if brands and self.ctx.brand is not None and self.ctx.brand not in brands:
                skipped.append(self._automation)
                continue
            collected: list[Invalid] = []
            built: m.Automation | None = None
            try:
                built = self._automation_of(raw, ("automations", i), collected)
            except Invalid as exc:
                collected.append(exc)
            problems.extend(self._problem(exc) for exc in collected)
            if built is not None and not collected:
                out.append(built)
        return out, problems, skipped

    def _problem(self, exc: Invalid) -> Problem:
        return Problem(
            self.doc.source, self.doc.line(exc.where), exc.message, self._automation or None, exc.kind
        )

    def _where(self, where: Where) -> str:
        line = self.doc.line(where)
        return f"{self.doc.source}:{line}" if line else self.doc.source

    # -- automations -----------------------------------------------------------------------------
    def _automation_of(self, raw: dict[str, Any], where: Where, collected: list[Invalid]) -> m.Automation:
        self._variables = {}
        self._targets = []
        owner = str(raw.get("owner", "owner"))
        grant = self._grant(owner, (*where, "owner"))
        for name, value in (raw.get("variables") or {}).items():
            if isinstance(value, dict):
                self._signal(value["signal"], (*where, "variables", name, "signal"))
                self._variables[name] = ("signal", value["signal"])
            else:
                self._variables[name] = value
        triggers = []
        for i, t in enumerate(raw["triggers"]):
            try:
                triggers.append(self._trigger(t, (*where, "triggers", i)))
            except Invalid as exc:
                collected.append(exc)
        conditions = self._each(
            raw.get("conditions") or [], (*where, "conditions"), self._condition, collected
        )
        actions = self._each(raw["actions"], (*where, "actions"), self._action, collected)
        for path in dict.fromkeys(self._targets):
            try:
                self.ctx.access.check_actuate(grant, path)
            except PermissionDenied as exc:
                collected.append(Invalid((*where, "owner"), f"owner {owner} may not set {path}: {exc}"))
        mode = str(raw.get("mode", "single"))
        return m.Automation(
            id=str(raw["id"]),
            triggers=tuple(triggers),
            conditions=tuple(conditions),
            actions=tuple(actions),
            alias=str(raw.get("alias", "")),
            description=str(raw.get("description", "")),
            owner=owner,
            mode=mode,
            max=int(raw.get("max", 10 if mode in ("queued", "parallel") else 1)),
            max_runs_per_minute=int(raw.get("max_runs_per_minute", 600)),
            variables=dict(self._variables),
            enabled=bool(raw.get("enabled", True)),
            source=self.doc.source,
            where=self._where(where),
            raw=raw,
            targets=tuple(dict.fromkeys(self._targets)),
        )

    def _each(
        self, items: list[Any], where: Where, build: Callable[[Any, Where], Any], collected: list[Invalid]
    ) -> list[Any]:
        out = []
        for i, item in enumerate(items):
            try:
                out.append(build(item, (*where, i)))
            except Invalid as exc:
                collected.append(exc)
        return out

    def _all(self, items: list[Any], where: Where, build: Callable[[Any, Where], Any]) -> tuple[Any, ...]:
        """Like ``_each`` but the first problem inside a nested block is raised (one per block)."""
        return tuple(build(item, (*where, i)) for i, item in enumerate(items))

    def _grant(self, owner: str, where: Where) -> Grant:
        if owner == "owner":
            return OWNER_GRANT
        grant = self.ctx.grant_for(owner)
        if grant is None:
            raise Invalid(
                where, f"owner {owner!r} has no grant on this hub (an app id or a fitted accessory)"
            )
        return grant

    # -- signals ---------------------------------------------------------------------------------
    def _signal(self, path: str, where: Where) -> Signal:
        try:
            return self.ctx.catalog.get(path)
        except AnycarError as exc:
            kind = "no_provider" if path.startswith("Vehicle.Accessories.") else "invalid"
            raise Invalid(where, f"unknown signal: {exc}", kind) from None

    def _value(self, sig: Signal, value: Any, where: Where) -> Any:
        try:
            return sig.validate(value)
        except ValueRejected as exc:
            raise Invalid(where, f"{value!r} does not fit {sig.path} ({sig.datatype}): {exc}") from None

    def _number(self, sig: Signal, value: Any, where: Where) -> float | None:
        if value is None:
            return None
        if not is_numeric(sig.datatype) or sig.datatype.endswith("[]"):
            raise Invalid(where, f"{sig.path} is {sig.datatype}; above/below need a numeric signal")
        return float(value)

    def _unit(self, sig: Signal, raw: dict[str, Any], where: Where) -> None:
        unit = raw.get("unit")
        if unit is not None and unit != sig.unit:
            raise Invalid(
                (*where, "unit"),
                f"{sig.path} is in {sig.unit or 'no unit'}, not {unit!r}; give values in {sig.unit}",
            )

    def _values(self, sig: Signal, raw: Any, where: Where) -> tuple[Any, ...]:
        items = raw if isinstance(raw, list) and not sig.datatype.endswith("[]") else [raw]
        return tuple(self._value(sig, v, where) for v in items)

    # -- triggers ----------------------------------------------------------------------------------
    def _trigger(self, raw: dict[str, Any], where: Where) -> m.Trigger:
        tid = str(raw.get("id", ""))
        at = self._where(where)
        if "signal" in raw:
            sig = self._signal(raw["signal"], (*where, "signal"))
            self._unit(sig, raw, where)
            above = self._number(sig, raw.get("above"), (*where, "above"))
            below = self._number(sig, raw.get("below"), (*where, "below"))
            if above is not None and below is not None and above >= below:
                raise Invalid(where, f"above {above:g} and below {below:g} leave no value between them")
            if (raw.get("hysteresis") is not None) and above is None and below is None:
                raise Invalid((*where, "hysteresis"), "hysteresis needs above or below")
            to = self._values(sig, raw["to"], (*where, "to")) if "to" in raw else None
            frm = self._values(sig, raw["from"], (*where, "from")) if "from" in raw else None
            if to is not None and (above is not None or below is not None):
                raise Invalid(where, "use either to/from or above/below, not both")
            return m.SignalTrigger(
                path=sig.path,
                to=to,
                from_=frm,
                above=above,
                below=below,
                hysteresis=float(raw.get("hysteresis", 0.0)),
                for_s=seconds(raw.get("for", 0)),
                grace_s=seconds(raw.get("grace", 10)),
                id=tid,
                where=at,
            )
        if "time" in raw:
            return m.TimeTrigger(_clock(raw["time"]), tid, at)
        if "every" in raw:
            every = seconds(raw["every"])
            if every < 1:
                raise Invalid((*where, "every"), "an interval must be at least 1 s")
            return m.IntervalTrigger(every, tid, at)
        if "sun" in raw:
            self._signal("Vehicle.CurrentLocation.Latitude", where)
            return m.SunTrigger(raw["sun"], seconds(raw.get("offset", 0)), tid, at)
        if "driving_state" in raw:
            if not self.ctx.has_driving_state:
                raise Invalid(
                    where, "driving-state triggers need the cabin's policy (run the hub with --brand)"
                )
            return m.DrivingTrigger(raw["driving_state"], raw.get("from"), tid, at)
        if "accessory" in raw:
            return m.AccessoryTrigger(raw["accessory"], raw.get("instance"), tid, at)
        if "geofence" in raw:
            fence = raw["geofence"]
            try:
                if "circle" in fence:
                    c = fence["circle"]
                    shape = Fence(circle=(float(c["latitude"]), float(c["longitude"]), float(c["radius_m"])))
                else:
                    shape = Fence(polygon=tuple((float(a), float(b)) for a, b in fence["polygon"]))
            except ValueError as exc:
                raise Invalid((*where, "geofence"), f"geofence: {exc}") from None
            return m.GeofenceTrigger(str(fence.get("name", tid or "fence")), shape, raw["event"], tid, at)
        if "fleet_event" in raw:
            return m.FleetEventTrigger(str(raw["fleet_event"]), tid, at)
        raise Invalid(
            where,
            "a trigger needs one of signal, time, every, sun, driving_state, accessory, geofence, fleet_event",
        )

    # -- conditions ------------------------------------------------------------------------------
    def _condition(self, raw: dict[str, Any], where: Where) -> m.Condition:
        at = self._where(where)
        for key, kind in (("and", m.AllOf), ("or", m.AnyOf), ("not", m.NoneOf)):
            if key in raw:
                return kind(self._all(raw[key], (*where, key), self._condition), at)
        if "signal" in raw:
            sig = self._signal(raw["signal"], (*where, "signal"))
            self._unit(sig, raw, where)
            equals = None
            if "equals" in raw:
                equals = self._values(sig, raw["equals"], (*where, "equals"))
            elif "in" in raw:
                equals = tuple(self._value(sig, v, (*where, "in")) for v in raw["in"])
            self._counter += 1
            return m.SignalCondition(
                sig.path,
                equals,
                self._number(sig, raw.get("above"), (*where, "above")),
                self._number(sig, raw.get("below"), (*where, "below")),
                seconds(raw.get("for", 0)),
                key=f"c{self._counter}",
                where=at,
            )
        if "time" in raw:
            spec = raw["time"]
            days = spec.get("weekdays")
            return m.TimeCondition(
                _clock(spec["after"]) if "after" in spec else None,
                _clock(spec["before"]) if "before" in spec else None,
                frozenset(WEEKDAYS[d] for d in days) if days else None,
                at,
            )
        if "sun" in raw:
            self._signal("Vehicle.CurrentLocation.Latitude", where)
            return m.SunCondition(raw["sun"].get("after"), raw["sun"].get("before"), at)
        if "driving_state" in raw:
            if not self.ctx.has_driving_state:
                raise Invalid(
                    where, "driving-state conditions need the cabin's policy (run the hub with --brand)"
                )
            states = raw["driving_state"]
            return m.DrivingCondition(frozenset([states] if isinstance(states, str) else states), at)
        if "template" in raw:
            return m.TemplateCondition(self._expression(raw["template"], (*where, "template")), at)
        if "trigger" in raw:
            ids = raw["trigger"]
            return m.TriggerCondition(frozenset([ids] if isinstance(ids, str) else ids), at)
        raise Invalid(where, "unknown condition")

    def _expression(self, text: str, where: Where) -> Expression:
        try:
            return compile_expression(
                text,
                is_signal=lambda p: self.ctx.catalog.find(p) is not None,
                variables=self._variables,
                where=self._where(where),
            )
        except ConfigError as exc:
            raise Invalid(where, str(exc).split(": ", 1)[-1]) from None

    # -- actions ---------------------------------------------------------------------------------
    def _action(self, raw: dict[str, Any], where: Where) -> m.Action:
        at = self._where(where)
        if "actuate" in raw:
            sig = self._target(raw["actuate"], (*where, "actuate"))
            self._unit(sig, raw, where)
            text = template_text(raw["value"])
            template = self._expression(text, (*where, "value")) if text is not None else None
            value = None if template is not None else self._value(sig, raw["value"], (*where, "value"))
            timeout = seconds(raw["timeout"]) if "timeout" in raw else None
            return m.Actuate(
                sig.path, value, template, timeout, bool(raw.get("continue_on_error", False)), at
            )
        if "scene" in raw:
            scene = self.ctx.scenes.get(raw["scene"])
            if scene is None:
                known = ", ".join(sorted(self.ctx.scenes)) or "none"
                waiting = raw["scene"] in self.ctx.waiting_scenes
                raise Invalid(
                    (*where, "scene"),
                    f"no scene {raw['scene']!r} (known: {known})"
                    + (": it waits for an accessory to be fitted" if waiting else ""),
                    "no_provider" if waiting else "invalid",
                )
            self._targets.extend(scene.targets)
            return m.ApplyScene(scene.id, bool(raw.get("continue_on_error", False)), at)
        if "delay" in raw:
            return m.Delay(seconds(raw["delay"]), at)
        if "wait" in raw:
            spec = raw["wait"]
            items = spec["trigger"] if isinstance(spec["trigger"], list) else [spec["trigger"]]
            triggers = tuple(self._trigger(t, (*where, "wait", "trigger")) for t in items)
            return m.WaitFor(
                triggers,
                seconds(spec["timeout"]) if "timeout" in spec else None,
                bool(spec.get("continue_on_timeout", True)),
                at,
            )
        if "choose" in raw:
            branches = tuple(
                m.Branch(
                    self._all(b["conditions"], (*where, "choose", i, "conditions"), self._condition),
                    self._all(b["sequence"], (*where, "choose", i, "sequence"), self._action),
                )
                for i, b in enumerate(raw["choose"])
            )
            default = self._all(raw.get("default") or [], (*where, "default"), self._action)
            return m.Choose(branches, default, at)
        if "if" in raw:
            branch = m.Branch(
                self._all(raw["if"], (*where, "if"), self._condition),
                self._all(raw["then"], (*where, "then"), self._action),
            )
            return m.Choose((branch,), self._all(raw.get("else") or [], (*where, "else"), self._action), at)
        if "repeat" in raw:
            spec = raw["repeat"]
            cap = min(int(spec.get("max", REPEAT_CAP)), REPEAT_CAP)
            return m.Repeat(
                self._all(spec["sequence"], (*where, "repeat", "sequence"), self._action),
                int(spec["count"]) if "count" in spec else None,
                self._all(spec.get("while") or [], (*where, "repeat", "while"), self._condition),
                self._all(spec.get("until") or [], (*where, "repeat", "until"), self._condition),
                cap,
                at,
            )
        if "notify" in raw:
            return m.Notify(str(raw["notify"]), at)
        if "stop" in raw:
            return m.Stop(str(raw["stop"]), bool(raw.get("error", False)), at)
        raise Invalid(where, "unknown action")

    def _target(self, path: str, where: Where) -> Signal:
        sig = self._signal(path, where)
        if sig.type is not NodeType.ACTUATOR:
            raise Invalid(where, f"{path} is a {sig.type}; only actuators can be set")
        if not self.ctx.provided(path):
            raise Invalid(
                where, f"no provider serves actuator {path} (is its accessory fitted?)", "no_provider"
            )
        self._targets.append(path)
        return sig

    # -- scenes ----------------------------------------------------------------------------------
    def _scene(self, raw: dict[str, Any], where: Where) -> m.Scene:
        owner = str(raw.get("owner", "owner"))
        grant = self._grant(owner, (*where, "owner"))
        targets: dict[str, Any] = {}
        for path, value in raw["targets"].items():
            at = (*where, "targets", path)
            sig = self._target(path, at)
            targets[path] = self._value(sig, value, at)
            try:
                self.ctx.access.check_actuate(grant, path)
            except PermissionDenied as exc:
                raise Invalid(at, f"owner {owner} may not set {path}: {exc}") from None
        return m.Scene(
            str(raw["id"]), targets, str(raw.get("name", "")), owner, self.doc.source, self._where(where)
        )


def _clock(text: str) -> int:
    parts = [int(p) for p in text.split(":")]
    return parts[0] * 3600 + parts[1] * 60 + (parts[2] if len(parts) > 2 else 0)
