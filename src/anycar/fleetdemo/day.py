"""A day of orders for the demo's PICKMANs, through the logistics room as a dispatcher would use it.

The shipped ``data/orders.csv`` (deliveries at real addresses of the extract, with time windows,
service times and weights) is imported with ``POST /api/orders/import``, planned by the real
planner (``POST /api/plans``: PyVRP on the road matrix of ``anycar.roads``) and, once the hubs
are up, the plan accepted: the fleet pushes each PICKMAN its route as a signed ``route`` command
(the answer's ``pushed``), which the demo's drivers drive. When a delivery fails (the driver's
proof of delivery says so: recipient absent) it is back at dispatch with its reason and retry
time (``anycar.logistics.retry``), and the dispatcher re-plans from where every vehicle is (``POST /api/plans/redispatch``); accepting the proposal
pushes the next route version to each vehicle in it.
Everything goes over the fleet's HTTP API with the operator's token: nothing here reaches into
the fleet's database.
"""

from __future__ import annotations

import time
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
    pushed: list[dict[str, Any]] = field(default_factory=list)  # every route push: vehicle, version, command
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
            "pushed": self.pushed,
        }


def orders_csv() -> bytes:
    return resources.files("anycar.fleetdemo").joinpath("data/orders.csv").read_bytes()


def _call(http: httpx.Client, method: str, url: str, what: str, **kw: Any) -> Any:
    answer = http.request(method, url, **kw)
    if answer.status_code >= 300:
        raise DayError(f"{what}: {method} {url} answered {answer.status_code}: {answer.text[:300]}")
    return answer.json()


def plan_day(http: httpx.Client, depot: tuple[float, float], pickmans: list[str], *, seed: int = 0) -> Day:
    """Import the day's orders and plan them on the PICKMANs (``accept`` the plan once the
    vehicles are there to be pushed their routes)."""
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


class DayClock:
    """The demo's day as the fleet's logistics room lives it (``FleetConfig.logistics_clock``):
    epoch seconds that read ``DAY_START`` (UTC, today) when the day starts and then run
    ``speedup`` times the wall's pace, so a failure's time, its retry time, the re-dispatch's
    "now" and the windows are all on one clock (the planner's day is the UTC day)."""

    def __init__(self, speedup: float, now: float | None = None) -> None:
        wall = time.time() if now is None else now
        h, m = (int(x) for x in DAY_START.split(":"))
        self.base = wall - wall % 86_400 + h * 3600 + m * 60
        self.speedup = speedup
        self.wall0: float | None = None  # the wall epoch at which the day read DAY_START

    def start(self, now: float | None = None) -> float:
        self.wall0 = time.time() if now is None else now
        return self.wall0

    def __call__(self) -> float:
        if self.wall0 is None:
            return self.base
        return self.base + (time.time() - self.wall0) * self.speedup

    def hhmm(self) -> str:
        t = int(self() % 86_400) // 60
        return f"{t // 60:02d}:{t % 60:02d}"


def clock_at(elapsed_s: float, speedup: float) -> str:
    """The demo's time of day, HH:MM, ``elapsed_s`` wall seconds after the day started."""
    h, m = (int(x) for x in DAY_START.split(":"))
    minutes = h * 60 + m + int(elapsed_s * speedup // 60)
    return f"{minutes // 60 % 24:02d}:{minutes % 60:02d}"


def accept(http: httpx.Client, day: Day, plan_id: int | None = None) -> list[dict[str, Any]]:
    """Accept the plan (default: the day's); the routes the fleet pushed to the vehicles."""
    answer = _call(http, "POST", f"/api/plans/{plan_id or day.plan_id}/accept", "accept the plan")
    pushed = [p for p in answer.get("pushed", []) if isinstance(p, dict)]
    day.pushed.extend(pushed)
    return pushed


def redispatch(
    http: httpx.Client, day: Day, ref: str, now: str, depot: tuple[float, float], failed: dict[str, Any]
) -> list[dict[str, Any]]:
    """``ref`` could not be delivered (``failed``: the driver's proof of delivery, judged by the
    fleet): it is back at dispatch with its reason and its retry time (``anycar.logistics.retry``,
    read from the board as the console shows it); re-plan from now (the planner does not send it
    to the door before its retry time) and accept the proposal; the routes pushed."""
    board = _call(http, "GET", f"/api/logistics/board?q={ref}", "read the board")
    row: dict[str, Any] = next((o for o in board.get("orders", []) if o.get("id") == ref), {})
    back = {k: row.get(k) for k in ("status", "reason", "retry", "retry_at")}
    day.events.append({"at": now, "order": ref, "event": "failed", **failed, "board": back})
    options = {
        "depot": {"lat": depot[0], "lon": depot[1]},
        "shift": SHIFT,
        "only": sorted(day.rounds),
        "time_limit_s": PLAN_TIME_LIMIT_S,
        "now": now,
    }
    proposal = _call(http, "POST", "/api/plans/redispatch", "re-dispatch", json=options)
    pushed = accept(http, day, int(proposal["id"]))
    changes = [c for c in proposal.get("changes", []) if c.get("order") == ref]
    now_on = [vin for vin, stops in rounds_of(proposal["plan"]).items() if ref in {o for o, _ in stops}]
    windows = [
        s.get("window")
        for r in proposal["plan"].get("routes", [])
        for s in r.get("stops", [])
        if s.get("order") == ref and s.get("action") in ("drop", "pickup")
    ]
    day.events.append(
        {
            "at": now,
            "order": ref,
            "event": "redispatched",
            "plan": int(proposal["id"]),
            "change": changes[0].get("change") if changes else "unchanged",
            "vehicle": now_on[0] if now_on else None,
            "window": windows[0] if windows else None,  # cut to its retry time (anycar.logistics.retry)
            "unservable": [u for u in proposal["plan"].get("unservable", []) if u.get("order") == ref],
            "pushed": pushed,
        }
    )
    return pushed
