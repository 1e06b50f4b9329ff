"""A reservation change the CSMS cannot carry out stays pending on the plan in force, and the
server's settler (``swapsettle.settle_in_force``, every 2 s) says why once, not at every pass (it
would otherwise fill the plan's notes). SQLite, the real CSMS; the station is not connected, so
releasing a pack there is refused with the CSMS's reason."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from anycar.fleet import db
from anycar.logistics import board
from anycar.logistics.swapsettle import pending_plans, settle_in_force
from swap_support import running_csms
from test_logistics_swap_follow import WIRE, at_0920, day  # noqa: F401 - the fixture


async def test_a_change_that_keeps_failing_is_said_once(day: Any) -> None:  # noqa: F811
    engine, tid, _ = day
    found = board.accepted_plan(engine, tid)
    assert found is not None
    (swap,) = [s for r in found["plan"]["routes"] for s in r["stops"] if s["action"] == "swap"]
    body = {k: v for k, v in found.items() if k not in ("id", "kind", "status", "created", "accepted")}
    # a release at a station that holds no such reservation and is not connected
    body["plan"]["swap_changes"] = [
        {
            "vehicle": WIRE,
            "release": {"station": "hki-kallio", "reservation": swap["reservation"]},
            "reserve": None,
        }
    ]
    with engine.begin() as conn:
        conn.execute(update(db.plans).where(db.plans.c.id == found["id"]).values(body=body))
    assert pending_plans(engine) == [(tid, found["id"])]
    async with running_csms(engine, clock=at_0920) as csms:
        first = await settle_in_force(csms, engine, at_0920())
        again = await settle_in_force(csms, engine, at_0920())
    why = f"{WIRE}: reservation {swap['reservation']} not released yet: offline: station hki-kallio is not connected"
    assert first == [why] and again == []
    after = board.plan(engine, tid, found["id"])
    assert after is not None and after["plan"]["notes"].count(why) == 1
    assert pending_plans(engine) == [(tid, found["id"])]  # still to do: the next pass tries again
