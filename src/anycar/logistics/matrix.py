"""Travel times and distances between stops: the planner asks a ``MatrixProvider`` for them.

The road network (``anycar.roads``: shortest paths on the OpenStreetMap extract) is the real
provider; until it is present, and for stops it cannot place, ``StraightLine`` gives the
great-circle distance times a detour factor at the vehicle's average speed, marked as an
estimate. ``Planar`` is for benchmark instances (Solomon, Li & Lim) whose stops are points on a
plane and whose travel time equals the Euclidean distance.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from anycar.errors import AnycarError

Point = tuple[float, float]  # (lat, lon) on the map; (x, y) for a planar instance
EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True)
class Matrix:
    seconds: np.ndarray  # float, [i, j] = travel time from point i to point j
    meters: np.ndarray
    estimate: bool  # True when any figure is a straight-line estimate, not a road path
    source: str


class MatrixProvider(Protocol):
    name: str

    def matrix(self, points: Sequence[Point]) -> Matrix: ...


class StraightLine:
    """Great-circle metres x ``detour`` at ``speed_kmh``: an estimate, and said to be one."""

    name = "straight-line estimate"

    def __init__(self, detour: float = 1.3, speed_kmh: float = 25.0) -> None:
        if detour < 1 or speed_kmh <= 0:
            raise ValueError("detour factor >= 1 and a positive speed")
        self.detour, self.speed_ms = detour, speed_kmh / 3.6

    def matrix(self, points: Sequence[Point]) -> Matrix:
        pts = np.radians(np.asarray(points, dtype=float).reshape(-1, 2))
        lat, lon = pts[:, 0][:, None], pts[:, 1][:, None]
        a = np.sin((lat - lat.T) / 2) ** 2 + np.cos(lat) * np.cos(lat.T) * np.sin((lon - lon.T) / 2) ** 2
        meters = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0, 1))) * self.detour
        return Matrix(meters / self.speed_ms, meters, True, self.name)


class Planar:
    """Euclidean distance on a plane; travel time = distance / ``speed`` (1 for Solomon)."""

    name = "planar (benchmark instance)"

    def __init__(self, speed: float = 1.0) -> None:
        self.speed = speed

    def matrix(self, points: Sequence[Point]) -> Matrix:
        pts = np.asarray(points, dtype=float).reshape(-1, 2)
        diff = pts[:, None, :] - pts[None, :, :]
        meters = np.sqrt((diff**2).sum(axis=2))
        return Matrix(meters / self.speed, meters, False, self.name)


def haversine_m(a: Point, b: Point) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, h)))


class RoadsOrEstimate:
    """``anycar.roads`` when it is installed (``load_network().matrix(points)``: seconds, metres
    and a per-pair ``estimate`` mask for stops off the extract), else the straight-line
    estimate. Pairs the road network could not give (non-finite) are filled in with the
    estimate; the matrix is marked as an estimate when any pair is one."""

    def __init__(self, detour: float = 1.3, speed_kmh: float = 25.0) -> None:
        self.fallback = StraightLine(detour, speed_kmh)
        try:
            roads: Any = importlib.import_module("anycar.roads")
        except ImportError:
            roads = None
        self.roads = roads if roads is not None and hasattr(roads, "load_network") else None
        self.name = "road network" if self.roads is not None else self.fallback.name

    def matrix(self, points: Sequence[Point]) -> Matrix:
        if self.roads is None:
            return self.fallback.matrix(points)
        try:
            found = self.roads.load_network().matrix([list(p) for p in points])
        except (ValueError, AnycarError) as exc:  # too many points for one matrix, ...
            estimate = self.fallback.matrix(points)
            return Matrix(
                estimate.seconds, estimate.meters, True, f"straight-line estimate (road network: {exc})"
            )
        seconds = np.asarray(found.seconds, dtype=float)
        meters = np.asarray(found.meters, dtype=float)
        marked = np.asarray(getattr(found, "estimate", False), dtype=bool)
        bad = ~(np.isfinite(seconds) & np.isfinite(meters))
        if bad.any():
            estimate = self.fallback.matrix(points)
            seconds = np.where(bad, estimate.seconds, seconds)
            meters = np.where(bad, estimate.meters, meters)
        any_estimate = bool(marked.any() or bad.any())
        source = "road network (OpenStreetMap)" + (", straight-line estimate off it" if any_estimate else "")
        return Matrix(seconds, meters, any_estimate, source)
