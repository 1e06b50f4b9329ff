"""What the dispatcher sees of the demo's day, through the fleet's HTTP API, as it happens.

Each pass (``DayFollower.poll``, in a thread: it is blocking HTTP) reads the outcome of every
route command pushed (``GET /api/commands/{id}``: the hub ``accepted`` or refused it) and every
new proof of delivery (``GET /api/pods``: verified against the hub's key, judged against the
order), and says one line each. A failed delivery is what the dispatcher acts on: re-opened,
re-planned from where the vehicles are, accepted (``day.redispatch``), once per order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from anycar.fleetdemo import day as demo_day

FINAL = ("accepted", "refused", "failed", "expired", "duplicate", "rejected")


class DayFollower:
    def __init__(
        self,
        http: httpx.Client,
        day: demo_day.Day,
        depot: tuple[float, float],
        clock: Callable[[], str],
        say: Callable[[str], Any],
    ) -> None:
        self.http, self.day, self.depot, self.clock, self.say = http, day, depot, clock, say
        self.outcomes: dict[str, dict[str, Any]] = {}  # command id -> its final outcome
        self.pods: dict[int, dict[str, Any]] = {}  # POD id -> the POD as the fleet judged it
        self.redispatched: set[str] = set()

    def poll(self) -> None:
        for push in list(self.day.pushed):
            cid = push.get("command")
            if not cid or cid in self.outcomes:
                continue
            found = self.http.get(f"/api/commands/{cid}")
            if found.status_code != 200:
                continue
            cmd = found.json()
            if cmd["status"] in FINAL:
                self.outcomes[cid] = {**push, "status": cmd["status"], "reason": cmd.get("reason")}
                why = f" ({cmd['reason']})" if cmd.get("reason") else ""
                self.say(
                    f"{self.clock()} route v{push['version']} ({push['stops']} stops) "
                    f"{cmd['status']} by {push['vehicle']}'s hub{why}"
                )
        answer = self.http.get("/api/pods")
        if answer.status_code != 200:
            return
        for pod in answer.json():
            if pod["id"] in self.pods:
                continue
            self.pods[pod["id"]] = pod
            self.say(self.verdict(pod))
            if pod["outcome"] == "failed" and pod["verified"] and pod["order"] not in self.redispatched:
                self.redispatched.add(pod["order"])
                self._redispatch(pod)

    def verdict(self, pod: dict[str, Any]) -> str:
        """One line: the order, what the hub says happened, and what the fleet makes of it."""
        rec = pod.get("record") or {}
        trust = f"POD verified (hub key {pod['key_id'][:8]})" if pod["verified"] else "POD NOT verified"
        if pod["outcome"] == "failed":
            what = f"failed: {rec.get('reason') or 'no reason given'}"
        else:
            weight = rec.get("weight") or {}
            drop = weight.get("drop_kg")
            source = str((rec.get("pin") or {}).get("source") or "")
            pin = (
                "PIN on the button panel"
                if source.endswith(".LastPressed")
                else ("PIN on the phone" if source == "phone" else "no PIN")
            )
            photo = "photo" if rec.get("photo") else "no photo"
            drop_text = f"{drop:.1f} kg out" if isinstance(drop, int | float) else "no weight reading"
            what = f"delivered: door opened and closed, {drop_text}, {pin}, {photo}"
        problems = "; ".join(pod.get("exceptions") or []) or "no exceptions"
        return f"{self.clock()} {pod['order']} {what} by {pod['vehicle']} - {trust}, {problems}"

    def _redispatch(self, pod: dict[str, Any]) -> None:
        ref, now = str(pod["order"]), self.clock()
        failed = {
            "vehicle": pod["vehicle"],
            "why": (pod.get("record") or {}).get("reason"),
            "pod": pod["id"],
        }
        pushed = demo_day.redispatch(self.http, self.day, ref, now, self.depot, failed)
        event = self.day.events[-1]
        back = next(
            (e.get("board") or {} for e in reversed(self.day.events) if e.get("event") == "failed"), {}
        )
        self.say(
            f"{now} {ref} back to dispatch: {back.get('reason') or 'failed'}; retry {back.get('retry') or 'not set'}"
        )
        versions = ", ".join(f"{p['vehicle']} v{p['version']}" for p in pushed if p.get("version"))
        self.say(
            f"{now} {ref} re-dispatched: plan {event['plan']} accepted, {ref} now on "
            f"{event['vehicle'] or 'no vehicle'} ({event['change']}); routes pushed: {versions or 'none'}"
        )

    def summary(self) -> dict[str, Any]:
        pods = list(self.pods.values())
        return {
            "routes": list(self.outcomes.values()),
            "pods": [
                {
                    "order": p["order"],
                    "vehicle": p["vehicle"],
                    "outcome": p["outcome"],
                    "verified": p["verified"],
                    "key_id": p["key_id"],
                    "exceptions": p["exceptions"],
                    "photo": bool((p.get("record") or {}).get("photo")),
                    "drop_kg": ((p.get("record") or {}).get("weight") or {}).get("drop_kg"),
                    "pin_source": ((p.get("record") or {}).get("pin") or {}).get("source"),
                }
                for p in pods
            ],
            "delivered": sum(1 for p in pods if p["outcome"] == "delivered" and p["verified"]),
        }
