"""A drive as real wire messages: telemetry batches (and events) a hub would send, built with
anycar.wire.messages and passed through encode/decode, for the fleet domain's tests."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from anycar.wire import Origin, decode, encode, messages

LAT, LON = "Vehicle.CurrentLocation.Latitude", "Vehicle.CurrentLocation.Longitude"
SPEED, SOC = "Vehicle.Speed", "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
IGNITION = "Vehicle.LowVoltageSystemState"
CARGO = "Vehicle.Accessories.Cooler1.Temperature"
DOOR = "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen"
T0 = 1_796_083_200.0  # 2026-12-01T00:00:00Z
M_PER_DEG = 111_195.0


@dataclass
class Drive:
    """Samples every ``step_s`` seconds; a leg is (seconds, km/h, extra signals)."""

    vehicle: str
    boot: str = "00000000000000aa"
    t: float = T0
    lat: float = 30.0
    lon: float = 120.0
    soc: float = 80.0
    kwh_per_pct: float = 0.15  # a 15 kWh pack
    wh_per_km: float = 100.0
    step_s: float = 10.0
    seq: int = 0
    rows: list[tuple[float, dict[str, Any]]] = field(default_factory=list)

    def leg(self, seconds: float, kmh: float, ignition: str = "ON", **extra: Any) -> Drive:
        for _ in range(int(seconds // self.step_s)):
            metres = kmh / 3.6 * self.step_s
            self.lat += metres / M_PER_DEG
            self.soc -= metres / 1000 * self.wh_per_km / 1000 / self.kwh_per_pct
            values = {
                LAT: round(self.lat, 7),
                LON: self.lon,
                SPEED: float(kmh),
                SOC: round(self.soc, 4),
                IGNITION: ignition,
            }
            values.update(extra)
            self.rows.append((self.t, values))
            self.t += self.step_s
        return self

    def batches(self, per_batch: int = 6) -> list[dict[str, Any]]:
        """The telemetry messages, ``per_batch`` sample times each, with seq 1, 2, 3 ..."""
        origin = Origin(self.vehicle, self.boot)
        out = []
        for i in range(0, len(self.rows), per_batch):
            chunk = self.rows[i : i + per_batch]
            self.seq += 1
            samples = [(path, t, v) for t, values in chunk for path, v in values.items()]
            doc = messages.telemetry(
                origin, self.seq, samples, campaign="default", version=1, prio=5, ts=chunk[-1][0]
            )
            out.append(decode(encode(doc)))
        return out

    def events(self, items: Iterable[dict[str, Any]]) -> dict[str, Any]:
        self.seq += 1
        doc = messages.events(Origin(self.vehicle, self.boot), self.seq, list(items), prio=1, ts=self.t)
        return decode(encode(doc))
