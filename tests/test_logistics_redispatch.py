"""Re-dispatch on the planner: the stops already made stay fixed and out of the new plan, the goods
on board stay with their vehicle, a new urgent order is placed, and the diff says what moved."""

from __future__ import annotations

from dataclasses import replace

from anycar.bench.dispatch import mid_route, redispatch_scenario
from anycar.logistics.matrix import StraightLine
from anycar.logistics.orders import Order, Place, Window
from anycar.logistics.redispatch import diff, redispatch

ROADS = StraightLine(detour=1.3, speed_kmh=22)


def test_redispatch_keeps_made_stops_and_carried_goods_and_places_the_urgent_order() -> None:
    request, current = redispatch_scenario(vehicles=4, orders=30, first_limit_s=0.5)
    assert current.feasible and not current.unservable
    now = 1 + int(max(next(s.departure_s for s in r.stops if s.order is not None) for r in current.routes))
    later, before, fixed = mid_route(request, current, now)
    made = {s["order"] for stops in fixed.values() for s in stops}
    assert made and not made & {o.ref for o in later.orders}
    urgent = Order(
        ref="urgent",
        kind="delivery",
        drop=Place(60.175, 24.95, (Window(now, now + 3600),), 60),
        pickup=None,
        weight_kg=5,
        priority=9,
    )
    later = replace(later, orders=(*later.orders, urgent), time_limit_s=0.5)
    proposal = redispatch(later, ROADS, before, fixed)
    result = proposal.plan
    assert result.feasible and not result.unservable, (result.unservable, result.notes)
    for route in result.routes:
        assert route.fixed == fixed.get(route.vehicle, [])  # exactly the stops made, unchanged
        assert not set(route.orders()) & made
        assert all(s.start_s >= now for s in route.stops if s.order)
        vehicle = next(v for v in later.vehicles if v.id == route.vehicle)
        assert set(vehicle.onboard) <= set(route.orders())  # what it carries, it delivers
    changes = {c.order: c for c in proposal.changes}
    assert changes["urgent"].change == "added" and changes["urgent"].after is not None
    assert proposal.summary().get("dropped", 0) == 0
    assert set(changes) == {o.ref for o in later.orders}
    shown = proposal.to_json()
    assert all(c["change"] != "unchanged" for c in shown["changes"])


def test_the_diff_names_moves_reorders_and_drops() -> None:
    _request, current = redispatch_scenario(vehicles=2, orders=6, first_limit_s=0.3)
    routes = {r.vehicle: r.orders() for r in current.routes}
    va, first = max(routes.items(), key=lambda kv: len(kv[1]))
    assert len(first) > 1
    before = dict(routes)
    before[va] = list(reversed(first))  # as if the plan in force had them the other way round
    before["ghost"] = ["gone"]
    changes = {c.order: c.change for c in diff(before, current, {"new"})}
    assert changes["gone"] == "dropped"
    assert changes[first[0]] == "reordered"
    assert changes["new"] == "dropped"  # a new order that the plan does not have is reported, not lost
    assert all(changes[ref] == "unchanged" for v, refs in routes.items() if v != va for ref in refs)
