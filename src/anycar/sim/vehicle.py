"""Vehicle parameters for the simulator, one data file per brand profile id."""

from __future__ import annotations

from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

from anycar import decoding
from anycar.errors import ConfigError


@dataclass(frozen=True, slots=True)
class BatteryParams:
    capacity_kwh: float
    initial_soc: float  # percent
    voltage_min: float  # open-circuit voltage at 0 % SoC
    voltage_max: float  # open-circuit voltage at 100 % SoC
    resistance_ohm: float


@dataclass(frozen=True, slots=True)
class PackParams:
    """The swappable pack fitted at the start: its serial (as swap stations know it) and health."""

    serial: str
    soh: float  # percent


MAX_SERIAL = 50  # OCPP 2.1 BatteryData serialNumber


def check_pack(serial: Any, soc: Any, soh: Any, capacity_kwh: Any = 1.0, where: str = "pack") -> None:
    """A pack's identity and state as the simulator takes them; raises ConfigError naming the field."""
    if not isinstance(serial, str) or not 0 < len(serial) <= MAX_SERIAL or not serial.isprintable():
        raise ConfigError(f"{where}.serial: 1-{MAX_SERIAL} printable characters, got {serial!r:.80}")
    for key, value, lo, hi in (
        ("soc", soc, 0, 100),
        ("soh", soh, 0, 100),
        ("capacity_kwh", capacity_kwh, 0, 1000),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
            raise ConfigError(f"{where}.{key}: a number within {lo}..{hi}, got {value!r:.40}")
    if capacity_kwh <= 0:
        raise ConfigError(f"{where}.capacity_kwh: must be above 0")


@dataclass(frozen=True, slots=True)
class LowVoltageParams:
    capacity_ah: float
    dcdc_max_w: float
    base_load_w: float
    standby_load_w: float


@dataclass(frozen=True, slots=True)
class HvacParams:
    thermal_mass_j_per_k: float
    conductance_w_per_k: float
    door_open_conductance_w_per_k: float
    max_heating_w: float
    max_cooling_w: float
    cop_heating: float
    cop_cooling: float
    blower_w: float
    setpoint_c: float


@dataclass(frozen=True, slots=True)
class VehicleParams:
    id: str
    name: str
    vehicle_class: str  # "car" or "delivery"
    mass_kg: float
    payload_kg: float
    drag_coefficient: float
    frontal_area_m2: float
    rolling_resistance: float
    rotating_mass_factor: float
    wheel_radius_m: float
    gear_ratio: float
    drivetrain_efficiency: float
    regen_efficiency: float
    max_drive_power_kw: float
    max_regen_power_kw: float
    max_speed_kmh: float
    battery: BatteryParams
    low_voltage: LowVoltageParams
    hvac: HvacParams
    default_cycle: str
    default_route: str
    pack: PackParams | None = None  # a swappable pack (its identity in VSS); None: a fixed battery

    @property
    def total_mass_kg(self) -> float:
        return self.mass_kg + self.payload_kg


def _numbers(cls: type, data: Any, where: str) -> dict[str, float]:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping")
    out: dict[str, float] = {}
    for f in fields(cls):
        value = data.get(f.name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}.{f.name}: expected a number, got {value!r}")
        if value < 0:
            raise ConfigError(f"{where}.{f.name}: must not be negative, got {value}")
        out[f.name] = float(value)
    unknown = set(data) - {f.name for f in fields(cls)}
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    return out


_SECTIONS = {"battery", "low_voltage", "hvac", "defaults", "name", "class", "pack"}


def parse_vehicle(vid: str, data: Any, where: str = "") -> VehicleParams:
    """Check and build parameters; every error names the file and field."""
    where = where or vid
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of vehicle parameters")
    top_fields = [
        f.name
        for f in fields(VehicleParams)
        if f.name not in {"id", "name", "vehicle_class", "battery", "low_voltage", "hvac", "pack"}
        and not f.name.startswith("default_")
    ]
    top = _numbers_subset(data, top_fields, where)
    unknown = set(data) - set(top_fields) - _SECTIONS
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    battery = BatteryParams(**_numbers(BatteryParams, data.get("battery"), f"{where}: battery"))
    if not 0 <= battery.initial_soc <= 100:
        raise ConfigError(f"{where}: battery.initial_soc must be within 0..100, got {battery.initial_soc}")
    if battery.voltage_min >= battery.voltage_max or battery.capacity_kwh <= 0:
        raise ConfigError(f"{where}: battery needs capacity_kwh > 0 and voltage_min < voltage_max")
    for key in ("drivetrain_efficiency", "regen_efficiency"):
        if not 0 < top[key] <= 1:
            raise ConfigError(f"{where}: {key} must be in (0, 1], got {top[key]}")
    for key in ("mass_kg", "wheel_radius_m", "gear_ratio", "max_speed_kmh"):
        if top[key] <= 0:
            raise ConfigError(f"{where}: {key} must be positive")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise ConfigError(f"{where}: defaults must be a mapping with 'cycle' and 'route'")
    for key in ("cycle", "route"):
        if key in defaults and not isinstance(defaults[key], str):
            raise ConfigError(f"{where}: defaults.{key} must be a name, got {defaults[key]!r}")
    if "name" in data and not isinstance(data["name"], str):
        raise ConfigError(f"{where}: name must be a string")
    vclass = data.get("class", "car")
    if vclass not in ("car", "delivery"):
        raise ConfigError(f"{where}: class must be 'car' or 'delivery', got {vclass!r}")
    pack = None
    if data.get("pack") is not None:
        raw = data["pack"]
        if not isinstance(raw, dict) or set(raw) - {"serial", "soh"}:
            raise ConfigError(f"{where}: pack: a mapping with serial and soh")
        check_pack(raw.get("serial"), battery.initial_soc, raw.get("soh"), where=f"{where}: pack")
        pack = PackParams(str(raw["serial"]), float(raw["soh"]))
    hvac = HvacParams(**_numbers(HvacParams, data.get("hvac"), f"{where}: hvac"))
    if hvac.thermal_mass_j_per_k <= 0:
        raise ConfigError(f"{where}: hvac.thermal_mass_j_per_k must be positive")
    return VehicleParams(
        id=vid,
        name=str(data.get("name", vid)),
        vehicle_class=vclass,
        battery=battery,
        low_voltage=LowVoltageParams(
            **_numbers(LowVoltageParams, data.get("low_voltage"), f"{where}: low_voltage")
        ),
        hvac=hvac,
        default_cycle=str(defaults.get("cycle", "wltc3")),
        default_route=str(defaults.get("route", "beijing_yizhuang_loop")),
        pack=pack,
        **top,
    )


def _numbers_subset(data: dict[str, Any], names: list[str], where: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for name in names:
        value = data.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: {name}: expected a number, got {value!r}")
        if value < 0:
            raise ConfigError(f"{where}: {name}: must not be negative, got {value}")
        out[name] = float(value)
    return out


def load_vehicle(profile: str) -> VehicleParams:
    """Parameters for a brand profile id (``kaiyun_pickman``) or a YAML file by path."""
    path = Path(profile)
    if path.suffix in (".yaml", ".yml") and path.exists():
        text, vid, where = path.read_text("utf-8"), path.stem, str(path)
    else:
        res = resources.files("anycar.sim").joinpath(f"data/vehicles/{profile}.yaml")
        if not res.is_file():
            raise ConfigError(
                f"no simulator parameters for profile {profile!r}; known: {', '.join(vehicle_ids())}"
            )
        text, vid, where = res.read_text("utf-8"), profile, f"sim/data/vehicles/{profile}.yaml"
    try:
        data = decoding.load_document(text, where)
    except decoding.DecodingError as exc:
        raise ConfigError(str(exc)) from None
    return parse_vehicle(vid, data, where)


def vehicle_ids() -> list[str]:
    folder = resources.files("anycar.sim").joinpath("data/vehicles")
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))
