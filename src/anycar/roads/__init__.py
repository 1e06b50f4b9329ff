"""Neutral geography: the road network of the OpenStreetMap extract, for both sides.

``load_network()`` gives the shipped network; ``matrix(points)`` the travel seconds and metres
between (lat, lon) points, ``route(a, b)`` the street geometry of the fastest route. It imports
neither the hub nor the fleet cloud: the simulator's routes and the planner's matrices both come
from here.
"""

from typing import Any

import numpy as np

from anycar.roads.network import (
    DEFAULT_NETWORK,
    Matrix,
    RoadNetwork,
    RoadRoute,
    base_map_path,
    load_network,
)

__all__ = [
    "DEFAULT_NETWORK",
    "Matrix",
    "RoadNetwork",
    "RoadRoute",
    "base_map_path",
    "load_network",
    "matrix",
]


def matrix(points: list[tuple[float, float]], profile: str = "delivery") -> tuple[Any, Any]:
    """(seconds, metres) between (lat, lon) points on the shipped network, for a planner.

    Pairs the network cannot answer by road (a point off the extract) are NaN, so the caller
    fills them with its own estimate and marks the matrix as one (``anycar.logistics.matrix``).
    The default profile is the delivery vehicles' (service roads allowed)."""
    found = load_network().matrix(points, profile)
    seconds = np.where(found.estimate, np.nan, found.seconds)
    meters = np.where(found.estimate, np.nan, found.meters)
    return seconds, meters
