"""A plan's legs as street geometry for the console's map: each route's stops joined by the
road network's fastest paths (``anycar.roads``, the network the planner's matrix comes from,
same profile), instead of straight lines between stops.

A leg the network cannot give (a stop off the extract, no road between) is the straight line
and marked ``estimate``, as the planner's matrix marks it. Geometry is made on request and kept
per plan body (a small cache: a plan changes only when it is moved or replaced).
"""

from __future__ import annotations

import hashlib
import importlib
import itertools
import json
import threading
from collections import OrderedDict
from typing import Any

from anycar.errors import AnycarError
from anycar.logistics.matrix import haversine_m

PROFILE = "car"  # RoadsOrEstimate's: road_network.matrix(points) with its default profile
MAX_LEGS = 2000  # per plan: more are drawn straight (a plan that big is not drawn leg by leg)
_cache: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
_lock = threading.Lock()


def _network() -> Any:
    try:
        roads: Any = importlib.import_module("anycar.roads")
        return roads.load_network()
    except (ImportError, AnycarError, OSError):
        return None


def _stops(route: dict[str, Any]) -> list[tuple[float, float]]:
    """The route's points in driving order: its start, the stops made (fixed), the rest."""
    stops = route.get("stops") or []
    ordered = [*stops[:1], *(route.get("fixed") or []), *stops[1:]]
    return [(float(s["lat"]), float(s["lon"])) for s in ordered]


def plan_legs(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Per route ``{"vehicle", "coordinates": [[lon, lat], ...], "meters", "estimate", "source"}``."""
    key = hashlib.sha256(json.dumps(body.get("routes", []), sort_keys=True, default=str).encode()).hexdigest()
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    net = _network()
    budget = MAX_LEGS
    out = []
    for route in body.get("routes", []):
        points = _stops(route)
        line: list[list[float]] = []
        meters, estimate = 0.0, net is None
        for a, b in itertools.pairwise(points):
            leg = None
            if net is not None and budget > 0:
                budget -= 1
                try:
                    leg = net.route(a, b, PROFILE)
                except AnycarError:  # no road between them for the profile
                    leg = None
            if leg is None:
                coords = [[a[1], a[0]], [b[1], b[0]]]
                meters += haversine_m(a, b)
                estimate = True
            else:
                coords, meters = leg.coordinates, meters + leg.meters
                estimate |= bool(leg.estimate)
            line.extend(coords if not line else coords[1:])
        out.append(
            {
                "vehicle": route.get("vehicle"),
                "coordinates": line,
                "meters": round(meters, 1),
                "estimate": estimate,
                "source": "road network (OpenStreetMap)" if net is not None else "straight lines",
            }
        )
    with _lock:
        _cache[key] = out
        while len(_cache) > 64:
            _cache.popitem(last=False)
    return out
