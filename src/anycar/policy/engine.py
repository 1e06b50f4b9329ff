"""The policy engine: reads the vehicle's state from the broker and keeps the car in control.

It subscribes to speed, gear, ignition, the 12 V rail and the traction battery; derives the
driving state and UX restrictions; decides which loads (fitted accessories) are shed, with the
one bounded exception of courtesy lighting (``courtesy``: a lamp may run for a while after a door
opens with the ignition off); checks access against grants; and logs every shed, restore,
restriction and refusal.

The safety function (driving state -> restrictions) works from memory: the event log persists
on its own thread and never raises here, and the engine's task runs under the hub's
``Supervisor``, which restarts it (and says so in the health) should a batch ever raise.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from anycar.broker import SignalBroker
from anycar.broker.datapoint import Datapoint
from anycar.broker.guard import is_accessory_name
from anycar.clock import WALL, Clock
from anycar.policy import granting
from anycar.policy.access import AccessControl
from anycar.policy.courtesy import CourtesyTrigger, CourtesyWindow
from anycar.policy.driving import DrivingConfig, DrivingState
from anycar.policy.errors import PermissionDenied
from anycar.policy.events import EventLog
from anycar.policy.grants import GrantStore
from anycar.policy.power import PowerConfig, PowerMonitor, PowerVerdict, Priority
from anycar.policy.privileges import Grant, Privilege
from anycar.rights import Action, Rights
from anycar.supervisor import Supervised, Supervisor

SPEED = "Vehicle.Speed"
SELECTED_GEAR = "Vehicle.Powertrain.Transmission.SelectedGear"
CURRENT_GEAR = "Vehicle.Powertrain.Transmission.CurrentGear"
VOLTAGE = "Vehicle.LowVoltageBattery.CurrentVoltage"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
IGNITION = "Vehicle.LowVoltageSystemState"
WATCHED = (SPEED, SELECTED_GEAR, CURRENT_GEAR, VOLTAGE, SOC, IGNITION)
COURTESY_RETRY_S = 0.05  # a simulated clock behind its due moment: look again this soon (real s)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LoadStatus:
    """What the policy says about one fitted accessory right now."""

    name: str
    priority: Priority
    driver_view: bool = False
    ux_restricted: bool = False
    shed_reason: str | None = None
    restrictions: frozenset[str] = field(default=frozenset())
    driving_state: DrivingState = DrivingState.UNKNOWN
    families: frozenset[str] = field(default=frozenset())  # its traits' families (light, fan, ...)
    peak_w: float = 0.0
    courtesy: str | None = None  # why it runs although its class is shed (courtesy lighting)

    @property
    def shed(self) -> bool:
        return self.shed_reason is not None


LoadListener = Callable[[LoadStatus], None]


class PolicyEngine:
    def __init__(
        self,
        broker: SignalBroker,
        *,
        db_path: str | Path | None = None,
        driving: DrivingConfig | None = None,
        power: PowerConfig | None = None,
        access: AccessControl | None = None,
        events: EventLog | None = None,
        grants: GrantStore | None = None,
        supervisor: Supervisor | None = None,
        clock: Clock = WALL,
    ) -> None:
        self.broker = broker
        self.clock = clock
        self.supervisor = supervisor if supervisor is not None else Supervisor()
        self.driving = driving if driving is not None else DrivingConfig.default()
        self.power = PowerMonitor(power)
        self.access = access if access is not None else AccessControl()
        self.events = (
            events
            if events is not None
            else EventLog(db_path, on_health=lambda err: self.supervisor.report("event-log", err))
        )
        self.supervisor.add_probe("event-log", self.events.status)
        self.grants = grants if grants is not None else GrantStore(db_path)
        self.speed: float | None = None
        self.selected_gear: int | None = None
        self.current_gear: int | None = None
        self.driving_state = DrivingState.UNKNOWN
        self.restrictions: frozenset[str] = self.driving.restrictions(DrivingState.UNKNOWN, None)
        self.verdict = PowerVerdict({})
        self.courtesy = CourtesyWindow(self.power.cfg.courtesy, clock)
        # the concrete signals the courtesy triggers cover, and their last known values
        self._courtesy_paths: dict[str, CourtesyTrigger] = {
            sig.path: trigger
            for trigger in self.power.cfg.courtesy.triggers
            for sig in broker.catalog.match(trigger.pattern)
        }
        self._courtesy_seen: dict[str, Any] = {}
        self._courtesy_timer: asyncio.TimerHandle | None = None
        self._exempt: dict[str, str] = {}
        self._courtesy_shed: dict[str, str] = {}
        self._loads: dict[str, LoadStatus] = {}
        self._listeners: dict[str, LoadListener] = {}
        self._task: Supervised | None = None
        self._sub: Any = None
        # The broker refuses accessory writes to safety-critical branches for every API.
        broker.guard.protect(
            self.access.safety_critical, is_accessory=self.is_accessory, on_refusal=self._guard_refused
        )

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is not None:
            return
        self._sub = self.broker.subscribe(self._watched(), name="policy")
        self.apply(self._sub.drain())
        self._task = self.supervisor.spawn("policy-engine", self._run)

    async def stop(self) -> None:
        if self._sub is not None:
            self._sub.close()
        if self._courtesy_timer is not None:
            self._courtesy_timer.cancel()
            self._courtesy_timer = None
        if self._task is not None:
            await self._task.stop()
            self._task = None

    async def _run(self) -> None:
        """Apply every batch; a restart after a crash starts from what the broker holds now."""
        assert self._sub is not None  # nosec B101 # narrows an Optional for mypy; an invariant of this object, not a check of outside input
        self.apply([dp for p in self._watched() if (dp := self.broker.get(p)) is not None])
        async for batch in self._sub:
            self.apply(batch)

    def _watched(self) -> tuple[str, ...]:
        return (*WATCHED, *self._courtesy_paths)

    # -- state ------------------------------------------------------------------------------
    def apply(self, batch: Iterable[Datapoint]) -> None:
        """Take new values of the watched signals and re-decide restrictions and shedding."""
        voltage = soc = ignition = None
        opened: list[str] = []
        for dp in batch:
            if dp.path == SPEED:
                self.speed = dp.value
            elif dp.path == SELECTED_GEAR:
                self.selected_gear = dp.value
            elif dp.path == CURRENT_GEAR:
                self.current_gear = dp.value
            elif dp.path == VOLTAGE and dp.value is not None:
                voltage = float(dp.value)
            elif dp.path == SOC and dp.value is not None:
                soc = float(dp.value)
            elif dp.path == IGNITION and dp.value is not None:
                ignition = str(dp.value)
            elif (trigger := self._courtesy_paths.get(dp.path)) is not None and dp.value is not None:
                # a change from the last known value (a drop-out in between is no change; the
                # first value ever seen is where the door is, not a door opening)
                before = self._courtesy_seen.get(dp.path)
                self._courtesy_seen[dp.path] = dp.value
                if before is not None and before != dp.value and dp.value == trigger.to:
                    opened.append(trigger.describe(dp.path))
        state = self.driving.derive(
            speed=self.speed,
            selected_gear=self.selected_gear,
            current_gear=self.current_gear,
            ignition=ignition if ignition is not None else self.power.ignition,
        )
        if state is not self.driving_state:
            self.events.log(
                "driving_state",
                "vehicle",
                f"driving state {self.driving_state} -> {state}",
                speed=self.speed,
                gear=self.selected_gear,
            )
            self.driving_state = state
        self.restrictions = self.driving.restrictions(state, self.speed)
        self.verdict = self.power.update(voltage=voltage, soc=soc, ignition=ignition)
        self._courtesy_events(opened)
        self._reassess_all()

    def _reassess_all(self) -> None:
        self._exempt, self._courtesy_shed = self._courtesy_decisions()
        for name in list(self._loads):
            self._reassess(name)

    # -- courtesy lighting ------------------------------------------------------------------
    def _courtesy_events(self, opened: list[str]) -> None:
        """Open (or restart) the window on a trigger with the ignition off; the ignition on ends it."""
        ignition = self.power.ignition
        if ignition not in self.power.cfg.ignition_off_states:
            if self.courtesy.window is not None or self.courtesy.ended is not None:
                self.courtesy.close()
                if self._courtesy_timer is not None:
                    self._courtesy_timer.cancel()
                    self._courtesy_timer = None
            return
        if not opened:
            return
        cause = opened[0] + (f" (and {len(opened) - 1} more)" if len(opened) > 1 else "")
        window = self.courtesy.open(cause, str(ignition))
        if window is None:
            return
        cfg = self.courtesy.cfg
        self.events.log(
            "courtesy",
            "vehicle",
            f"courtesy lighting ({', '.join(cfg.families)}, up to {cfg.max_w:g} W) for "
            f"{cfg.duration_s:g} s: {cause} with ignition {ignition}",
            cause=cause,
            ignition=ignition,
            duration_s=cfg.duration_s,
            until=window.until_epoch,
            supply_ok=self.power.supply_ok,
        )
        self._schedule_courtesy_end()

    def _schedule_courtesy_end(self, floor: float = 0.0) -> None:
        if self._courtesy_timer is not None:
            self._courtesy_timer.cancel()
            self._courtesy_timer = None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # driven by hand (tests): the end is found by the next update
        delay = max(floor, self.clock.loop_delay(self.courtesy.left_s()))
        self._courtesy_timer = loop.call_later(delay, self._courtesy_due)

    def _courtesy_due(self) -> None:
        """The window's end on the hub's clock: shed the lamps it kept on (a simulated clock that
        lags its own speed-up is asked again shortly)."""
        self._courtesy_timer = None
        try:
            if self.courtesy.current() is not None:
                self._schedule_courtesy_end(COURTESY_RETRY_S)
                return
            self._reassess_all()
        except Exception as exc:  # a timer callback has no task to fail: say so in the health
            log.exception("courtesy lighting end failed")
            self.supervisor.report("policy-courtesy", exc)

    def _courtesy_decisions(self) -> tuple[dict[str, str], dict[str, str]]:
        """Which shed loads courtesy lighting keeps on now (name -> why), and why the courtesy
        loads it does not keep on stay shed (name -> the addition to the shed reason)."""
        exempt: dict[str, str] = {}
        refused: dict[str, str] = {}
        window = self.courtesy.current()
        cfg = self.courtesy.cfg
        used = 0.0
        for load in self._loads.values():
            if not self.courtesy.counts(load.families) or self.verdict.reason_for(load.priority) is None:
                continue
            if window is None:
                ended = self.courtesy.ended
                if ended is not None:
                    refused[load.name] = f"courtesy lighting over ({cfg.duration_s:g} s after {ended.cause})"
            elif not self.power.supply_ok:
                refused[load.name] = "no courtesy lighting while the 12 V rail or traction battery is low"
            elif used + load.peak_w > cfg.max_w:
                refused[load.name] = (
                    f"over the {cfg.max_w:g} W courtesy lighting budget ({used:g} W in use, "
                    f"{load.peak_w:g} W more)"
                )
            else:
                used += load.peak_w
                exempt[load.name] = (
                    f"courtesy lighting: {window.cause} with ignition {window.ignition}, "
                    f"for up to {cfg.duration_s:g} s"
                )
        return exempt, refused

    def _reassess(self, name: str) -> None:
        old = self._loads[name]
        reason = self.verdict.reason_for(old.priority)
        courtesy = self._exempt.get(name)
        if courtesy is not None:
            reason = None
        elif reason is not None and name in self._courtesy_shed:
            reason = f"{reason}; {self._courtesy_shed[name]}"
        new = replace(
            old,
            shed_reason=reason,
            courtesy=courtesy,
            restrictions=self.restrictions if (old.driver_view and old.ux_restricted) else frozenset(),
            driving_state=self.driving_state,
        )
        if new == old:
            return
        self._loads[name] = new
        if (new.shed_reason is None) != (old.shed_reason is None):
            if new.shed_reason is not None:
                self.events.log(
                    "shed",
                    name,
                    f"{name} ({new.priority.label}) shed: {new.shed_reason}",
                    priority=new.priority.label,
                    reason=new.shed_reason,
                )
            elif new.courtesy is not None:
                window = self.courtesy.window
                self.events.log(
                    "restore",
                    name,
                    f"{name} ({new.priority.label}) restored for {new.courtesy}",
                    courtesy=new.courtesy,
                    until=window.until_epoch if window is not None else None,
                )
            else:
                self.events.log("restore", name, f"{name} ({new.priority.label}) restored: power is back")
        if new.restrictions != old.restrictions:
            self.events.log(
                "restriction",
                name,
                f"{name} told: {self.driving_state}, restrictions "
                f"{', '.join(sorted(new.restrictions)) or 'none'}",
                restrictions=sorted(new.restrictions),
                driving_state=str(self.driving_state),
            )
        listener = self._listeners.get(name)
        if listener is not None:
            listener(new)

    # -- loads ------------------------------------------------------------------------------
    def register_load(
        self,
        name: str,
        priority: Priority,
        *,
        driver_view: bool = False,
        ux_restricted: bool = False,
        listener: LoadListener | None = None,
        families: Iterable[str] = (),
        peak_w: float = 0.0,
    ) -> LoadStatus:
        """Start deciding for one accessory; the listener hears every change (not this first one).
        ``families`` (its traits') and ``peak_w`` decide whether it counts as courtesy lighting."""
        self._loads[name] = LoadStatus(
            name, priority, driver_view, ux_restricted, families=frozenset(families), peak_w=peak_w
        )
        self._exempt, self._courtesy_shed = self._courtesy_decisions()
        if listener is not None:
            self._listeners[name] = listener
        # first assessment is logged (a shed at fitting is a shed) but not sent to the listener
        self._listeners.pop(name, None)
        self._reassess(name)
        if listener is not None:
            self._listeners[name] = listener
        return self._loads[name]

    def unregister_load(self, name: str) -> None:
        self._loads.pop(name, None)
        self._listeners.pop(name, None)
        if name in self._exempt:  # its share of the courtesy budget is free for another lamp
            self._reassess_all()

    def load(self, name: str) -> LoadStatus | None:
        return self._loads.get(name)

    def loads(self) -> list[LoadStatus]:
        return list(self._loads.values())

    def courtesy_of(self, path: str) -> str | None:
        """Why the accessory serving ``path`` runs although its class is shed (courtesy lighting),
        for the traces of whoever set it; ``None`` when it is not an exception."""
        sig = self.broker.catalog.find(path)
        owner = self.broker.provider_of(path) if sig is not None else None
        if owner is None or not is_accessory_name(owner):
            return None
        load = self._loads.get(owner.removeprefix("accessory:"))
        return load.courtesy if load is not None else None

    # -- access -----------------------------------------------------------------------------
    def grant(self, grant: Grant, *, by: str = "hub") -> None:
        """Store a grant the hub decided (commissioning, restore); a change is logged with ``by``."""
        self._store(grant, by)

    def grant_app(
        self,
        app_id: str,
        privilege: Privilege,
        *,
        reads: Iterable[str] = (),
        actuates: Iterable[str] = (),
        by: str = "hub",
    ) -> Grant:
        """Register what an app may do (APIs look it up by the app id in their tokens)."""
        grant = Grant(app_id, "app", privilege, tuple(reads), tuple(actuates))
        self._store(grant, by)
        return grant

    def _store(self, grant: Grant, by: str) -> None:
        """Every grant that changes is in the event log, with who changed it and what it was."""
        before = self.grants.get(grant.subject)
        self.grants.put(grant)
        if before == grant:
            return  # restored as it was (a restart): nothing changed
        self.events.log(
            "grant_changed",
            grant.subject,
            f"grant of {grant.subject} set by {by}: {grant.privilege.label}, reads {len(grant.reads)}, "
            f"actuates {len(grant.actuates)} patterns",
            by=by,
            before=before.to_dict() if before is not None else None,
            after=grant.to_dict(),
        )

    def change_grant(
        self,
        granter: Rights,
        granter_privilege: Privilege | None,
        subject: str,
        privilege: Privilege,
        *,
        reads: Iterable[str] = (),
        actuates: Iterable[str] = (),
    ) -> Grant:
        """Change ``subject``'s grant on behalf of ``granter`` (see ``granting``); every change,
        and every refused attempt, is in the event log with who asked."""
        request = granting.GrantRequest(subject, privilege, tuple(reads), tuple(actuates))
        before = self.grants.get(subject)
        by = granter.subject or "anonymous"
        try:
            grant = granting.decide(
                granter, granter_privilege, request, before, self.broker.catalog, self.access
            )
        except PermissionDenied as exc:
            self.refuse(subject, f"grant change by {by} refused: {exc}", by=by, action="grant")
            raise
        self._store(grant, by)
        return grant

    def is_accessory(self, name: str | None) -> bool:
        """An accessory acting (``accessory:<instance>``) or a subject whose grant is an accessory's."""
        if is_accessory_name(name):
            return True
        grant = self.grants.get(name) if name else None
        return grant is not None and grant.kind == "accessory"

    def has_app_grant(self, subject: str) -> bool:
        grant = self.grants.get(subject)
        return grant is not None and grant.kind == "app"

    def _guard_refused(self, who: str, path: str, why: str) -> None:
        subject = who.removeprefix("accessory:")
        self.refuse(subject, why, path=path, action="write")

    def refuse(self, subject: str, message: str, **data: Any) -> None:
        """Log a refusal decided elsewhere (manager, APIs) so that all refusals are in one place."""
        self.events.log("refusal", subject, message, **data)

    def check_actuate(self, subject: str, path: str) -> Grant:
        """Raise ``PermissionDenied`` (and log it) unless ``subject``'s grant lets it set ``path``."""
        return self._checked(subject, path, "actuate", self.access.check_actuate)

    def check_read(self, subject: str, path: str) -> Grant:
        return self._checked(subject, path, "read", self.access.check_read)

    def _checked(self, subject: str, path: str, action: str, check: Callable[[Grant, str], None]) -> Grant:
        grant = self.grants.get(subject)
        try:
            if grant is None:
                raise PermissionDenied(f"{subject} has no grant", path=path)
            check(grant, path)
        except PermissionDenied as exc:
            self.refuse(subject, str(exc), path=path, action=action)
            raise
        return grant

    def app_opinion(self, subject: str, action: str, path: str) -> str | None:
        """For the APIs, after a token's scopes said yes: refuse what the app's own grant does not
        name. A subject with no app grant is left to its token alone (KUKSA's model)."""
        grant = self.grants.get(subject)
        if grant is None or grant.kind != "app" or action == "provide":
            return None
        try:
            if action == Action.ACTUATE:
                self.access.check_actuate(grant, path)
            else:
                self.access.check_read(grant, path)
        except PermissionDenied as exc:
            self.refuse(subject, str(exc), path=path, action=action)
            return str(exc)
        return None

    def status(self) -> dict[str, Any]:
        return {
            "driving_state": str(self.driving_state),
            "speed": self.speed,
            "restrictions": sorted(self.restrictions),
            "power": {
                "voltage": self.power.voltage,
                "soc": self.power.soc,
                "ignition": self.power.ignition,
                "shed": {p.label: r for p, r in self.verdict.shed.items()},
                "courtesy": {**self.courtesy.status(), "lit": sorted(self._exempt)},
            },
            "loads": [
                {
                    "name": s.name,
                    "priority": s.priority.label,
                    "shed": s.shed_reason,
                    "courtesy": s.courtesy,
                    "restrictions": sorted(s.restrictions),
                    "driver_view": s.driver_view,
                }
                for s in self._loads.values()
            ],
        }

    def close(self) -> None:
        self.events.close()
        self.grants.close()
