"""Admission at a mount point: the mount type must fit and the point's and rail's watts must
allow the accessory's peak draw; a refusal says what is free instead.

Budgets use peak watts, so that any mix of admitted accessories can peak at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from anycar.accessories.errors import FitRefused
from anycar.accessories.manifest import Power
from anycar.accessories.mounts import MountPlan, MountPoint


@dataclass(frozen=True, slots=True)
class Fitting:
    instance: str
    mount: MountPoint
    peak_w: float


class MountBoard:
    """Which instance occupies which mount, and how much of each rail is spoken for."""

    def __init__(self, plan: MountPlan) -> None:
        self.plan = plan
        self._fitted: dict[str, Fitting] = {}  # by mount id

    def rail_used(self, rail: str) -> float:
        return sum(f.peak_w for f in self._fitted.values() if f.mount.rail == rail)

    def rail_free(self, rail: str) -> float:
        return self.plan.rails[rail].budget_w - self.rail_used(rail)

    def occupant(self, mount_id: str) -> str | None:
        f = self._fitted.get(mount_id)
        return f.instance if f is not None else None

    def mount_of(self, instance: str) -> MountPoint | None:
        return next((f.mount for f in self._fitted.values() if f.instance == instance), None)

    def free(self, mount_types: tuple[str, ...] | None = None) -> dict[str, Any]:
        """Free mounts (optionally of the given types) with their usable watts, and each rail's slack."""
        mounts = []
        for m in self.plan.mounts.values():
            if m.id in self._fitted or (mount_types is not None and m.type not in mount_types):
                continue
            mounts.append(
                {
                    "mount": m.id,
                    "type": m.type,
                    "usable_w": round(min(m.max_w, self.rail_free(m.rail)), 2),
                    "max_w": m.max_w,
                    "rail": m.rail,
                }
            )
        rails = {r: round(self.rail_free(r), 2) for r in self.plan.rails}
        return {"mounts": mounts, "rails_free_w": rails}

    def check(self, instance: str, mount_id: str, mount_types: tuple[str, ...], power: Power) -> MountPoint:
        """The mount, if ``instance`` may be fitted there; else ``FitRefused`` with what is free."""
        mount = self.plan.mounts.get(mount_id)
        free = self.free(mount_types)
        alternatives = (
            ", ".join(f"{m['mount']} ({m['type']}, {m['usable_w']:g} W)" for m in free["mounts"]) or "none"
        )
        if mount is None:
            raise FitRefused(
                f"{self.plan.profile} has no mount point {mount_id!r}; free mounts that fit: {alternatives}",
                free=free,
            )
        holder = self.occupant(mount_id)
        if holder is not None and holder != instance:
            raise FitRefused(
                f"mount {mount_id} is taken by {holder}; free mounts that fit: {alternatives}", free=free
            )
        if mount.type not in mount_types:
            raise FitRefused(
                f"mount {mount_id} is {mount.type}, the accessory fits {', '.join(mount_types)}; "
                f"free mounts that fit: {alternatives}",
                free=free,
            )
        if power.peak_w > mount.max_w:
            raise FitRefused(
                f"accessory peaks at {power.peak_w:g} W, mount {mount_id} gives at most {mount.max_w:g} W; "
                f"free mounts that fit: {alternatives}",
                free=free,
            )
        already = self._fitted.get(mount_id)
        used = self.rail_used(mount.rail) - (already.peak_w if already is not None else 0.0)
        left = self.plan.rails[mount.rail].budget_w - used
        if power.peak_w > left:
            raise FitRefused(
                f"rail {mount.rail} has {left:g} W free of {self.plan.rails[mount.rail].budget_w:g} W, "
                f"the accessory peaks at {power.peak_w:g} W; free mounts that fit: {alternatives}",
                free=free,
            )
        return mount

    def suggest(
        self, mount_types: tuple[str, ...], power: Power, *, prefer_driver_view: bool | None = None
    ) -> str | None:
        """A free mount that would admit this accessory (``None`` if none), in profile order."""
        for m in self.plan.mounts.values():
            if m.id in self._fitted or m.type not in mount_types or power.peak_w > m.max_w:
                continue
            if power.peak_w > self.rail_free(m.rail):
                continue
            if prefer_driver_view is not None and m.driver_view != prefer_driver_view:
                continue
            return m.id
        if prefer_driver_view is not None:
            return self.suggest(mount_types, power)
        return None

    def fit(self, instance: str, mount_id: str, mount_types: tuple[str, ...], power: Power) -> Fitting:
        mount = self.check(instance, mount_id, mount_types, power)
        fitting = Fitting(instance, mount, power.peak_w)
        self._fitted[mount_id] = fitting
        return fitting

    def release(self, instance: str) -> None:
        for mid, f in list(self._fitted.items()):
            if f.instance == instance:
                del self._fitted[mid]

    def fittings(self) -> list[Fitting]:
        return list(self._fitted.values())
