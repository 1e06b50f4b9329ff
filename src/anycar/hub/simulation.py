"""The simulator as a hub component: it drives the car and puts its frames on CAN.

Each step's VSS values are encoded into the frames the car's ECUs would broadcast (the profile's
``dbc2vss`` mapping inverted, ``anycar.brands.ecus``), sent on python-can virtual buses, one per
bus of the profile, and read back by the vehicle component's CAN adapter: the demo runs the same
path from CAN through the mapping to the broker that a real car does. Actuations go the other
way: the adapter's ``vss2dbc`` request frames reach simulated ECUs (``anycar.hub.ecu_sim``) that
apply them, and the next status frames carry the new value back.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import can

from anycar.brands.ecus import EcuEncoder
from anycar.broker import Provider
from anycar.clock import SimClock
from anycar.hub.ecu_sim import SimulatedEcus
from anycar.hub.vehicle import VehicleComponent
from anycar.sim.runner import CanFrameSink, SimulationRunner
from anycar.sim.scenario import load_scenario
from anycar.sim.simulator import SimStep, Simulator
from anycar.supervisor import Supervised

GNSS_PATHS = tuple(
    "Vehicle.CurrentLocation." + name
    for name in ("Timestamp", "Latitude", "Longitude", "Heading", "Altitude")
)

if TYPE_CHECKING:
    from anycar.hub.hub import Hub

_instances = itertools.count()


class ChannelRouter:
    """A ``send`` that puts each frame on the virtual bus of the profile bus it belongs to."""

    def __init__(self, buses: dict[str, can.BusABC], channel_to_bus: dict[str, str]) -> None:
        self.buses = buses
        self.channel_to_bus = channel_to_bus

    def send(self, frame: can.Message) -> None:
        name = self.channel_to_bus.get(str(frame.channel), str(frame.channel))
        bus = self.buses.get(name)
        if bus is None:
            raise can.CanOperationError(f"frame for unknown bus {frame.channel!r}")
        bus.send(frame)


class SimulationComponent:
    """Runs a ``Simulator`` for the vehicle component's profile at ``speedup`` times real time."""

    name = "simulator"

    def __init__(
        self,
        vehicle: VehicleComponent,
        *,
        seed: int = 0,
        speedup: float = 1.0,
        route: str | None = None,
        cycle: str | None = None,
        scenario: str | None = None,
    ) -> None:
        self.vehicle = vehicle
        # route: a shipped route name or a GeoJSON file (the fleet demo's come from anycar.roads)
        # scenario: faults over the drive (anycar.sim.scenario), e.g. a weak 12 V battery
        self.sim = Simulator.for_profile(
            vehicle.profile.id,
            seed=seed,
            route=route,
            cycle=cycle,
            scenario=load_scenario(scenario) if scenario else None,
        )
        self.runner = SimulationRunner(self.sim, speedup=speedup)
        # the clock this car lives on: its start time plus the seconds it has stepped
        self.clock = SimClock(
            self.sim.start_time.timestamp(),
            lambda: self.sim.t,
            self.runner.speedup,
            self.sim.start_time.tzinfo,
        )
        self.sink: CanFrameSink | None = None
        self._tx: dict[str, can.BusABC] = {}
        self._rx: dict[str, can.BusABC] = {}
        self._task: Supervised | None = None
        self._readers: list[Any] = []
        self.ecus: SimulatedEcus | None = None
        self.gnss: Provider | None = None
        self._gnss_paths: list[str] = []

    async def start(self, hub: Hub) -> None:
        profile = self.vehicle.profile
        prefix = f"anycar-sim-{next(_instances)}"
        for bus in profile.buses:
            channel = f"{prefix}-{bus.name}"
            self._tx[bus.name] = can.Bus(interface="virtual", channel=channel)
            self._rx[bus.name] = can.Bus(interface="virtual", channel=channel)
            reader = self.vehicle.attach_bus(bus.name, self._rx[bus.name])
            self._readers.append(reader)
            await reader.start(hub.supervisor)
        encoder = EcuEncoder(profile)  # what the car's ECUs broadcast, counters and checksums too
        self.ecus = SimulatedEcus(profile, self.sim, hub.broker.catalog, encoder)
        await self.ecus.start(self._tx, hub.supervisor)  # they read the requests the hub sends
        self.vehicle.send_via(self._rx)
        router = ChannelRouter(self._tx, {b.channel or b.name: b.name for b in profile.buses})
        self.sink = CanFrameSink(self.ecus.encode, router, include=encoder.paths)
        self.runner.add_sink(self.sink)
        # The GNSS receiver is no CAN node: what of its fix the mapping does not carry (always the
        # timestamp, the clock people read) comes straight from it.
        gnss = [p for p in GNSS_PATHS if p not in encoder.targets and hub.broker.provider_of(p) is None]
        if gnss:
            self.gnss = hub.broker.register_provider("gnss", gnss)
            self._gnss_paths = gnss
            self.runner.add_sink(self._publish_gnss)
        self._task = hub.supervisor.spawn("simulator", self.runner.run)

    def _publish_gnss(self, step: SimStep) -> None:
        if self.gnss is None or self.gnss.closed:
            return
        for path in self._gnss_paths:
            if path in step.values:
                self.gnss.publish(path, step.values[path])

    async def stop(self) -> None:
        if self.gnss is not None:
            self.gnss.close()
            self.gnss = None
        self.runner.stop()
        if self._task is not None:
            await self._task.stop(cancel=False)
            self._task = None
        if self.ecus is not None:
            await self.ecus.stop()
        for reader in self._readers:  # its notifier thread must not read a bus shut below
            await reader.stop()
        self._readers = []
        for bus in (*self._tx.values(), *self._rx.values()):
            bus.shutdown()
        self._tx, self._rx = {}, {}
