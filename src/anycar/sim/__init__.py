"""The vehicle simulator: drive cycles, energy, position, body and cabin, emitted as VSS values.

``Simulator`` steps the vehicle; ``SimulationRunner`` runs it on asyncio and hands each step to
sinks (``SimulatorSink``): ``CanFrameSink`` puts it on a CAN bus through a brand profile's
encoder, ``BrokerSink`` publishes it straight into a broker. See docs/simulator.md.
"""

from anycar.sim.cycles import DriveCycle, Phase, delivery_cycle, load_cycle, wltc_class3b
from anycar.sim.route import Route, load_route
from anycar.sim.runner import BrokerSink, CanFrameSink, SimulationRunner, SimulatorSink
from anycar.sim.simulator import INPUTS, SimStep, Simulator
from anycar.sim.vehicle import VehicleParams, load_vehicle, vehicle_ids

__all__ = [
    "INPUTS",
    "BrokerSink",
    "CanFrameSink",
    "DriveCycle",
    "Phase",
    "Route",
    "SimStep",
    "SimulationRunner",
    "Simulator",
    "SimulatorSink",
    "VehicleParams",
    "delivery_cycle",
    "load_cycle",
    "load_route",
    "load_vehicle",
    "vehicle_ids",
    "wltc_class3b",
]
