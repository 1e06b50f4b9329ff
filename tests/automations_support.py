"""Helpers for the automation tests: a broker with a fake car that accepts actuations by
publishing the new value (as a real provider does), and definitions written to files."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from anycar.automations.component import examples_dir
from anycar.automations.engine import Engine
from anycar.broker import ActuationRejected, ActuationRequest, SignalBroker
from anycar.hub import Hub, HubConfig
from anycar.hub.assemble import HubParts, build_hub

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


async def ended_trace(engine: Engine, automation: str) -> dict[str, Any]:
    """The newest run's trace once it has ended: a run's last actuation is sent before its
    trace gets ``finished``, so a test that saw the actuation must still wait for the trace."""
    return await until(
        lambda: (t := last_trace(engine, automation)) and t["result"] != "running" and t,
        what=f"the end of {automation}'s run",
    )


@contextlib.contextmanager
def hub_in_thread(
    tmp_path: Path,
    *,
    brand: str = "xiaomi_su7",
    sources: list[Path] | None = None,
    dashboard: bool = False,
    token_key: Path | None = None,
    simulate: bool = False,
    speedup: float = 1.0,
    scenario: str | None = None,
) -> Iterator[Hub]:
    """A hub with the virtual accessories and the shipped examples on its own thread and loop
    (for tests whose driver - the CLI, Playwright - blocks the main thread); HTTP on a free port."""
    config = HubConfig(token_public_key=token_key)
    config.ports = {"grpc": None, "viss": 0 if dashboard else None, "http": 0, "accessories": 0}
    parts = HubParts(
        brand=brand,
        db_path=tmp_path / "hub.sqlite3",
        virtual_fleet=True,
        dashboard=dashboard,
        automations=sources if sources is not None else [examples_dir()],
        simulate=simulate,
        speedup=speedup,
        scenario=scenario,
    )
    hub = build_hub(config, parts)
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def run() -> None:
        box["loop"] = asyncio.get_running_loop()
        box["stop"] = stop = asyncio.Event()
        try:
            await hub.start()
        except BaseException as exc:
            box["error"] = exc
            ready.set()
            return
        ready.set()
        await stop.wait()
        await hub.stop()

    thread = threading.Thread(target=asyncio.run, args=(run(),), name="automations-hub", daemon=True)
    thread.start()
    assert ready.wait(60), "the hub did not start within 60 s"
    if "error" in box:
        raise box["error"]
    try:
        yield hub
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(30)


async def started_engine(tmp_path: Path, text: str, **kw: Any) -> tuple[Engine, FakeCar]:
    """An engine on a broker with the fake car, running the definitions in ``text``."""
    broker = SignalBroker(actuation_timeout=0.3)
    car = FakeCar(broker)
    engine = Engine(broker, **kw)
    problems = engine.load_paths([write(tmp_path, "a.yaml", text)])
    assert problems == [], [str(p) for p in problems]
    await engine.start()
    return engine, car
