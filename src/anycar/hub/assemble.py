"""How a hub is put together from its parts: the one place that knows every room."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from anycar.brands import BrandProfile, load_profile
from anycar.errors import ConfigError
from anycar.hub.cabin import CabinComponent
from anycar.hub.config import HubConfig
from anycar.hub.dashboard import DashboardComponent
from anycar.hub.hub import Hub
from anycar.hub.simulation import SimulationComponent
from anycar.hub.vehicle import VehicleComponent
from anycar.uplink import UplinkComponent, UplinkConfig


@dataclass
class HubParts:
    """What to plug in. ``brand`` is needed by everything below it."""

    brand: str | None = None
    can: str | None = None
    db_path: Path | None = None
    accessory_port: int = 0
    virtual_fleet: bool = False
    simulate: bool = False
    seed: int = 0
    speedup: float = 1.0
    dashboard: bool = True
    #: a profile already built (``--profile DIR``, ``--dbc/--mapping``); wins over ``brand``
    profile: BrandProfile | None = None
    automations: list[Path] | None = None  # definition files/folders (anycar.automations); None: off
    uplink: UplinkConfig | None = None  # MQTT to the fleet; after the cabin, whose policy it uses
    route: str | None = None  # the simulator's route: a shipped name or a GeoJSON file; None: the profile's
    cycle: str | None = None  # the simulator's drive cycle (wltc3, delivery); None: the profile's
    scenario: str | None = None  # faults over the simulated drive (anycar.sim.scenario); None: none


def build_hub(config: HubConfig, parts: HubParts) -> Hub:
    """A hub with the vehicle (CAN), the simulator, the cabin (accessories, policy) and the dashboard."""
    if parts.brand is None and parts.profile is None and (parts.can or parts.simulate or parts.virtual_fleet):
        raise ConfigError("--can, simulation and accessories need --brand PROFILE (see `anycar brand list`)")
    if parts.can and parts.simulate:
        raise ConfigError("choose one source of CAN frames: --can or the simulator")
    hub = Hub(config)
    uplink = parts.uplink or config.uplink
    if parts.brand is None and parts.profile is None:
        _add_automations(hub, parts)
        if parts.dashboard:
            hub.add_component(DashboardComponent())
        if uplink is not None:
            hub.add_component(UplinkComponent(uplink))
        return hub
    profile = parts.profile if parts.profile is not None else load_profile(parts.brand or "")
    vehicle = VehicleComponent(profile, parts.can)
    hub.add_component(vehicle)
    simulation: SimulationComponent | None = None
    if parts.simulate:
        simulation = SimulationComponent(
            vehicle,
            seed=parts.seed,
            speedup=parts.speedup,
            route=parts.route,
            cycle=parts.cycle,
            scenario=parts.scenario,
        )
        hub.add_component(simulation)
        hub.clock = simulation.clock  # a simulated car's "after dark" and "for 10 s" are its own
    if parts.db_path is not None:
        cabin = CabinComponent(
            profile, parts.db_path, accessory_port=parts.accessory_port, virtual_fleet=parts.virtual_fleet
        )
        hub.add_component(cabin)
        if simulation is not None:
            simulation.sim.accessory_load = cabin.accessory_draw_w  # the rail carries what is fitted
    _add_automations(hub, parts)
    if parts.dashboard:
        hub.add_component(DashboardComponent())
    if uplink is not None:
        hub.add_component(UplinkComponent(uplink))
    return hub


def _add_automations(hub: Hub, parts: HubParts) -> None:
    """After the cabin (its policy and accessories), before the dashboard."""
    if parts.automations is not None:
        from anycar.automations.component import AutomationsComponent

        hub.add_component(AutomationsComponent(parts.automations, db_path=parts.db_path, brand=parts.brand))
