"""Neutral geography: the road network of the OpenStreetMap extract, for both sides.

``load_network()`` gives the shipped network; ``matrix(points)`` the travel seconds and metres
between (lat, lon) points, ``route(a, b)`` the street geometry of the fastest route. It imports
neither the hub nor the fleet cloud: the simulator's routes and the planner's matrices both come
from here.
"""

from anycar.roads.network import (
    DEFAULT_NETWORK,
    Matrix,
    RoadNetwork,
    RoadRoute,
    base_map_path,
    load_network,
)

__all__ = ["DEFAULT_NETWORK", "Matrix", "RoadNetwork", "RoadRoute", "base_map_path", "load_network"]
