"""Mount points of a vehicle (``brands/data/<profile>/mounts.yaml``): where accessories fit, of
what type, with how many watts per point and per supply rail, plus the profile's driving-state
speed ranges and power thresholds for the policy.

The loader takes a directory so it does not depend on the brands package.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from anycar import decoding
from anycar.accessories.manifest import mount_types
from anycar.errors import ConfigError
from anycar.policy.driving import DrivingConfig
from anycar.policy.power import PowerConfig

SIDES = ("DriverSide", "Middle", "PassengerSide")
ZONES = (
    "dashboard",
    "centre_console",
    "screen",
    "ceiling",
    "door",
    "seat_back",
    "trunk",
    "cargo_bed",
    "cab_roof",
    "pillar",
)
_ID = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class Rail:
    id: str
    voltage_v: float
    budget_w: float
    description: str = ""


@dataclass(frozen=True, slots=True)
class MountPoint:
    id: str
    type: str
    rail: str
    max_w: float
    location: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def driver_view(self) -> bool:
        return bool(self.location.get("driver_view", False))

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "rail": self.rail,
            "max_w": self.max_w,
            "location": dict(self.location),
            "description": self.description,
        }


@dataclass(frozen=True)
class MountPlan:
    profile: str
    vehicle: str
    rails: dict[str, Rail]
    mounts: dict[str, MountPoint]
    driving: DrivingConfig
    power: PowerConfig
    source: str = "<mounts>"


def profiles_root() -> Path:
    """Where the brand profiles ship (inside the package), found without importing them."""
    return Path(str(resources.files("anycar"))) / "brands" / "data"


def load_profile_mounts(profile_id: str) -> MountPlan:
    return load_mounts(profiles_root() / profile_id)


def load_mounts(profile_dir: str | Path) -> MountPlan:
    """Read ``<profile_dir>/mounts.yaml``; errors name the file, key and field."""
    path = Path(profile_dir) / "mounts.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = decoding.load_document(text, str(path))
    except decoding.DecodingError as exc:
        raise ConfigError(str(exc)) from None
    return parse_mounts(data, source=str(path), default_profile=Path(profile_dir).name)


def parse_mounts(data: Any, *, source: str = "<mounts>", default_profile: str = "") -> MountPlan:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: must be a mapping with rails and mounts")
    unknown = set(data) - {"profile", "vehicle", "rails", "mounts", "driving_state", "power"}
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(sorted(unknown))}")
    rails_raw = data.get("rails")
    if not isinstance(rails_raw, Mapping) or not rails_raw:
        raise ConfigError(f"{source}: rails: need at least one supply rail (id: {{voltage_v, budget_w}})")
    rails: dict[str, Rail] = {}
    for rid, spec in rails_raw.items():
        where = f"{source}: rails.{rid}"
        if not isinstance(rid, str) or not _ID.match(rid):
            raise ConfigError(f"{where}: id must be lower_snake_case")
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where}: must be a mapping")
        _keys(spec, {"voltage_v", "budget_w", "description"}, where)
        rails[rid] = Rail(
            rid,
            _number(spec, "voltage_v", where, positive=True),
            _number(spec, "budget_w", where, positive=True),
            str(spec.get("description", "")),
        )
    mounts_raw = data.get("mounts")
    if not isinstance(mounts_raw, Mapping) or not mounts_raw:
        raise ConfigError(f"{source}: mounts: need at least one mount point")
    known_types = mount_types()
    mounts: dict[str, MountPoint] = {}
    for mid, spec in mounts_raw.items():
        where = f"{source}: mounts.{mid}"
        if not isinstance(mid, str) or not _ID.match(mid):
            raise ConfigError(f"{where}: id must be lower_snake_case")
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where}: must be a mapping")
        _keys(spec, {"type", "rail", "max_w", "location", "description"}, where)
        mtype = spec.get("type")
        if mtype not in known_types:
            raise ConfigError(f"{where}.type: {mtype!r} is not one of {', '.join(known_types)}")
        rail = spec.get("rail")
        if rail not in rails:
            raise ConfigError(f"{where}.rail: {rail!r} is not a rail of this profile ({', '.join(rails)})")
        max_w = _number(spec, "max_w", where, positive=True)
        if max_w > rails[rail].budget_w:
            raise ConfigError(
                f"{where}.max_w: {max_w:g} W exceeds rail {rail}'s budget {rails[rail].budget_w:g} W"
            )
        location = spec.get("location", {})
        if not isinstance(location, Mapping):
            raise ConfigError(f"{where}.location: must be a mapping")
        _keys(location, {"zone", "row", "side", "driver_view"}, f"{where}.location")
        if "zone" in location and location["zone"] not in ZONES:
            raise ConfigError(f"{where}.location.zone: {location['zone']!r} is not one of {', '.join(ZONES)}")
        if "row" in location and (not isinstance(location["row"], int) or not 1 <= location["row"] <= 4):
            raise ConfigError(f"{where}.location.row: must be an integer 1-4")
        if "side" in location and location["side"] not in SIDES:
            raise ConfigError(f"{where}.location.side: {location['side']!r} is not one of {', '.join(SIDES)}")
        if "driver_view" in location and not isinstance(location["driver_view"], bool):
            raise ConfigError(f"{where}.location.driver_view: must be true or false")
        mounts[mid] = MountPoint(mid, mtype, rail, max_w, dict(location), str(spec.get("description", "")))
    driving = (
        DrivingConfig.from_dict(data["driving_state"], f"{source}: driving_state")
        if "driving_state" in data
        else DrivingConfig.default()
    )
    power = (
        PowerConfig.from_dict(data["power"], f"{source}: power") if "power" in data else PowerConfig.default()
    )
    profile = data.get("profile", default_profile)
    return MountPlan(str(profile), str(data.get("vehicle", profile)), rails, mounts, driving, power, source)


def _keys(spec: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(spec) - allowed
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))} (known: {', '.join(sorted(allowed))})"
        )


def _number(spec: Mapping[str, Any], key: str, where: str, *, positive: bool = False) -> float:
    value = spec.get(key)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or (positive and value <= 0):
        raise ConfigError(f"{where}.{key}: must be a {'positive ' if positive else ''}number, got {value!r}")
    return float(value)
