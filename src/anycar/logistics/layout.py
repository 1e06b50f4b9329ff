"""The points of a planning problem and the travel matrix between them.

Every stop gets its own point (an order with three windows is three candidate stops, a depot
pickup for a vehicle that is out on its round is a stop at the depot), so a solver can be told
per stop which vehicles may come there. Index 0 is the depot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from anycar.logistics.matrix import Matrix, MatrixProvider, Point
from anycar.logistics.problem import PlanRequest


@dataclass
class Layout:
    points: list[Point] = field(default_factory=list)
    vehicle_start: list[int] = field(default_factory=list)
    vehicle_end: list[int] = field(default_factory=list)
    place: dict[tuple[str, str], int] = field(default_factory=dict)  # (ref, pickup|drop) -> point
    matrix: Matrix | None = None

    def add(self, point: Point) -> int:
        self.points.append(point)
        return len(self.points) - 1

    @property
    def seconds(self) -> np.ndarray:
        if self.matrix is None:
            raise RuntimeError("layout without a matrix")
        return self.matrix.seconds

    @property
    def meters(self) -> np.ndarray:
        if self.matrix is None:
            raise RuntimeError("layout without a matrix")
        return self.matrix.meters


def build_layout(request: PlanRequest, provider: MatrixProvider) -> Layout:
    """Points: depot, each vehicle's start and end, each order's pickup and drop-off."""
    layout = Layout()
    layout.add(request.depot)
    for v in request.vehicles:
        layout.vehicle_start.append(layout.add(v.start))
        layout.vehicle_end.append(layout.add(v.end))
    for order in request.orders:
        for action, place in order.places():
            layout.place[(order.ref, action)] = layout.add((place.lat, place.lon))
    layout.matrix = provider.matrix(layout.points)
    return layout
