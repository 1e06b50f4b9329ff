"""Helpers for the automation tests: a broker with a fake car that accepts actuations by
publishing the new value (as a real provider does), and definitions written to files."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from anycar.automations.engine import Engine
from anycar.broker import ActuationRejected, ActuationRequest, SignalBroker

CAR_SIGNALS = [
    "Vehicle.Speed",
    "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen",
    "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked",
    "Vehicle.Body.Trunk.Rear.IsOpen",
    "Vehicle.LowVoltageBattery.CurrentVoltage",
    "Vehicle.CurrentLocation.Latitude",
    "Vehicle.CurrentLocation.Longitude",
    "Vehicle.Cabin.Light.Spotlight.Row1.DriverSide.IsLightOn",
    "Vehicle.Cabin.Light.Spotlight.Row1.DriverSide.Intensity",
    "Vehicle.Cabin.Light.Spotlight.Row1.DriverSide.Color",
    "Vehicle.Cabin.Infotainment.Media.Volume",
    "Vehicle.Cabin.Door.Row1.PassengerSide.IsOpen",
]
LIGHT = "Vehicle.Cabin.Light.Spotlight.Row1.DriverSide.IsLightOn"
INTENSITY = "Vehicle.Cabin.Light.Spotlight.Row1.DriverSide.Intensity"
DOOR = "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen"
VOLTAGE = "Vehicle.LowVoltageBattery.CurrentVoltage"


class FakeCar:
    """A provider for the car's signals whose actuators take what they are sent (and say so)."""

    def __init__(self, broker: SignalBroker, signals: list[str] | None = None) -> None:
        self.broker = broker
        self.requests: list[ActuationRequest] = []
        self.refuse: dict[str, str] = {}
        self.hang: set[str] = set()
        self.on_request: Callable[[ActuationRequest], None] | None = None
        self.provider = broker.register_provider("fake-car", signals or CAR_SIGNALS, on_actuate=self._actuate)

    async def _actuate(self, req: ActuationRequest) -> None:
        self.requests.append(req)
        if self.on_request is not None:
            self.on_request(req)
        if req.path in self.refuse:
            raise ActuationRejected(self.refuse[req.path])
        if req.path in self.hang:
            await asyncio.sleep(3600)
        self.provider.publish(req.path, req.value)

    def set(self, path: str, value: Any) -> None:
        self.provider.publish(path, value)

    def sent(self, path: str) -> list[Any]:
        return [r.value for r in self.requests if r.path == path]


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


async def until(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``check`` until it is truthy (generous timeout: the machine is shared)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def last_trace(engine: Engine, automation: str) -> dict[str, Any] | None:
    traces = engine.traces(automation, 1)
    return traces[0] if traces else None
