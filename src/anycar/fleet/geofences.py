"""Geofences: a tenant's polygons and circles, in and out as GeoJSON, and which contain a point.

A geofence is a GeoJSON ``Feature``: a ``Polygon`` (lon, lat as GeoJSON says; holes allowed), or
a ``Point`` with ``properties.radius_m`` (a circle, as map consoles draw one). ``properties.name``
is required, ``properties.speed_limit_kmh`` optional (the speeding rule's limit in the zone);
other properties are kept as given (bounded). Shapely checks the polygon (valid, not empty) and
answers "inside?" with a prepared geometry; a circle is inside by great-circle distance.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry import Point, shape

from anycar.fleet.trips import haversine_m

MAX_VERTICES = 10_000
MAX_PROPERTIES_BYTES = 8192
MAX_RADIUS_M = 1_000_000.0


class GeofenceError(ValueError):
    """A geofence that cannot be stored; the message names the field."""


@dataclass(frozen=True, slots=True)
class Fence:
    id: int
    name: str
    kind: str
    speed_limit_kmh: float | None
    geometry: Any  # prepared shapely polygon, or None for a circle
    center: tuple[float, float] | None  # (lat, lon) of a circle
    radius_m: float | None
    bbox: tuple[float, float, float, float]  # min lon, min lat, max lon, max lat

    def contains(self, lat: float, lon: float) -> bool:
        x0, y0, x1, y1 = self.bbox
        if not (x0 <= lon <= x1 and y0 <= lat <= y1):
            return False
        if self.center is not None and self.radius_m is not None:
            return haversine_m(self.center[0], self.center[1], lat, lon) <= self.radius_m
        return bool(self.geometry.contains(Point(lon, lat)) or self.geometry.touches(Point(lon, lat)))


def _number(value: Any, where: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise GeofenceError(f"{where}: a number")
    if not low <= value <= high:
        raise GeofenceError(f"{where}: {value} is not in {low:g}..{high:g}")
    return float(value)


def parse_feature(doc: Any) -> dict[str, Any]:
    """A GeoJSON Feature -> the columns of a geofence row, or ``GeofenceError``."""
    if not isinstance(doc, dict) or doc.get("type") != "Feature":
        raise GeofenceError('body: a GeoJSON Feature ({"type": "Feature", "geometry": …, "properties": …})')
    props = doc.get("properties")
    if not isinstance(props, dict):
        raise GeofenceError("properties: an object with at least a name")
    name = props.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 128:
        raise GeofenceError("properties.name: 1-128 characters")
    limit = props.get("speed_limit_kmh")
    if limit is not None:
        limit = _number(limit, "properties.speed_limit_kmh", 1, 300)
    if len(json.dumps(props)) > MAX_PROPERTIES_BYTES:
        raise GeofenceError(f"properties: at most {MAX_PROPERTIES_BYTES} bytes of JSON")
    geom = doc.get("geometry")
    if not isinstance(geom, dict) or geom.get("type") not in ("Polygon", "Point"):
        raise GeofenceError("geometry: a Polygon, or a Point with properties.radius_m (a circle)")
    coords = geom.get("coordinates")
    radius = None
    if geom["type"] == "Point":
        if not isinstance(coords, list) or len(coords) not in (2, 3):
            raise GeofenceError("geometry.coordinates: [lon, lat]")
        lon = _number(coords[0], "geometry.coordinates[0] (lon)", -180, 180)
        lat = _number(coords[1], "geometry.coordinates[1] (lat)", -90, 90)
        radius = _number(props.get("radius_m"), "properties.radius_m", 1, MAX_RADIUS_M)
        geometry: dict[str, Any] = {"type": "Point", "coordinates": [lon, lat]}
        kind = "circle"
    else:
        if not isinstance(coords, list) or not coords or not all(isinstance(r, list) for r in coords):
            raise GeofenceError("geometry.coordinates: a list of linear rings [[lon, lat], …]")
        if sum(len(r) for r in coords) > MAX_VERTICES:
            raise GeofenceError(f"geometry.coordinates: at most {MAX_VERTICES} vertices")
        rings = []
        for i, ring in enumerate(coords):
            points = []
            for j, pt in enumerate(ring):
                where = f"geometry.coordinates[{i}][{j}]"
                if not isinstance(pt, list) or len(pt) not in (2, 3):
                    raise GeofenceError(f"{where}: [lon, lat]")
                points.append(
                    [
                        _number(pt[0], f"{where}[0] (lon)", -180, 180),
                        _number(pt[1], f"{where}[1] (lat)", -90, 90),
                    ]
                )
            if len(points) < 4 or points[0] != points[-1]:
                raise GeofenceError(f"geometry.coordinates[{i}]: a closed ring of at least 4 positions")
            rings.append(points)
        geometry = {"type": "Polygon", "coordinates": rings}
        try:
            poly = shape(geometry)
        except (ValueError, TypeError, shapely.errors.ShapelyError) as exc:
            raise GeofenceError(f"geometry: {exc}") from None
        if poly.is_empty or not poly.is_valid:
            reason = shapely.is_valid_reason(poly)
            raise GeofenceError(f"geometry: not a valid polygon ({reason})")
        kind = "polygon"
    return {
        "name": name.strip(),
        "kind": kind,
        "geometry": geometry,
        "radius_m": radius,
        "speed_limit_kmh": limit,
        "properties": {k: v for k, v in props.items() if k not in ("name", "radius_m", "speed_limit_kmh")},
        "updated": time.time(),
    }


def to_feature(row: Any) -> dict[str, Any]:
    """A geofence row -> its GeoJSON Feature."""
    props = dict(row.properties or {})
    props["name"] = row.name
    if row.radius_m is not None:
        props["radius_m"] = row.radius_m
    if row.speed_limit_kmh is not None:
        props["speed_limit_kmh"] = row.speed_limit_kmh
    props["kind"] = row.kind
    return {"type": "Feature", "id": row.id, "geometry": row.geometry, "properties": props}


def fence_of(row: Any) -> Fence:
    """A stored geofence made ready for point tests."""
    if row.kind == "circle":
        lon, lat = row.geometry["coordinates"][:2]
        r = float(row.radius_m)
        dlat = math.degrees(r / 6_371_008.8)
        dlon = dlat / max(math.cos(math.radians(lat)), 1e-6)
        return Fence(
            row.id,
            row.name,
            "circle",
            row.speed_limit_kmh,
            None,
            (lat, lon),
            r,
            (lon - dlon, lat - dlat, lon + dlon, lat + dlat),
        )
    poly = shape(row.geometry)
    shapely.prepare(poly)
    x0, y0, x1, y1 = poly.bounds
    return Fence(row.id, row.name, "polygon", row.speed_limit_kmh, poly, None, None, (x0, y0, x1, y1))


def containing(fences: list[Fence], lat: float, lon: float) -> list[Fence]:
    return [f for f in fences if f.contains(lat, lon)]
