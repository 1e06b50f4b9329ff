"""The planner on the road network (``anycar.roads``, the OpenStreetMap extract): road figures
inside the extract, the straight-line estimate (marked) for a stop outside it. Skipped where
anycar.roads is not installed (it is another room; the lead merges it)."""

from __future__ import annotations

import pytest

from anycar.logistics.matrix import RoadsOrEstimate, StraightLine
from anycar.logistics.orders import Order, Place, Window
from anycar.logistics.planner import plan
from anycar.logistics.problem import PlanRequest, PlanVehicle

pytest.importorskip("anycar.roads")

DEPOT = (60.1700, 24.9450)  # inside the Helsinki centre extract
INSIDE = [(60.1665, 24.9390), (60.1755, 24.9480), (60.1720, 24.9505)]
OUTSIDE = (60.2000, 25.0000)  # in the service area, off the extract


def _request(points: list[tuple[float, float]]) -> PlanRequest:
    orders = tuple(
        Order(f"o{i}", "delivery", Place(lat, lon, (Window(8 * 3600, 18 * 3600),), 60), None, 5.0)
        for i, (lat, lon) in enumerate(points)
    )
    van = PlanVehicle("v1", DEPOT, DEPOT, 350, 2.2, 15, 0.09, soc=0.9, shift=Window(8 * 3600, 18 * 3600))
    return PlanRequest(depot=DEPOT, orders=orders, vehicles=(van,), time_limit_s=0.3)


def test_road_figures_inside_the_extract_and_a_marked_estimate_outside() -> None:
    roads = RoadsOrEstimate()
    assert roads.name == "road network"
    inside = plan(_request(INSIDE), roads)
    assert inside.matrix_source == "road network (OpenStreetMap)" and inside.estimate is False
    assert inside.feasible and not inside.unservable
    straight = plan(_request(INSIDE), StraightLine())
    assert inside.distance_m != pytest.approx(straight.distance_m, rel=1e-6)  # real streets, not a line
    outside = plan(_request([*INSIDE, OUTSIDE]), roads)
    assert outside.estimate is True and "estimate" in outside.matrix_source
    assert outside.feasible and not outside.unservable
