"""Cutting one vehicle's stream into trips and stops, as Traccar's trip and stop reports do.

A trip starts when the vehicle moves at ``start_kmh`` or more with the ignition on (or unknown,
for a plain tracker); it ends when the ignition goes off, when the vehicle has stood (below
``stop_kmh``) for ``min_stop_s`` (the trip ends when it stopped), or when no data came for
``max_gap_s`` (the trip ends at its last sample). A "trip" shorter than ``min_distance_m`` is GPS
drift: dropped, and the stop goes on. A stop is the time between two trips.

``Segmenter`` is pure: samples in, closed trips and stops out, its whole state a JSON-able dict,
so the derivation (``anycar.fleet.derive``) keeps it in the database between batches and can
replay a window from any stop's start and get the same answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

EARTH_M = 6_371_008.8


class TripConfigError(ValueError):
    """trips.yaml is wrong; the message names the file and the field."""


@dataclass(frozen=True, slots=True)
class TripConfig:
    ignition: str = "Vehicle.LowVoltageSystemState"
    ignition_on: tuple[str, ...] = ("ON", "START")
    speed: str = "Vehicle.Speed"
    soc: str = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
    energy: str = "Vehicle.Powertrain.TractionBattery.StateOfCharge.CurrentEnergy"
    capacity: str = "Vehicle.Powertrain.TractionBattery.GrossCapacity"
    start_kmh: float = 3.0
    stop_kmh: float = 1.0
    min_stop_s: float = 120.0
    max_gap_s: float = 600.0
    min_distance_m: float = 50.0
    max_jump_kmh: float = 250.0
    max_late_s: float = 604_800.0
    derive_min_interval_s: float = 1.0  # domain-speed: a vehicle is derived at most this often
    pack_kwh: dict[str, float] = field(default_factory=lambda: {"default": 50.0})

    @property
    def paths(self) -> tuple[str, ...]:
        """The signals the segmenter reads."""
        return (self.ignition, self.speed, self.soc, self.energy, self.capacity)

    def pack(self, brand: str) -> float:
        return self.pack_kwh.get(brand, self.pack_kwh.get("default", 50.0))


def load_trip_config(path: Path | None = None) -> TripConfig:
    """trips.yaml (the packaged one by default), checked field by field."""
    where = str(path) if path else "anycar/fleet/data/trips.yaml"
    text = (
        path.read_text()
        if path
        else resources.files("anycar.fleet").joinpath("data/trips.yaml").read_text(encoding="utf-8")
    )
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise TripConfigError(f"{where}: not YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise TripConfigError(f"{where}: must be a mapping")
    unknown = set(doc) - {"signals", "trip", "pack_kwh"}
    if unknown:
        raise TripConfigError(f"{where}: unknown key(s) {sorted(unknown)}")
    base = TripConfig()
    values: dict[str, Any] = {}
    signals = doc.get("signals") or {}
    for key, raw in signals.items():
        if key == "ignition_on":
            if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
                raise TripConfigError(f"{where}: signals.ignition_on: a list of strings")
            values[key] = tuple(raw)
        elif key in ("ignition", "speed", "soc", "energy", "capacity"):
            if not isinstance(raw, str) or not raw.startswith("Vehicle."):
                raise TripConfigError(f"{where}: signals.{key}: a VSS path (Vehicle.…)")
            values[key] = raw
        else:
            raise TripConfigError(f"{where}: signals.{key}: unknown key")
    for key, raw in (doc.get("trip") or {}).items():
        if not hasattr(base, key) or key in ("pack_kwh", "paths") or key in signals:
            raise TripConfigError(f"{where}: trip.{key}: unknown key")
        if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
            raise TripConfigError(f"{where}: trip.{key}: a number >= 0, not {raw!r}")
        values[key] = float(raw)
    packs = doc.get("pack_kwh") or {"default": 50.0}
    if not isinstance(packs, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in packs.values()
    ):
        raise TripConfigError(f"{where}: pack_kwh: brand profile -> kWh (> 0)")
    values["pack_kwh"] = {str(k): float(v) for k, v in packs.items()}
    cfg = TripConfig(**values)
    if cfg.stop_kmh > cfg.start_kmh:
        raise TripConfigError(f"{where}: trip.stop_kmh ({cfg.stop_kmh}) above trip.start_kmh")
    return cfg


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_M * math.asin(min(1.0, math.sqrt(a)))


# A sample: (ts, what, value) where what is "pos" (value: (lat, lon, speed | None)), "speed",
# "ign" (bool), "soc", "energy" or "capacity" (numbers). Same-time samples go ign, speed, pos.
ORDER = {"ign": 0, "capacity": 1, "soc": 2, "energy": 3, "speed": 4, "pos": 5}
Sample = tuple[float, str, Any]


def sort_key(sample: Sample) -> tuple[float, int]:
    return sample[0], ORDER[sample[1]]


class Segmenter:
    """Trips and stops of one vehicle, fed its samples in time order."""

    def __init__(self, cfg: TripConfig, capacity_kwh: float, state: dict[str, Any] | None = None) -> None:
        self.cfg = cfg
        self.s: dict[str, Any] = state or {
            "mode": "none",
            "last_ts": None,
            "lat": None,
            "lon": None,
            "pos_ts": None,
            "speed": None,
            "ign": None,
            "soc": None,
            "energy": None,
            "capacity": capacity_kwh,
            "trip": None,
            "stop": None,
        }
        self.closed_trips: list[dict[str, Any]] = []
        self.closed_stops: list[dict[str, Any]] = []

    # ---- feeding ----------------------------------------------------------------------------
    def feed(self, sample: Sample) -> None:
        ts, what, value = sample
        s, cfg = self.s, self.cfg
        trip = s["trip"]
        if trip is not None and s["last_ts"] is not None and ts - s["last_ts"] > cfg.max_gap_s:
            self._close(s["last_ts"])  # the vehicle fell silent during the trip
            trip = None
        moved = 0.0
        if what == "pos":
            lat, lon, speed = value
            if s["lat"] is not None and s.get("pos_ts") is not None:
                d = haversine_m(s["lat"], s["lon"], lat, lon)
                dt = max(ts - s["pos_ts"], 1e-3)
                if d / dt * 3.6 <= cfg.max_jump_kmh:
                    moved = d
            s["lat"], s["lon"], s["pos_ts"] = lat, lon, ts
            if speed is not None:
                s["speed"] = speed
        elif what == "speed":
            s["speed"] = value
        elif what == "ign":
            s["ign"] = value
        else:
            if what in ("soc", "energy") and s.get(what + "_ts") != ts:
                s[what + "_prev"], s[what + "_ts"] = s[what], ts  # what it was before this time
            s[what] = value
        s["last_ts"] = ts
        if s["stop"] is None and s["trip"] is None and s["lat"] is not None:
            s["stop"] = {"start_ts": ts, "lat": s["lat"], "lon": s["lon"]}
        speed = s["speed"] if s["speed"] is not None else 0.0
        ign = s["ign"]
        if trip is None:
            if speed >= cfg.start_kmh and ign is not False:
                trip = s["trip"] = {
                    "start_ts": ts,
                    "start_lat": s["lat"],
                    "start_lon": s["lon"],
                    "distance_m": moved,
                    "max_speed": speed,
                    "soc_start": self._before("soc", ts),
                    "energy_start": self._before("energy", ts),
                    "slow_since": None,
                    "slow_distance": None,
                    "slow_lat": None,
                    "slow_lon": None,
                    "confirmed": False,
                }
                self._confirm()
            return
        trip["distance_m"] += moved
        trip["max_speed"] = max(trip["max_speed"], speed)
        if ign is False:
            self._close(ts)
        elif speed < cfg.stop_kmh:
            if trip["slow_since"] is None:
                trip.update(
                    slow_since=ts, slow_distance=trip["distance_m"], slow_lat=s["lat"], slow_lon=s["lon"]
                )
            elif ts - trip["slow_since"] >= cfg.min_stop_s:
                self._close(trip["slow_since"])
                return
        elif speed >= cfg.stop_kmh:
            trip.update(slow_since=None, slow_distance=None)
        self._confirm()

    def _before(self, what: str, ts: float) -> Any:
        """The SoC (or energy) just before ``ts``: a trip's start must not count its first step."""
        s = self.s
        if s.get(what + "_ts") == ts and s.get(what + "_prev") is not None:
            return s[what + "_prev"]
        return s[what]

    def _confirm(self) -> None:
        """A trip becomes real once it went ``min_distance_m``: the stop before it ends then."""
        s = self.s
        trip = s["trip"]
        if trip is None or trip["confirmed"] or trip["distance_m"] < self.cfg.min_distance_m:
            return
        trip["confirmed"] = True
        if s["stop"] is not None:
            self.closed_stops.append({**s["stop"], "end_ts": trip["start_ts"], "open": False})
            s["stop"] = None

    def _close(self, end_ts: float) -> None:
        s = self.s
        trip = s["trip"]
        s["trip"] = None
        if trip is None:
            return
        if trip["slow_since"] is not None and end_ts == trip["slow_since"]:
            distance, lat, lon = trip["slow_distance"], trip["slow_lat"], trip["slow_lon"]
        else:
            distance, lat, lon = trip["distance_m"], s["lat"], s["lon"]
        trip["distance_m"] = distance
        if distance < self.cfg.min_distance_m:
            if s["stop"] is None and lat is not None:  # drift: the vehicle never left
                s["stop"] = {"start_ts": trip["start_ts"], "lat": trip["start_lat"], "lon": trip["start_lon"]}
            return
        self.closed_trips.append(self._row(trip, end_ts, lat, lon, open_=False))
        s["stop"] = {"start_ts": end_ts, "lat": lat, "lon": lon}

    # ---- reading ----------------------------------------------------------------------------
    def _energy(self, trip: dict[str, Any]) -> float | None:
        s = self.s
        if trip["energy_start"] is not None and s["energy"] is not None:
            return round(max(0.0, trip["energy_start"] - s["energy"]), 4)
        if trip["soc_start"] is not None and s["soc"] is not None and s["capacity"]:
            return round(max(0.0, trip["soc_start"] - s["soc"]) / 100 * s["capacity"], 4)
        return None

    def _row(self, trip: dict[str, Any], end_ts: float, lat: Any, lon: Any, *, open_: bool) -> dict[str, Any]:
        duration = max(end_ts - trip["start_ts"], 0.0)
        return {
            "start_ts": trip["start_ts"],
            "end_ts": end_ts,
            "start_lat": trip["start_lat"],
            "start_lon": trip["start_lon"],
            "end_lat": lat,
            "end_lon": lon,
            "distance_m": round(trip["distance_m"], 1),
            "max_speed": trip["max_speed"],
            "avg_speed": round(trip["distance_m"] / duration * 3.6, 2) if duration > 0 else None,
            "energy_kwh": self._energy(trip),
            "soc_start": trip["soc_start"],
            "soc_end": self.s["soc"],
            "open": open_,
        }

    def open_trip(self) -> dict[str, Any] | None:
        """The trip under way (once it counts), ending so far at the latest sample."""
        trip = self.s["trip"]
        if trip is None or not trip["confirmed"]:
            return None
        return self._row(trip, self.s["last_ts"], self.s["lat"], self.s["lon"], open_=True)

    def open_stop(self) -> dict[str, Any] | None:
        stop = self.s["stop"]
        return None if stop is None else {**stop, "end_ts": None, "open": True}

    @property
    def moving(self) -> bool:
        return self.s["trip"] is not None
