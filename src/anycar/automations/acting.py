"""What a run does to the car: actuate through the broker and apply scenes, always within the
owner's grant, with an outcome for every signal; and remember which automations caused which
actuation, so that a loop can be recognised when its update comes back."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from anycar.automations import model as m
from anycar.automations.compiler import OWNER_GRANT
from anycar.broker import SignalBroker
from anycar.errors import AnycarError
from anycar.model.signal import NodeType
from anycar.policy.access import AccessControl
from anycar.policy.engine import PolicyEngine
from anycar.policy.errors import PermissionDenied
from anycar.policy.events import EventLog

CAUSE_WINDOW_S = 2.0  # an update within this of an automation's actuation is caused by it


class Acting:
    def __init__(
        self, broker: SignalBroker, policy: PolicyEngine | None, access: AccessControl, events: EventLog
    ) -> None:
        self.broker = broker
        self.policy = policy
        self.access = access
        self.events = events
        self.causes: dict[str, tuple[tuple[str, ...], float]] = {}  # path -> (chain, until)

    def cause_of(self, path: str) -> tuple[str, ...]:
        """The chain of automations whose actuation this update of ``path`` answers, if recent."""
        cause = self.causes.get(path)
        if cause is None:
            return ()
        if cause[1] >= time.monotonic():
            return cause[0]
        del self.causes[path]
        return ()

    def grant_of(self, owner: str) -> Any:
        if owner == "owner":
            return OWNER_GRANT
        return self.policy.grants.get(owner) if self.policy is not None else None

    def refusal(self, automation: m.Automation, path: str) -> str | None:
        """Why the owner's grant does not let this automation set ``path`` now (``None``: it does)."""
        grant = self.grant_of(automation.owner)
        if grant is None:
            return f"owner {automation.owner} has no grant"
        try:
            self.access.check_actuate(grant, path)
        except PermissionDenied as exc:
            return str(exc)
        sig = self.broker.catalog.find(path)
        if sig is None or sig.type is not NodeType.ACTUATOR:
            return f"{path} is no longer an actuator in the catalog"
        return None

    def requester(self, a: m.Automation) -> str:
        """Who the broker sees asking: an accessory-owned automation asks as that accessory, so the
        broker's own guard of the safety-critical branches applies to it too."""
        grant = self.grant_of(a.owner)
        if grant is not None and grant.kind == "accessory":
            return f"accessory:{a.owner}"
        return f"automation:{a.id}"

    async def actuate(
        self, a: m.Automation, path: str, value: Any, timeout: float | None, chain: tuple[str, ...]
    ) -> tuple[str, str]:
        why = self.refusal(a, path)
        if why is not None:
            if self.policy is not None:
                self.policy.refuse(f"automation:{a.id}", f"{a.id} may not set {path}: {why}", path=path)
            return "refused", why
        self.causes[path] = ((*chain, a.id), time.monotonic() + CAUSE_WINDOW_S)
        try:
            result = await self.broker.actuate(path, value, requester=self.requester(a), timeout=timeout)
        except AnycarError as exc:
            return "error", str(exc)
        return str(result.status), self._with_exception(path, str(result.status), result.reason)

    def _with_exception(self, path: str, outcome: str, reason: str) -> str:
        """An accepted step on a lamp the policy keeps on as courtesy lighting says so in the trace."""
        note = self.policy.courtesy_of(path) if self.policy is not None and outcome == "accepted" else None
        if note is None:
            return reason
        return f"{reason}; {note}" if reason else note

    async def apply_scene(
        self, scene: m.Scene, a: m.Automation | None = None, chain: tuple[str, ...] = ()
    ) -> dict[str, dict[str, str]]:
        """One batch, one outcome per signal; targets the owner may not set are refused, not sent."""
        outcomes: dict[str, dict[str, str]] = {}
        allowed: dict[str, Any] = {}
        who = a if a is not None else scene_runner(scene)
        for path, value in scene.targets.items():
            why = self.refusal(who, path)
            if why is not None:
                outcomes[path] = {"outcome": "refused", "reason": why}
            else:
                allowed[path] = value
                self.causes[path] = ((*chain, who.id), time.monotonic() + CAUSE_WINDOW_S)
        if allowed:
            try:
                results = await self.broker.actuate_many(allowed, requester=self.requester(who))
            except AnycarError as exc:
                for path in allowed:
                    outcomes[path] = {"outcome": "error", "reason": str(exc)}
            else:
                for r in results:
                    outcomes[r.path] = {
                        "outcome": str(r.status),
                        "reason": self._with_exception(r.path, str(r.status), r.reason),
                    }
        return {p: outcomes[p] for p in scene.targets}

    def snapshot(self, scene_id: str, patterns: Iterable[str], name: str = "") -> dict[str, Any]:
        """A scene definition from the current values of the actuators the patterns cover."""
        targets: dict[str, Any] = {}
        for pattern in patterns:
            for sig in self.broker.catalog.resolve(pattern):
                if sig.type is not NodeType.ACTUATOR:
                    continue
                dp = self.broker.get(sig.path)
                if dp is not None and dp.value is not None:
                    targets[sig.path] = dp.value
        if not targets:
            raise AnycarError("no actuator under those patterns has a value to snapshot")
        body: dict[str, Any] = {"id": scene_id, "targets": targets}
        if name:
            body["name"] = name
        return body

    def notify(self, a: m.Automation, message: str) -> None:
        self.events.log("automation_notify", a.id, message, automation=a.id)


def scene_runner(scene: m.Scene) -> m.Automation:
    """A scene applied by hand acts with the scene's owner's grant."""
    return m.Automation(id=f"scene:{scene.id}", triggers=(), conditions=(), actions=(), owner=scene.owner)
