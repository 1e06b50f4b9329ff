"""The reservation changes of the plan in force, settled by the server that runs the CSMS.

A plan's swap stops call for reservation changes (``swap_changes``: release one, book one) that
only the swap room's CSMS can carry out: the stations are connected to it, in the process of
``anycar fleet serve --ocpp-port``. The fleet API of that process settles them at once (accept,
a live move; ``swaproute.settle``). A plan accepted where there is no CSMS (``anycar fleet plan
--accept`` in its own process, an API process without the swap room), or a change that failed
(the station's link dropped), leaves them pending on the plan in force. This component, run by
the server beside its CSMS, does what the command sender does for the CLI's route commands: it
polls the plans in force, settles what is pending through its CSMS on the logistics clock, and
pushes the routes whose swap stop changed (its new reservation id) to their hubs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from anycar.fleet import db
from anycar.fleet.tasks import Periodic

log = logging.getLogger("anycar.logistics.swapsettle")


def pending_plans(engine: Engine) -> list[tuple[int, int]]:
    """(tenant, plan) of each plan in force with a reservation change not yet done."""
    p = db.plans.c
    with engine.connect() as conn:
        rows = conn.execute(select(p.tenant_id, p.id, p.body).where(p.status == "accepted")).all()
    out = []
    for r in rows:
        body = r.body or {}
        changes = (body.get("plan", body) or {}).get("swap_changes") or []
        if any(not c.get("done") for c in changes if isinstance(c, dict)):
            out.append((int(r.tenant_id), int(r.id)))
    return out


async def settle_in_force(
    csms: Any, engine: Engine, now: float, wake: Callable[[], Any] | None = None
) -> list[str]:
    """One pass: every plan in force's pending changes through ``csms``, its changed routes
    pushed; the notes of what was done."""
    from anycar.logistics import board, execution
    from anycar.logistics.swaproute import settle_held, settle_lock

    notes: list[str] = []
    for tenant_id, plan_id in await asyncio.to_thread(pending_plans, engine):
        async with settle_lock(csms):  # a live move's read-write of the plan is not interleaved
            done = await settle_held(csms, engine, tenant_id, plan_id, now=now)
            if not done:
                continue
            notes += done
            found = await asyncio.to_thread(board.plan, engine, tenant_id, plan_id)
            pushed = []
            if found is not None and found["status"] == "accepted":
                pushed = await asyncio.to_thread(
                    execution.push_routes, engine, tenant_id, found, changed_only=True
                )
        if pushed and wake is not None:
            wake()
    return notes


class SwapSettler(Periodic):
    """``settle_in_force`` every ``interval_s`` (a fleet component); a failing pass is logged and
    counted and the next one runs."""

    name = "swap-settler"
    log = log
    failure = "settling the plans' reservation changes failed; the next pass tries again"

    def __init__(
        self,
        engine: Engine,
        csms: Any,
        clock: Callable[[], float] = time.time,
        wake: Callable[[], Any] | None = None,
        interval_s: float = 2.0,
    ) -> None:
        super().__init__(interval_s)
        self.engine, self.csms, self.clock, self.wake = engine, csms, clock, wake
        self.settled = 0

    async def run_once(self) -> None:
        notes = await settle_in_force(self.csms, self.engine, self.clock(), self.wake)
        self.settled += len(notes)
        for note in notes:
            log.info("swap reservations: %s", note)

    def status(self) -> dict[str, Any]:
        return {"passes": self.passes, "settled": self.settled, "crashes": self.crashes}
