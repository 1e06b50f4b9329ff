"""A route of lat/lon points the vehicle follows: position, heading and grade by distance.

Routes are GeoJSON LineStrings (``[longitude, latitude, elevation]``, RFC 7946) shipped in
``data/routes/``. A closed route is driven round and round.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from anycar.errors import ConfigError

EARTH_RADIUS_M = 6371008.8


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial bearing from point 1 to point 2, clockwise from north, in [0, 360)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(y, x)) % 360.0


@dataclass(frozen=True, slots=True)
class Position:
    latitude: float
    longitude: float
    altitude: float
    heading: float  # degrees from north, [0, 360)
    grade: float  # rise over run along the direction of travel


class Route:
    """Points along a road, looked up by the distance driven from the first point."""

    def __init__(self, name: str, points: list[tuple[float, float, float]], closed: bool = True) -> None:
        if len(points) < 2:
            raise ConfigError(f"route {name!r}: needs at least two points")
        for i, (lat, lon, _) in enumerate(points):
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise ConfigError(
                    f"route {name!r}: point {i} ({lat}, {lon}) is not a valid latitude/longitude"
                )
        if closed and points[0][:2] != points[-1][:2]:
            points = [*points, points[0]]
        self.name = name
        self.closed = closed
        self.points = points
        self._cum = [0.0]
        for (la1, lo1, _), (la2, lo2, _) in itertools.pairwise(points):
            self._cum.append(self._cum[-1] + haversine_m(la1, lo1, la2, lo2))
        self.length_m = self._cum[-1]
        if self.length_m <= 0:
            raise ConfigError(f"route {name!r}: all points are the same")

    def at(self, distance_m: float) -> Position:
        """Where the vehicle is after ``distance_m`` metres (wrapping round a closed route)."""
        d = distance_m % self.length_m if self.closed else min(max(distance_m, 0.0), self.length_m)
        i = bisect.bisect_right(self._cum, d) - 1
        i = max(0, min(i, len(self.points) - 2))
        # Skip zero-length segments so the heading is always defined.
        while self._cum[i + 1] - self._cum[i] <= 0 and i < len(self.points) - 2:
            i += 1
        seg = self._cum[i + 1] - self._cum[i]
        f = 0.0 if seg <= 0 else (d - self._cum[i]) / seg
        (la1, lo1, al1), (la2, lo2, al2) = self.points[i], self.points[i + 1]
        return Position(
            latitude=la1 + (la2 - la1) * f,
            longitude=lo1 + (lo2 - lo1) * f,
            altitude=al1 + (al2 - al1) * f,
            heading=bearing_deg(la1, lo1, la2, lo2),
            grade=(al2 - al1) / seg if seg > 0 else 0.0,
        )


def parse_geojson(name: str, data: Any, where: str = "") -> Route:
    """A route from a GeoJSON LineString, Feature or FeatureCollection (first LineString)."""
    where = where or name
    geometry: Any = data
    closed = True
    if isinstance(data, dict) and data.get("type") == "FeatureCollection":
        features = data.get("features") or []
        lines = [
            f
            for f in features
            if isinstance(f, dict) and (f.get("geometry") or {}).get("type") == "LineString"
        ]
        if not lines:
            raise ConfigError(f"{where}: no LineString feature in the FeatureCollection")
        data = lines[0]
    if isinstance(data, dict) and data.get("type") == "Feature":
        closed = bool((data.get("properties") or {}).get("closed", True))
        geometry = data.get("geometry")
    if not isinstance(geometry, dict) or geometry.get("type") != "LineString":
        raise ConfigError(f"{where}: expected a GeoJSON LineString")
    points: list[tuple[float, float, float]] = []
    for i, c in enumerate(geometry.get("coordinates") or []):
        if (
            not isinstance(c, list)
            or len(c) not in (2, 3)
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in c)
        ):
            raise ConfigError(
                f"{where}: coordinates[{i}] must be [longitude, latitude(, elevation)], got {c!r}"
            )
        points.append((float(c[1]), float(c[0]), float(c[2]) if len(c) == 3 else 0.0))
    return Route(name, points, closed)


def load_route(name_or_path: str) -> Route:
    """A shipped route by name (``jinhua_delivery_loop``) or a GeoJSON file by path."""
    path = Path(name_or_path)
    if path.suffix in (".geojson", ".json") and path.exists():
        text = path.read_text("utf-8")
        name = path.stem
    else:
        res = resources.files("anycar.sim").joinpath(f"data/routes/{name_or_path}.geojson")
        if not res.is_file():
            raise ConfigError(f"unknown route {name_or_path!r}; shipped routes: {', '.join(route_names())}")
        text = res.read_text("utf-8")
        name = name_or_path
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{name_or_path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    return parse_geojson(name, data, str(name_or_path))


def route_names() -> list[str]:
    folder = resources.files("anycar.sim").joinpath("data/routes")
    return sorted(p.name.removesuffix(".geojson") for p in folder.iterdir() if p.name.endswith(".geojson"))
