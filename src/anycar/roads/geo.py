"""Great-circle distance and a local flat projection for snapping points to roads."""

from __future__ import annotations

from typing import Any

import numpy as np

EARTH_RADIUS_M = 6371008.8


def haversine_m(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> Any:
    """Metres between points (numpy arrays or floats), on the mean Earth sphere."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    h = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(h, 1.0)))


def local_xy(lat: Any, lon: Any, lat0: float) -> np.ndarray:
    """Metres east/north on an equirectangular plane at ``lat0``: exact to 0.1 % over a town,
    which is what a KD-tree needs to find the nearest road node."""
    x = np.radians(np.asarray(lon, dtype=np.float64)) * np.cos(np.radians(lat0)) * EARTH_RADIUS_M
    y = np.radians(np.asarray(lat, dtype=np.float64)) * EARTH_RADIUS_M
    return np.column_stack([x, y])
