"""Re-dispatch: plan the open orders again from where every vehicle is now, and say what changes.

The request is built from the vehicles as they are (position, charge, goods on board, the time
now as the start of what is left of their shift); the stops already made are not re-planned:
they stay at the head of their vehicle's route as ``fixed``. The result is a proposal with a
diff against the plan in force (which order moves to which vehicle, which new order goes where,
what can no longer be served); the dispatcher accepts it or not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from anycar.logistics.matrix import MatrixProvider
from anycar.logistics.planner import plan
from anycar.logistics.problem import Plan, PlanRequest


@dataclass
class Change:
    order: str
    change: str  # added | moved | reordered | unchanged | dropped
    before: tuple[str, int] | None  # (vehicle, position in its open stops)
    after: tuple[str, int] | None
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        def where(x: tuple[str, int] | None) -> dict[str, Any] | None:
            return None if x is None else {"vehicle": x[0], "position": x[1]}

        return {
            "order": self.order,
            "change": self.change,
            "before": where(self.before),
            "after": where(self.after),
            "reason": self.reason,
        }


@dataclass
class Proposal:
    plan: Plan
    changes: list[Change] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.changes:
            out[c.change] = out.get(c.change, 0) + 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "plan": self.plan.to_json(),
            "summary": self.summary(),
            "changes": [c.to_json() for c in self.changes if c.change != "unchanged"],
        }


def positions(routes: dict[str, list[str]]) -> dict[str, tuple[str, int]]:
    """order -> (vehicle, 1-based position among that vehicle's open stops)."""
    out: dict[str, tuple[str, int]] = {}
    for vehicle, refs in routes.items():
        seen: list[str] = []
        for ref in refs:
            if ref not in seen:
                seen.append(ref)
        for i, ref in enumerate(seen, 1):
            out[ref] = (vehicle, i)
    return out


def diff(before: dict[str, list[str]], after: Plan, new_orders: set[str]) -> list[Change]:
    """What ``after`` changes against ``before`` (vehicle -> its open orders in visiting order)."""
    old = positions(before)
    new = positions({r.vehicle: r.orders() for r in after.routes})
    changes = []
    for ref in sorted(set(old) | set(new) | set(after.unservable) | new_orders):
        b, a = old.get(ref), new.get(ref)
        if a is None:
            changes.append(Change(ref, "dropped", b, None, after.unservable.get(ref, "not in the new plan")))
        elif b is None:
            changes.append(Change(ref, "added", None, a))
        elif a[0] != b[0]:
            changes.append(Change(ref, "moved", b, a))
        elif a[1] != b[1]:
            changes.append(Change(ref, "reordered", b, a))
        else:
            changes.append(Change(ref, "unchanged", b, a))
    return changes


def redispatch(
    request: PlanRequest,
    provider: MatrixProvider,
    before: dict[str, list[str]],
    fixed: dict[str, list[dict[str, Any]]],
) -> Proposal:
    """Re-plan ``request`` (the open orders, the vehicles as they are now); ``before`` is the plan
    in force (vehicle -> open orders), ``fixed`` the stops each vehicle has already made."""
    result = plan(request, provider)
    for route in result.routes:
        base = route.vehicle.split("#", 1)[0]
        route.fixed = list(fixed.get(route.vehicle, fixed.get(base, [])))
    known = {ref for refs in before.values() for ref in refs}
    new_orders = {o.ref for o in request.orders if o.ref not in known}
    return Proposal(result, diff(before, result, new_orders))
