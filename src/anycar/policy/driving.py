"""Driving state and UX restrictions, after Android Automotive's CarUxRestrictions.

The state comes from gear and speed: *parked* (gear in P, or standstill with ignition off),
*idling* (not parked, at or below the idling speed), *moving* (above it), *unknown* (no speed
yet, treated as the most restrictive). Each profile maps states and speed ranges to
restriction lists; displays in the driver's view obey them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from anycar.errors import ConfigError
from anycar.policy import config

PARK_GEAR = 126  # VSS Transmission.SelectedGear: 126=Park, 127=Drive


class DrivingState(StrEnum):
    PARKED = "parked"
    IDLING = "idling"
    MOVING = "moving"
    UNKNOWN = "unknown"


# Android Automotive's CarUxRestrictions flags, as names.
UX_RESTRICTIONS = frozenset(
    {
        "NO_DIALPAD",
        "NO_FILTERING",
        "LIMIT_STRING_LENGTH",
        "NO_KEYBOARD",
        "NO_VIDEO",
        "LIMIT_CONTENT",
        "NO_SETUP",
        "NO_TEXT_MESSAGE",
        "NO_VOICE_TRANSCRIPTION",
        "UX_RESTRICTIONS_FULLY_RESTRICTED",
    }
)


@dataclass(frozen=True, slots=True)
class UxRule:
    state: DrivingState
    restrictions: frozenset[str]
    min_speed_kmh: float | None = None
    max_speed_kmh: float | None = None

    def applies(self, state: DrivingState, speed: float | None) -> bool:
        if state is not self.state:
            return False
        if self.min_speed_kmh is None and self.max_speed_kmh is None:
            return True
        if speed is None:
            return False
        lo = self.min_speed_kmh if self.min_speed_kmh is not None else float("-inf")
        hi = self.max_speed_kmh if self.max_speed_kmh is not None else float("inf")
        return lo <= speed < hi


@dataclass(frozen=True, slots=True)
class DrivingConfig:
    idling_max_speed_kmh: float = 1.0
    max_string_length: int = 120
    rules: tuple[UxRule, ...] = field(default=())

    @classmethod
    def default(cls) -> DrivingConfig:
        return cls.from_dict(config.defaults()["driving_state"], "policy.yaml: driving_state")

    @classmethod
    def from_dict(cls, data: Any, where: str, base: DrivingConfig | None = None) -> DrivingConfig:
        """Parse a ``driving_state`` section; missing keys come from ``base`` (or the defaults)."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: must be a mapping")
        unknown = set(data) - {"idling_max_speed_kmh", "max_string_length", "rules"}
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        if base is None and "rules" not in data:
            base = cls.default()
        idle = data.get("idling_max_speed_kmh", base.idling_max_speed_kmh if base else 1.0)
        if not isinstance(idle, (int, float)) or isinstance(idle, bool) or idle < 0:
            raise ConfigError(f"{where}.idling_max_speed_kmh: must be a number >= 0, got {idle!r}")
        limit = data.get("max_string_length", base.max_string_length if base else 120)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ConfigError(f"{where}.max_string_length: must be a positive integer, got {limit!r}")
        if "rules" in data:
            raw_rules = data["rules"]
            if not isinstance(raw_rules, list) or not raw_rules:
                raise ConfigError(f"{where}.rules: must be a non-empty list")
            rules = tuple(_rule(r, f"{where}.rules[{i}]") for i, r in enumerate(raw_rules))
        else:
            assert base is not None  # nosec B101 # narrows an Optional for mypy; an invariant of this object, not a check of outside input
            rules = base.rules
        return cls(float(idle), limit, rules)

    def derive(
        self,
        *,
        speed: float | None,
        selected_gear: int | None = None,
        current_gear: int | None = None,
        ignition: str | None = None,
    ) -> DrivingState:
        """The driving state from the latest speed, gear and ignition values."""
        if speed is None:
            if selected_gear == PARK_GEAR or ignition in ("OFF", "LOCK"):
                return DrivingState.PARKED
            return DrivingState.UNKNOWN
        if abs(speed) > self.idling_max_speed_kmh:
            return DrivingState.MOVING
        if selected_gear == PARK_GEAR or ignition in ("OFF", "LOCK"):
            return DrivingState.PARKED
        return DrivingState.IDLING

    def restrictions(self, state: DrivingState, speed: float | None) -> frozenset[str]:
        """Union of the restrictions of every rule that applies (Android takes one per range)."""
        out: set[str] = set()
        matched = False
        for rule in self.rules:
            if rule.applies(state, speed):
                out |= rule.restrictions
                matched = True
        if not matched and state is DrivingState.MOVING:
            # a moving speed outside every configured range gets the strictest moving rule
            for rule in self.rules:
                if rule.state is DrivingState.MOVING:
                    out |= rule.restrictions
        return frozenset(out)


def _rule(data: Any, where: str) -> UxRule:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: must be a mapping")
    unknown = set(data) - {"state", "restrictions", "min_speed_kmh", "max_speed_kmh"}
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    try:
        state = DrivingState(str(data.get("state")))
    except ValueError:
        raise ConfigError(
            f"{where}.state: {data.get('state')!r} is not one of parked, idling, moving, unknown"
        ) from None
    restrictions = data.get("restrictions", [])
    if not isinstance(restrictions, list):
        raise ConfigError(f"{where}.restrictions: must be a list")
    for i, name in enumerate(restrictions):
        if name not in UX_RESTRICTIONS:
            raise ConfigError(
                f"{where}.restrictions[{i}]: {name!r} is not a UX restriction "
                f"({', '.join(sorted(UX_RESTRICTIONS))})"
            )
    bounds: dict[str, float | None] = {}
    for key in ("min_speed_kmh", "max_speed_kmh"):
        value = data.get(key)
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)):
            raise ConfigError(f"{where}.{key}: must be a number, got {value!r}")
        bounds[key] = float(value) if value is not None else None
    lo, hi = bounds["min_speed_kmh"], bounds["max_speed_kmh"]
    if lo is not None and hi is not None and lo >= hi:
        raise ConfigError(f"{where}: min_speed_kmh {lo} must be below max_speed_kmh {hi}")
    return UxRule(state, frozenset(restrictions), lo, hi)
