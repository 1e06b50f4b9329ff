"""Road classes, default speeds and vehicle profiles, read from ``data/profiles.yaml``.

They are data, not code: a town with other default limits, or a vehicle that may use other
roads, is a change to the YAML file (and a rebuild of the network, ``tools/build_roads.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from anycar.errors import ConfigError

WHERE = "anycar/roads/data/profiles.yaml"


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    title: str
    classes: tuple[str, ...]
    max_kmh: float
    access_keys: tuple[str, ...]
    exempt_from_restrictions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RoadRules:
    default_kmh: dict[str, float]
    profiles: dict[str, Profile]
    open_values: frozenset[str]
    closed_values: frozenset[str]
    snap_max_m: float
    detour_factor: float
    fallback_kmh: float

    def profile(self, name: str) -> Profile:
        found = self.profiles.get(name)
        if found is None:
            raise ConfigError(f"road profile {name!r}: one of {', '.join(self.profiles)}")
        return found


def _positive(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"{where}: must be a positive number, got {value!r}")
    return float(value)


def parse_rules(data: Any, where: str = WHERE) -> RoadRules:
    """The rules from the parsed YAML; a bad field raises ``ConfigError`` naming it."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping")
    classes = data.get("classes")
    if not isinstance(classes, dict) or not classes:
        raise ConfigError(f"{where}: classes: expected a mapping of highway class -> {{default_kmh}}")
    default_kmh = {
        str(name): _positive((spec or {}).get("default_kmh"), f"{where}: classes.{name}.default_kmh")
        for name, spec in classes.items()
    }
    profiles: dict[str, Profile] = {}
    for name, spec in (data.get("profiles") or {}).items():
        at = f"{where}: profiles.{name}"
        if not isinstance(spec, dict):
            raise ConfigError(f"{at}: expected a mapping")
        used = tuple(str(c) for c in spec.get("classes") or [])
        unknown = [c for c in used if c not in default_kmh]
        if not used or unknown:
            raise ConfigError(f"{at}.classes: unknown or empty ({', '.join(unknown) or 'empty'})")
        profiles[str(name)] = Profile(
            name=str(name),
            title=str(spec.get("title") or name),
            classes=used,
            max_kmh=_positive(spec.get("max_kmh"), f"{at}.max_kmh"),
            access_keys=tuple(str(k) for k in spec.get("access_keys") or ["access"]),
            exempt_from_restrictions=tuple(str(k) for k in spec.get("exempt_from_restrictions") or []),
        )
    if not profiles:
        raise ConfigError(f"{where}: profiles: at least one")
    if len(profiles) > 8:
        raise ConfigError(f"{where}: profiles: at most 8 (one bit each in the compiled network)")
    return RoadRules(
        default_kmh=default_kmh,
        profiles=profiles,
        open_values=frozenset(str(v) for v in data.get("open_values") or []),
        closed_values=frozenset(str(v) for v in data.get("closed_values") or []),
        snap_max_m=_positive(data.get("snap_max_m"), f"{where}: snap_max_m"),
        detour_factor=_positive(data.get("detour_factor"), f"{where}: detour_factor"),
        fallback_kmh=_positive(data.get("fallback_kmh"), f"{where}: fallback_kmh"),
    )


def load_rules() -> RoadRules:
    text = resources.files("anycar.roads").joinpath("data/profiles.yaml").read_text("utf-8")
    return parse_rules(yaml.safe_load(text))
