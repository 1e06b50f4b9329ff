"""The planning data files: vehicle types per brand profile, defaults and the service area.

The fleet side cannot read the hub's brand profiles (the import contracts forbid it), so what the
planner needs of a model (payload, cargo volume, pack size, energy per km) is kept here, in
``data/vehicle_types.yaml``, keyed by the brand profile id the registry stores.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

DATA = Path(__file__).parent / "data"


@dataclass(frozen=True, slots=True)
class VehicleType:
    brand: str
    payload_kg: float
    cargo_m3: float
    battery_kwh: float
    kwh_per_km: float
    speed_kmh: float
    features: frozenset[str]


@dataclass(frozen=True, slots=True)
class ServiceArea:
    min_lat: float
    max_lat: float
    min_lon: float
    max_lon: float

    def contains(self, lat: float, lon: float) -> bool:
        return self.min_lat <= lat <= self.max_lat and self.min_lon <= lon <= self.max_lon

    def describe(self) -> str:
        return f"lat {self.min_lat}..{self.max_lat}, lon {self.min_lon}..{self.max_lon}"


@cache
def _load(name: str) -> dict[str, Any]:
    with (DATA / name).open(encoding="utf-8") as f:
        data = yaml.safe_load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{DATA / name}: not a mapping")
    return data


def planning() -> dict[str, Any]:
    return _load("planning.yaml")


def vehicle_type(brand: str) -> VehicleType:
    """The planning figures of a brand profile (the file's ``default`` for an unknown one)."""
    data = _load("vehicle_types.yaml")
    row = {**data["default"], **(data["types"].get(brand) or {})}
    return VehicleType(
        brand=brand,
        payload_kg=float(row["payload_kg"]),
        cargo_m3=float(row["cargo_m3"]),
        battery_kwh=float(row["battery_kwh"]),
        kwh_per_km=float(row["kwh_per_km"]),
        speed_kmh=float(row["speed_kmh"]),
        features=frozenset(row.get("features") or ()),
    )


def cargo_accessories() -> dict[str, Any]:
    """``data/cargo_accessories.yaml``: which fitted products give which cargo feature."""
    return _load("cargo_accessories.yaml")


def feature_label(feature: str) -> str:
    """What a dispatcher reads for a feature: "refrigerated" -> "refrigerated cargo box"."""
    return str((cargo_accessories().get("labels") or {}).get(feature, feature))


def service_area() -> ServiceArea:
    a = planning()["service_area"]
    return ServiceArea(float(a["min_lat"]), float(a["max_lat"]), float(a["min_lon"]), float(a["max_lon"]))


FEATURES: tuple[str, ...] = tuple(_load("vehicle_types.yaml")["features"])


_TYPE_FIELDS = ("payload_kg", "cargo_m3", "battery_kwh", "kwh_per_km", "speed_kmh")


def validate() -> list[str]:
    """Every problem in the data files, as ``file: key: why`` (empty when they are good)."""
    problems: list[str] = []
    try:
        types = _load("vehicle_types.yaml")
        cfg = planning()
    except (OSError, ValueError, yaml.YAMLError) as exc:
        return [str(exc)]
    rows = {"default": types.get("default") or {}, **(types.get("types") or {})}
    known = set(types.get("features") or ())
    for brand, row in rows.items():
        if not isinstance(row, dict):
            problems.append(f"vehicle_types.yaml: {brand}: a mapping")
            continue
        merged = {**rows["default"], **row}
        for key in _TYPE_FIELDS:
            value = merged.get(key)
            if not isinstance(value, int | float) or value < 0 or (key != "kwh_per_km" and value == 0):
                problems.append(f"vehicle_types.yaml: {brand}.{key}: a positive number")
        for feature in merged.get("features") or ():
            if feature not in known:
                problems.append(f"vehicle_types.yaml: {brand}.features: {feature!r} is not in features")
    problems.extend(_validate_accessories(known))
    for key in ("detour_factor", "reserve_soc", "default_time_limit_s"):
        if not isinstance(cfg.get(key), int | float):
            problems.append(f"planning.yaml: {key}: a number")
    area = cfg.get("service_area") or {}
    if not all(isinstance(area.get(k), int | float) for k in ("min_lat", "max_lat", "min_lon", "max_lon")):
        problems.append("planning.yaml: service_area: min_lat, max_lat, min_lon, max_lon numbers")
    return problems


def _validate_accessories(known: set[str]) -> list[str]:
    try:
        doc = cargo_accessories()
    except (OSError, ValueError, yaml.YAMLError) as exc:
        return [str(exc)]
    problems = []
    labels = doc.get("labels") or {}
    for feature in sorted(known - set(labels)):
        problems.append(f"cargo_accessories.yaml: labels: no label for {feature!r}")
    if not isinstance(doc.get("counts"), list) or not doc["counts"]:
        problems.append("cargo_accessories.yaml: counts: a list of accessory statuses")
    seen: set[tuple[Any, Any]] = set()
    for i, p in enumerate(doc.get("products") or []):
        where = f"cargo_accessories.yaml: products[{i}]"
        if not isinstance(p, dict):
            problems.append(f"{where}: a mapping")
            continue
        ids = (p.get("vendor_id"), p.get("product_id"))
        if not all(isinstance(x, int) and 1 <= x <= 65535 for x in ids):
            problems.append(f"{where}: vendor_id and product_id 1..65535")
        elif ids in seen:
            problems.append(f"{where}: vendor {ids[0]} product {ids[1]} repeats")
        seen.add(ids)
        if not isinstance(p.get("name"), str):
            problems.append(f"{where}: name: the product's name")
        features = p.get("features")
        if not isinstance(features, list) or not features:
            problems.append(f"{where}: features: a list")
            continue
        for feature in features:
            if feature not in known:
                problems.append(f"{where}.features: {feature!r} is not in vehicle_types.yaml features")
    return problems
