"""Courtesy lighting: the one exception to "comfort is shed at ignition off".

A car's own interior lamps come on when a door opens or the car is unlocked with the ignition
off, and go out by themselves a while later (the battery saver). A fitted reading light is
comfort, which the policy sheds at ignition off; without this exception the owner's "light when
the door opens after dark" could never work. The exception is narrow and bounded, all of it data
(``power.courtesy`` in ``data/policy.yaml``, overridable per brand in ``mounts.yaml``):

- only accessories of the listed trait families (``light``) count as courtesy lighting;
- only a trigger (a door opening, an unlock) *while the ignition is off* opens the window, and it
  lasts ``duration_s`` on the hub's clock from the latest trigger; the ignition coming on ends it;
- never while the 12 V rail or the traction battery is low or critical (any voltage or charge
  shedding level): then the lamp is shed as before;
- at most ``max_w`` of courtesy lighting (the accessories' peak draw, summed in fitting order)
  runs on the 12 V rail with the ignition off; a lamp beyond it stays shed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from anycar.clock import WALL, Clock
from anycar.errors import AnycarError, ConfigError
from anycar.model import paths


@dataclass(frozen=True, slots=True)
class CourtesyTrigger:
    """A signal pattern and the value that, when a signal it covers changes to it, opens the window."""

    pattern: str
    to: bool

    def describe(self, path: str) -> str:
        name = path.rsplit(".", 1)[-1]
        if name == "IsOpen":
            return f"{path.removesuffix('.IsOpen')} opened" if self.to else f"{path} closed"
        if name == "IsLocked" and not self.to:
            return f"{path.removesuffix('.IsLocked')} unlocked"
        return f"{path} became {str(self.to).lower()}"


@dataclass(frozen=True, slots=True)
class CourtesyConfig:
    families: tuple[str, ...] = ("light",)
    duration_s: float = 600.0
    max_w: float = 12.0
    triggers: tuple[CourtesyTrigger, ...] = ()

    @classmethod
    def from_dict(cls, data: Any, where: str, base: CourtesyConfig | None = None) -> CourtesyConfig:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: must be a mapping")
        unknown = set(data) - {"families", "duration_s", "max_w", "triggers"}
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        start = base if base is not None else cls()
        families = start.families
        if "families" in data:
            value = data["families"]
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise ConfigError(f"{where}.families: must be a list of trait family names")
            families = tuple(value)
        numbers: dict[str, float] = {"duration_s": start.duration_s, "max_w": start.max_w}
        for key in numbers:
            if key in data:
                value = data[key]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    raise ConfigError(f"{where}.{key}: must be a number >= 0, got {value!r}")
                numbers[key] = float(value)
        if numbers["duration_s"] > 3600:
            raise ConfigError(f"{where}.duration_s: at most 3600 s (an hour of lamps drains a 12 V battery)")
        triggers = start.triggers
        if "triggers" in data:
            triggers = _triggers(data["triggers"], f"{where}.triggers")
        return cls(families, numbers["duration_s"], numbers["max_w"], triggers)


def _triggers(data: Any, where: str) -> tuple[CourtesyTrigger, ...]:
    if not isinstance(data, list):
        raise ConfigError(f"{where}: must be a list of {{signal: PATTERN, to: true|false}}")
    out = []
    for i, item in enumerate(data):
        if (
            not isinstance(item, Mapping)
            or set(item) != {"signal", "to"}
            or not isinstance(item["signal"], str)
            or not item["signal"].startswith("Vehicle.")
            or not isinstance(item["to"], bool)
        ):
            raise ConfigError(f"{where}[{i}]: must be {{signal: Vehicle..., to: true|false}}, got {item!r}")
        try:
            paths.compile_pattern(item["signal"])
        except AnycarError as exc:
            raise ConfigError(f"{where}[{i}].signal: {exc}") from None
        out.append(CourtesyTrigger(item["signal"], item["to"]))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Window:
    """An open courtesy window: what opened it, and until when (hub clock)."""

    cause: str
    ignition: str
    until: float  # the clock's monotonic seconds
    until_epoch: float  # the same moment on the clock's time of day, for people

    def note(self, clock: Clock) -> str:
        left = max(0.0, self.until - clock.monotonic())
        return f"courtesy lighting: {self.cause} with ignition {self.ignition}, {left:.0f} s left"


class CourtesyWindow:
    """Keeps the window: opened (and restarted) by a trigger with the ignition off, over at its end."""

    def __init__(self, cfg: CourtesyConfig, clock: Clock = WALL) -> None:
        self.cfg = cfg
        self.clock = clock
        self.window: Window | None = None
        self.ended: Window | None = None  # the last window that ran out (for the shed reason)

    def open(self, cause: str, ignition: str) -> Window | None:
        if self.cfg.duration_s <= 0 or not self.cfg.families:
            return None
        self.window = Window(
            cause,
            ignition,
            self.clock.monotonic() + self.cfg.duration_s,
            self.clock.time() + self.cfg.duration_s,
        )
        self.ended = None
        return self.window

    def close(self) -> None:
        """The ignition came on: interior lights are the car's again, the window is over."""
        self.window = None
        self.ended = None

    def current(self) -> Window | None:
        """The open window, or ``None`` once its time is up."""
        if self.window is not None and self.clock.monotonic() >= self.window.until:
            self.ended, self.window = self.window, None
        return self.window

    def left_s(self) -> float:
        w = self.current()
        return 0.0 if w is None else max(0.0, w.until - self.clock.monotonic())

    def counts(self, families: frozenset[str]) -> bool:
        return not families.isdisjoint(self.cfg.families)

    def status(self) -> dict[str, Any]:
        w = self.current()
        return {
            "families": list(self.cfg.families),
            "duration_s": self.cfg.duration_s,
            "max_w": self.cfg.max_w,
            "open": w is not None,
            "cause": w.cause if w is not None else None,
            "until": w.until_epoch if w is not None else None,
            "left_s": round(self.left_s(), 1),
        }
