"""Power management: which priority classes to shed given the 12 V rail, traction battery and
ignition, with hysteresis so a rail hovering at a threshold does not flap accessories.

Priorities rank safety > essential > comfort > entertainment; safety is never shed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import IntEnum
from typing import Any

from anycar.errors import ConfigError
from anycar.policy import config
from anycar.policy.courtesy import CourtesyConfig


class Priority(IntEnum):
    """Higher value = shed first."""

    SAFETY = 0
    ESSENTIAL = 1
    COMFORT = 2
    ENTERTAINMENT = 3

    @classmethod
    def parse(cls, text: str | Priority) -> Priority:
        if isinstance(text, Priority):
            return text
        if isinstance(text, str) and text.upper() in cls.__members__:
            return cls[text.upper()]
        raise ConfigError(f"priority {text!r} is not one of safety, essential, comfort, entertainment")

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class PowerConfig:
    low_voltage_v: float = 11.8
    critical_voltage_v: float = 11.4
    cutoff_voltage_v: float = 11.0
    voltage_hysteresis_v: float = 0.3
    low_soc_percent: float = 15.0
    critical_soc_percent: float = 7.0
    soc_hysteresis_percent: float = 3.0
    ignition_off_states: tuple[str, ...] = ("OFF", "LOCK")
    ignition_off_sheds: tuple[str, ...] = ("entertainment", "comfort")
    # interior lights a door opening or an unlock may run with the ignition off (policy.courtesy)
    courtesy: CourtesyConfig = field(default_factory=CourtesyConfig)

    @classmethod
    def default(cls) -> PowerConfig:
        return cls.from_dict(config.defaults()["power"], "policy.yaml: power", base=cls())

    @classmethod
    def from_dict(cls, data: Any, where: str, base: PowerConfig | None = None) -> PowerConfig:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: must be a mapping")
        start = base if base is not None else cls.default()
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {f.name: getattr(start, f.name) for f in fields(cls)}
        for key, value in data.items():
            if key == "courtesy":
                values[key] = CourtesyConfig.from_dict(value, f"{where}.courtesy", base=start.courtesy)
            elif key in ("ignition_off_states", "ignition_off_sheds"):
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ConfigError(f"{where}.{key}: must be a list of names")
                if key == "ignition_off_sheds":
                    for v in value:
                        if Priority.parse(v) is Priority.SAFETY:
                            raise ConfigError(f"{where}.{key}: safety accessories are never shed")
                values[key] = tuple(value)
            elif not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ConfigError(f"{where}.{key}: must be a number, got {value!r}")
            else:
                values[key] = float(value)
        cfg = cls(**values)
        if not cfg.cutoff_voltage_v < cfg.critical_voltage_v < cfg.low_voltage_v:
            raise ConfigError(f"{where}: need cutoff_voltage_v < critical_voltage_v < low_voltage_v")
        if not cfg.critical_soc_percent < cfg.low_soc_percent:
            raise ConfigError(f"{where}: need critical_soc_percent < low_soc_percent")
        return cfg


_VOLTAGE_SHEDS = (
    (),
    (Priority.ENTERTAINMENT,),
    (Priority.ENTERTAINMENT, Priority.COMFORT),
    (Priority.ENTERTAINMENT, Priority.COMFORT, Priority.ESSENTIAL),
)
_SOC_SHEDS = ((), (Priority.ENTERTAINMENT,), (Priority.ENTERTAINMENT, Priority.COMFORT))


@dataclass(frozen=True, slots=True)
class PowerVerdict:
    """Which priority classes are shed now, and why each one is."""

    shed: dict[Priority, str]

    def reason_for(self, priority: Priority) -> str | None:
        return self.shed.get(priority)


class PowerMonitor:
    """Turns readings into a verdict; keeps a level per source so that restoring needs margin."""

    def __init__(self, cfg: PowerConfig | None = None) -> None:
        self.cfg = cfg if cfg is not None else PowerConfig.default()
        self.voltage: float | None = None
        self.soc: float | None = None
        self.ignition: str | None = None
        self._v_level = 0
        self._soc_level = 0

    def update(
        self, *, voltage: float | None = None, soc: float | None = None, ignition: str | None = None
    ) -> PowerVerdict:
        if voltage is not None:
            self.voltage = voltage
            self._v_level = _level(
                voltage,
                (self.cfg.low_voltage_v, self.cfg.critical_voltage_v, self.cfg.cutoff_voltage_v),
                self._v_level,
                self.cfg.voltage_hysteresis_v,
            )
        if soc is not None:
            self.soc = soc
            self._soc_level = _level(
                soc,
                (self.cfg.low_soc_percent, self.cfg.critical_soc_percent),
                self._soc_level,
                self.cfg.soc_hysteresis_percent,
            )
        if ignition is not None:
            self.ignition = ignition
        return self.verdict()

    @property
    def supply_ok(self) -> bool:
        """Neither the 12 V rail nor the traction battery is at any shedding level (with the
        restore margin): what an exception such as courtesy lighting needs before it may draw."""
        return self._v_level == 0 and self._soc_level == 0

    def verdict(self) -> PowerVerdict:
        shed: dict[Priority, str] = {}
        if self.ignition in self.cfg.ignition_off_states:
            for name in self.cfg.ignition_off_sheds:
                shed.setdefault(Priority.parse(name), f"ignition is {self.ignition}")
        v_limits = (self.cfg.low_voltage_v, self.cfg.critical_voltage_v, self.cfg.cutoff_voltage_v)
        for i, p in enumerate(_VOLTAGE_SHEDS[self._v_level]):
            shed.setdefault(p, f"12 V rail low (below {v_limits[min(i, self._v_level - 1)]:g} V)")
        soc_limits = (self.cfg.low_soc_percent, self.cfg.critical_soc_percent)
        for i, p in enumerate(_SOC_SHEDS[self._soc_level]):
            shed.setdefault(p, f"traction battery low (below {soc_limits[min(i, self._soc_level - 1)]:g} %)")
        shed.pop(Priority.SAFETY, None)
        return PowerVerdict(shed)


def _level(value: float, thresholds: tuple[float, ...], current: int, hysteresis: float) -> int:
    """How many (descending) thresholds ``value`` is below; going back up needs ``hysteresis``."""
    raw = sum(1 for t in thresholds if value < t)
    if raw >= current:
        return raw
    # improving: only step back past a threshold once clear of it by the hysteresis margin
    level = current
    while level > raw and value >= thresholds[level - 1] + hysteresis:
        level -= 1
    return level
