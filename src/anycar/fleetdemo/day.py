"""A day of orders for the demo's PICKMANs, through the logistics room as a dispatcher would use it.

The shipped ``data/orders.csv`` (deliveries at real addresses of the extract, with time windows,
service times and weights) is imported with ``POST /api/orders/import``, planned by the real
planner (``POST /api/plans``: PyVRP on the road matrix of ``anycar.roads``) and the plan
accepted; each PICKMAN then drives its planned round. Later in the day one delivery fails
(recipient absent): it is reported failed, re-opened for a second attempt and re-planned from
where every vehicle is (``POST /api/plans/redispatch``), and the proposal accepted.
Everything goes over the fleet's HTTP API with the operator's token: nothing here reaches into
the fleet's database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import httpx

from anycar.errors import AnycarError

DAY_START = "09:00"  # the demo's clock: the first second of the demo is 09:00 on the day
SHIFT = "09:00-17:00"
PLAN_TIME_LIMIT_S = 2.0  # the planner's search budget: light on a small machine, enough for 16 stops


class DayError(AnycarError):
    """The logistics room refused a step of the demo's day; the message says which and why."""

    code = 500
    reason = "demo_day"


@dataclass
class Day:
    """What the day's plan gave each PICKMAN, and what happened since."""

    plan_id: int
    rounds: dict[str, list[tuple[str, tuple[float, float]]]]  # vin -> [(order, (lat, lon))] in order
    unservable: list[dict[str, Any]]
    matrix: str
    solver: str
    imported: int
    events: list[dict[str, Any]] = field(default_factory=list)
    body: dict[str, Any] = field(default_factory=dict)  # the accepted plan (swap stops are planned on it)

    def summary(self) -> dict[str, Any]:
        return {
            "plan": self.plan_id,
            "imported": self.imported,
            "planned": sum(len(r) for r in self.rounds.values()),
            "vehicles_used": len(self.rounds),
            "unservable": self.unservable,
            "matrix": self.matrix,
            "solver": self.solver,
            "events": self.events,
        }


def orders_csv() -> bytes:
    return resources.files("anycar.fleetdemo").joinpath("data/orders.csv").read_bytes()


def _call(http: httpx.Client, method: str, url: str, what: str, **kw: Any) -> Any:
    answer = http.request(method, url, **kw)
    if answer.status_code >= 300:
        raise DayError(f"{what}: {method} {url} answered {answer.status_code}: {answer.text[:300]}")
    return answer.json()


def plan_day(http: httpx.Client, depot: tuple[float, float], pickmans: list[str], *, seed: int = 0) -> Day:
    """Import the day's orders, plan them on the PICKMANs, accept the plan."""
    imported = _call(
        http,
        "POST",
        "/api/orders/import?name=orders.csv",
        "import the day's orders",
        content=orders_csv(),
        headers={"Content-Type": "text/csv"},
    )["imported"]
    options = {
        "depot": {"lat": depot[0], "lon": depot[1]},
        "shift": SHIFT,
        "only": pickmans,
        "time_limit_s": PLAN_TIME_LIMIT_S,
        "seed": seed,
    }
    proposal = _call(http, "POST", "/api/plans", "plan the day", json=options)
    _call(http, "POST", f"/api/plans/{proposal['id']}/accept", "accept the plan")
    body = proposal["plan"]
    return Day(
        plan_id=int(proposal["id"]),
        rounds=rounds_of(body),
        unservable=body.get("unservable", []),
        matrix=str(body.get("matrix")),
        solver=str(body.get("solver")),
        imported=int(imported),
        body=body,
    )


def rounds_of(plan: dict[str, Any]) -> dict[str, list[tuple[str, tuple[float, float]]]]:
    """Each vehicle's customer stops in the planned order (a second trip ``VIN#2`` follows on)."""
    out: dict[str, list[tuple[str, tuple[float, float]]]] = {}
    for route in plan.get("routes", []):
        vin = str(route["vehicle"]).split("#", 1)[0]
        for stop in route.get("stops", []):
            if stop.get("order") and stop.get("action") in ("drop", "pickup"):
                out.setdefault(vin, []).append((str(stop["order"]), (float(stop["lat"]), float(stop["lon"]))))
    return out


def clock_at(elapsed_s: float, speedup: float) -> str:
    """The demo's time of day, HH:MM, ``elapsed_s`` wall seconds after the day started."""
    h, m = (int(x) for x in DAY_START.split(":"))
    minutes = h * 60 + m + int(elapsed_s * speedup // 60)
    return f"{minutes // 60 % 24:02d}:{minutes % 60:02d}"


def fail_and_redispatch(http: httpx.Client, day: Day, ref: str, now: str, depot: tuple[float, float]) -> None:
    """``ref`` could not be delivered (recipient absent): report it failed, re-open it for a
    second attempt, re-plan the open orders from now and accept the proposal."""
    _call(http, "POST", f"/api/orders/{ref}/status", "report the failed delivery", json={"status": "failed"})
    day.events.append({"at": now, "order": ref, "event": "failed", "why": "recipient absent"})
    _call(http, "POST", f"/api/orders/{ref}/status", "re-open it", json={"status": "open"})
    options = {
        "depot": {"lat": depot[0], "lon": depot[1]},
        "shift": SHIFT,
        "only": sorted(day.rounds),
        "time_limit_s": PLAN_TIME_LIMIT_S,
        "now": now,
    }
    proposal = _call(http, "POST", "/api/plans/redispatch", "re-dispatch", json=options)
    _call(http, "POST", f"/api/plans/{proposal['id']}/accept", "accept the re-dispatch")
    changes = [c for c in proposal.get("changes", []) if c.get("order") == ref]
    now_on = [vin for vin, stops in rounds_of(proposal["plan"]).items() if ref in {o for o, _ in stops}]
    day.events.append(
        {
            "at": now,
            "order": ref,
            "event": "redispatched",
            "plan": int(proposal["id"]),
            "change": changes[0].get("change") if changes else "unchanged",
            "vehicle": now_on[0] if now_on else None,
            "unservable": [u for u in proposal["plan"].get("unservable", []) if u.get("order") == ref],
        }
    )
