"""Time of day: the sun's elevation where the vehicle is, daylight and outside temperature.

The solar position uses the NOAA low-precision formulas (good to about a degree), enough to
switch headlights at dusk and dawn wherever the route is.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

CIVIL_LIGHTS_ON_DEG = 6.0  # headlights on below this solar elevation (dusk, dawn, night)


def solar_elevation_deg(when: datetime, latitude: float, longitude: float) -> float:
    utc = when.astimezone(UTC)
    day = utc.timetuple().tm_yday
    hours = utc.hour + utc.minute / 60 + utc.second / 3600
    gamma = 2 * math.pi / 365 * (day - 1 + (hours - 12) / 24)
    eqtime = 229.18 * (
        0.000075
        + 0.001868 * math.cos(gamma)
        - 0.032077 * math.sin(gamma)
        - 0.014615 * math.cos(2 * gamma)
        - 0.040849 * math.sin(2 * gamma)
    )
    decl = (
        0.006918
        - 0.399912 * math.cos(gamma)
        + 0.070257 * math.sin(gamma)
        - 0.006758 * math.cos(2 * gamma)
        + 0.000907 * math.sin(2 * gamma)
        - 0.002697 * math.cos(3 * gamma)
        + 0.00148 * math.sin(3 * gamma)
    )
    true_solar_min = hours * 60 + eqtime + 4 * longitude
    hour_angle = math.radians(true_solar_min / 4 - 180)
    lat = math.radians(latitude)
    cos_zenith = math.sin(lat) * math.sin(decl) + math.cos(lat) * math.cos(decl) * math.cos(hour_angle)
    return 90.0 - math.degrees(math.acos(max(-1.0, min(1.0, cos_zenith))))


def daylight(elevation_deg: float) -> float:
    """Ambient light 0..1: dark below -6 deg (end of civil twilight), full from 30 deg up."""
    return min(1.0, max(0.0, (elevation_deg + 6.0) / 36.0))


def outside_temperature_c(when: datetime, mean_c: float, swing_c: float) -> float:
    """A daily swing around ``mean_c``, warmest at 15:00 local (of ``when``'s time zone)."""
    hours = when.hour + when.minute / 60 + when.second / 3600
    return mean_c + swing_c * math.cos(2 * math.pi * (hours - 15.0) / 24)
