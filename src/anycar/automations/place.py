"""Where the car is: geofences (circle or polygon, with shapely) and the sun's times at the car's
own position (with astral), both from ``Vehicle.CurrentLocation``."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from astral import Observer
from astral import sun as astral_sun
from shapely import prepared
from shapely.geometry import Point, Polygon

LATITUDE = "Vehicle.CurrentLocation.Latitude"
LONGITUDE = "Vehicle.CurrentLocation.Longitude"
EARTH_RADIUS_M = 6_371_008.8
SUN_EVENTS = ("dawn", "sunrise", "sunset", "dusk")


@dataclass(frozen=True)
class Fence:
    """A circle (centre and radius in metres, on the sphere) or a polygon of [lat, lon] corners."""

    circle: tuple[float, float, float] | None = None
    polygon: tuple[tuple[float, float], ...] | None = None

    def __post_init__(self) -> None:
        for lat, lon in self.polygon or ((self.circle[0], self.circle[1]),) if self.circle else ():
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise ValueError(f"[{lat}, {lon}] is not a latitude (-90..90) and longitude (-180..180)")
        if self.polygon is not None:
            shape = Polygon([(lon, lat) for lat, lon in self.polygon])
            if not shape.is_valid:
                raise ValueError("the polygon crosses itself")
            object.__setattr__(self, "_prepared", prepared.prep(shape))

    def contains(self, lat: float, lon: float) -> bool:
        if self.circle is not None:
            clat, clon, radius = self.circle
            return distance_m(lat, lon, clat, clon) <= radius
        return bool(self._prepared.contains(Point(lon, lat)))  # type: ignore[attr-defined]


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def sun_times(lat: float, lon: float, day: dt.date) -> dict[str, float]:
    """Dawn, sunrise, sunset and dusk of ``day`` (UTC date) at a place, as Unix times.

    Near the poles an event may not happen on a day; it is then left out.
    """
    observer = Observer(latitude=lat, longitude=lon)
    out: dict[str, float] = {}
    for name in SUN_EVENTS:
        fn: Any = getattr(astral_sun, name)
        try:
            out[name] = fn(observer, date=day, tzinfo=dt.UTC).timestamp()
        except ValueError:
            continue
    return out


def next_sun_event(lat: float, lon: float, event: str, after: float, offset_s: float = 0.0) -> float | None:
    """The first ``event`` (+ offset) later than ``after`` (Unix time), looking two days ahead."""
    day = dt.datetime.fromtimestamp(after, dt.UTC).date()
    for k in range(-1, 3):
        when = sun_times(lat, lon, day + dt.timedelta(days=k)).get(event)
        if when is not None and when + offset_s > after:
            return when + offset_s
    return None


def is_between(lat: float, lon: float, now: float, after: str | None, before: str | None) -> bool:
    """Whether ``now`` is after the ``after`` event and before the ``before`` event (either may be
    missing); ``after: sunset, before: sunrise`` spans the night across midnight."""
    day = dt.datetime.fromtimestamp(now, dt.UTC).date()
    today = sun_times(lat, lon, day)
    if after is not None and before is not None:
        a, b = today.get(after), today.get(before)
        if a is None or b is None:
            return False
        if a < b:
            return a <= now < b
        return now >= a or now < b
    if after is not None:
        a = today.get(after)
        return a is not None and now >= a
    if before is not None:
        b = today.get(before)
        return b is not None and now < b
    return False
