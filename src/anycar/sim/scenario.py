"""Scenarios: faults and states laid over a simulated drive, in data files
(``data/scenarios/<name>.yaml``): a 12 V battery's state of charge at the start, and windows in
each lap in which the DC-DC converter is out, so the 12 V rail sags under its loads. The demo
runs the scenario that lists its profile; ``anycar demo --scenario`` picks another or none."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from anycar.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str = ""
    low_voltage_soc_percent: float | None = None
    dcdc_outages: tuple[tuple[float, float], ...] = ()  # (from, to) seconds into each lap
    demo_profiles: tuple[str, ...] = ()

    def dcdc_out(self, lap_s: float) -> bool:
        """Whether the DC-DC converter is out ``lap_s`` seconds into a lap."""
        return any(start <= lap_s < end for start, end in self.dcdc_outages)


def _folder() -> Path:
    return Path(str(resources.files("anycar.sim"))) / "data" / "scenarios"


def shipped() -> list[str]:
    return sorted(p.stem for p in _folder().glob("*.yaml"))


def load_scenario(name: str) -> Scenario:
    """A shipped scenario by name, or a YAML file of one."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else _folder() / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"no scenario {name!r} (shipped: {', '.join(shipped())}, or a .yaml file)")
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    return _parse(data, str(path))


def _parse(data: Any, where: str) -> Scenario:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping with name, low_voltage_soc_percent, dcdc_outages")
    unknown = set(data) - {"name", "description", "low_voltage_soc_percent", "dcdc_outages", "demo_profiles"}
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    soc = data.get("low_voltage_soc_percent")
    if soc is not None and (not isinstance(soc, int | float) or not 0 <= soc <= 100):
        raise ConfigError(f"{where}: low_voltage_soc_percent: a number from 0 to 100, not {soc!r}")
    outages = []
    for i, window in enumerate(data.get("dcdc_outages") or []):
        try:
            start, end = float(window["from_s"]), float(window["to_s"])
        except (TypeError, KeyError, ValueError):
            raise ConfigError(f"{where}: dcdc_outages.{i}: needs from_s and to_s in seconds") from None
        if not 0 <= start < end:
            raise ConfigError(f"{where}: dcdc_outages.{i}: from_s must be >= 0 and before to_s")
        outages.append((start, end))
    return Scenario(
        name=str(data.get("name") or Path(where).stem),
        description=str(data.get("description") or ""),
        low_voltage_soc_percent=None if soc is None else float(soc),
        dcdc_outages=tuple(outages),
        demo_profiles=tuple(str(p) for p in data.get("demo_profiles") or ()),
    )


def demo_scenario(profile: str) -> str | None:
    """The shipped scenario the demo runs on ``profile`` (the first that lists it), if any."""
    for name in shipped():
        if profile in load_scenario(name).demo_profiles:
            return name
    return None
