"""The vehicle as a hub component: a brand profile's CAN adapter and where its frames come from.

``--can`` names the source: a log file (``.log``, ``.asc``, ``.blf``, ``.trc``) replayed at its
recorded pace, or a live python-can bus ``INTERFACE:CHANNEL[,CHANNEL...]`` (one channel per bus
of the profile, in the profile's order), e.g. ``socketcan:can0`` or ``virtual:car``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import can

from anycar.brands import BrandProfile, adapter_for
from anycar.can.adapter import CanAdapter
from anycar.can.sources import BusSource, bus_sender, open_bus, replay_async
from anycar.errors import ConfigError
from anycar.supervisor import Supervised, Supervisor

if TYPE_CHECKING:
    from anycar.hub.hub import Hub

log = logging.getLogger(__name__)
LOG_SUFFIXES = (".log", ".asc", ".blf", ".trc")


def parse_can_source(source: str, profile: BrandProfile) -> tuple[str, list[str]] | Path:
    """A log path, or (interface, one channel per profile bus); refuses what is neither."""
    if source.lower().endswith(LOG_SUFFIXES):
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"--can {source}: no such CAN log file")
        return path
    interface, sep, channels = source.partition(":")
    if not sep or not interface or not channels:
        raise ConfigError(
            f"--can {source!r}: expected a log file ({', '.join(LOG_SUFFIXES)}) or INTERFACE:CHANNEL "
            "such as socketcan:can0"
        )
    names = [c for c in channels.split(",") if c]
    if len(names) != len(profile.buses):
        raise ConfigError(
            f"--can {source!r}: profile {profile.id} has {len(profile.buses)} bus(es) "
            f"({', '.join(b.name for b in profile.buses)}); give one channel for each"
        )
    return interface, names


class VehicleComponent:
    """Claims the profile's mapped signals and keeps them fed from CAN."""

    name = "vehicle"

    def __init__(self, profile: BrandProfile, can_source: str | None = None) -> None:
        self.profile = profile
        self.can_source = can_source
        self.adapter: CanAdapter | None = None
        self.buses: dict[str, can.BusABC] = {}
        self._sources: list[BusSource] = []
        self._replay: Supervised | None = None
        self._supervisor: Supervisor | None = None

    async def start(self, hub: Hub) -> None:
        source = parse_can_source(self.can_source, self.profile) if self.can_source else None
        if isinstance(source, tuple):
            interface, channels = source
            for spec, channel in zip(self.profile.buses, channels, strict=True):
                self.buses[spec.name] = open_bus(interface, channel)
        self._supervisor = hub.supervisor
        send = bus_sender(self.buses) if self.buses else None
        self.adapter = adapter_for(self.profile, hub.broker, send=send)
        for problem in self.adapter.problems:  # rules that cannot be used: the others run
            log.warning("%s", problem)
        for bus_name, live in self.buses.items():
            reader = BusSource(self.adapter, live, bus_name=bus_name)
            await reader.start(hub.supervisor)
            self._sources.append(reader)
        if isinstance(source, Path):
            replay = source  # a replay that fails is not started again (it would repeat frames)
            self._replay = hub.supervisor.spawn("can-replay", lambda: self._run_replay(replay), restart=False)

    async def _run_replay(self, path: Path) -> None:
        assert self.adapter is not None  # nosec B101 # narrows an Optional for mypy; an invariant of this object, not a check of outside input
        stats = await replay_async(self.adapter, path)
        log.info("CAN log %s replayed: %s", path, stats)

    def send_via(self, buses: dict[str, can.BusABC]) -> None:
        """Send actuation requests on these buses (the simulator's) when no real bus is open."""
        if self.adapter is not None and self.adapter.send is None:
            self.adapter.send = bus_sender(buses)

    def attach_bus(self, bus_name: str, bus: can.BusABC) -> BusSource:
        """Read one more bus (the simulator's) into the adapter; the caller starts the source."""
        assert self.adapter is not None  # nosec B101 # narrows an Optional for mypy; an invariant of this object, not a check of outside input
        source = BusSource(self.adapter, bus, bus_name=bus_name)
        self._sources.append(source)
        return source

    async def stop(self) -> None:
        if self._replay is not None:
            await self._replay.stop()
            self._replay = None
        for reader in self._sources:
            await reader.stop()
        self._sources = []
        for bus in self.buses.values():
            bus.shutdown()
        self.buses = {}
        if self.adapter is not None:
            self.adapter.close()
