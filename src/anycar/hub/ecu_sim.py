"""The car's ECUs in the demo: they read the requests the hub's CAN adapter puts on the virtual
bus and apply them, so an actuation makes the real round trip (VSS -> ``vss2dbc`` -> frame on
the bus -> ECU -> status frame -> ``dbc2vss`` -> VSS).

A request for one of the simulator's inputs (HVAC setpoint, fan, air conditioning, light switch)
changes the simulated car, whose next status frames report it; any other request the profile
can report back (a door lock, the hazard lights, ...) is held by the ECU and broadcast as its
status from then on, as a body controller would.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Mapping
from typing import Any

import can

from anycar.brands import BrandProfile
from anycar.brands.ecus import EcuEncoder, RequestReader
from anycar.model import Catalog
from anycar.sim.simulator import INPUTS, Simulator
from anycar.supervisor import Supervised, Supervisor

log = logging.getLogger(__name__)


class SimulatedEcus:
    """Reads request frames from the car's side of the virtual buses and applies them."""

    def __init__(self, profile: BrandProfile, sim: Simulator, catalog: Catalog, encoder: EcuEncoder) -> None:
        self.sim = sim
        self.encoder = encoder
        self.requests = RequestReader(profile, catalog)
        self.held: dict[str, Any] = {}
        self.applied = 0
        self.refused: list[str] = []
        self._tasks: list[Supervised] = []
        self._notifiers: list[can.Notifier] = []

    def encode(self, values: Mapping[str, Any]) -> list[can.Message]:
        """The status frames for a simulator step, with what the ECUs hold on top."""
        return self.encoder.encode({**values, **self.held} if self.held else values)

    def apply(self, values: Mapping[str, Any]) -> None:
        for path, value in values.items():
            if path in INPUTS:
                try:
                    self.sim.apply(path, value)
                except ValueError as exc:
                    self.refused.append(f"{path}: {exc}")
                    del self.refused[:-20]
                    log.info("simulated ECU refused %s = %r: %s", path, value, exc)
                    continue
            elif path in self.encoder.targets:
                self.held[path] = value
            else:
                log.info("simulated ECU has no status to report %s back; request ignored", path)
                continue
            self.applied += 1

    async def start(self, buses: Mapping[str, can.BusABC], supervisor: Supervisor) -> None:
        loop = asyncio.get_running_loop()
        for name, bus in buses.items():
            reader = can.AsyncBufferedReader()
            self._notifiers.append(can.Notifier(bus, [reader], timeout=0.1, loop=loop))  # quick stop
            self._tasks.append(
                supervisor.spawn(f"simulated-ecus-{name}", functools.partial(self._listen, name, reader))
            )

    async def _listen(self, bus: str, reader: can.AsyncBufferedReader) -> None:
        while True:
            frame = await reader.get_message()
            try:
                values = self.requests.read(frame, bus)
                if values:
                    self.apply(values)
            except Exception:  # one odd frame must not stop the car's ECUs
                log.exception("simulated ECU failed on a frame on bus %s", bus)

    async def stop(self) -> None:
        for notifier in self._notifiers:
            notifier.stop()
        self._notifiers = []
        for task in self._tasks:
            await task.stop()
        self._tasks = []
