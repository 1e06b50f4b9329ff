"""The demo fleet's plan: which vehicles, their identities and their rounds on real streets.

Read from ``data/fleet.yaml``. Stops are road nodes of the group's profile drawn with the seed
(a PICKMAN's round starts and ends at the depot); each round is routed on ``anycar.roads`` and
written as a closed GeoJSON LineString that the vehicle's simulator follows. This module knows
neither the hub nor the fleet cloud: it only plans.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from anycar.errors import ConfigError
from anycar.roads import RoadNetwork, load_network

WHERE = "anycar/fleetdemo/data/fleet.yaml"
_VIN_CHARS = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"  # ISO 3779: no I, O, Q


@dataclass(frozen=True, slots=True)
class Group:
    brand: str
    count: int
    roads: str
    cycle: str
    stops: int
    vin_prefix: str


@dataclass(frozen=True, slots=True)
class VehiclePlan:
    vin: str
    brand: str
    roads: str
    cycle: str
    seed: int
    route_file: str
    round_m: float
    round_s: float
    stops: list[list[float]]  # [lat, lon] of each stop, the depot first for PICKMANs
    planned: bool = False  # the stops are a dispatcher's plan of real orders, not drawn at random


@dataclass(frozen=True, slots=True)
class FleetSpec:
    network: str
    tenant: str
    depot: tuple[float, float]
    depot_name: str
    groups: list[Group]


def load_spec(text: str | None = None, where: str = WHERE) -> FleetSpec:
    """The fleet from YAML text (default: the shipped file); bad fields name themselves."""
    if text is None:
        text = resources.files("anycar.fleetdemo").joinpath("data/fleet.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping")
    depot = data.get("depot") or {}
    try:
        lat, lon = float(depot["lat"]), float(depot["lon"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{where}: depot: needs lat and lon numbers") from None
    groups = []
    for i, g in enumerate(data.get("groups") or []):
        at = f"{where}: groups[{i}]"
        if not isinstance(g, dict):
            raise ConfigError(f"{at}: expected a mapping")
        try:
            group = Group(
                brand=str(g["brand"]),
                count=int(g.get("count", 1)),
                roads=str(g.get("roads", "car")),
                cycle=str(g.get("cycle", "delivery")),
                stops=int(g.get("stops", 4)),
                vin_prefix=str(g["vin_prefix"]).upper(),
            )
        except KeyError as exc:
            raise ConfigError(f"{at}: missing {exc.args[0]}") from None
        except (TypeError, ValueError):
            raise ConfigError(f"{at}: count and stops must be whole numbers") from None
        if not 0 < group.count <= 100 or not 1 <= group.stops <= 50:
            raise ConfigError(f"{at}: count 1..100 and stops 1..50")
        if len(group.vin_prefix) != 6 or any(c not in _VIN_CHARS for c in group.vin_prefix):
            raise ConfigError(f"{at}.vin_prefix: 6 of 0-9 A-Z without I, O, Q")
        groups.append(group)
    if not groups:
        raise ConfigError(f"{where}: groups: at least one")
    return FleetSpec(
        network=str(data.get("network") or "helsinki_centre"),
        tenant=str(data.get("tenant") or "demo"),
        depot=(lat, lon),
        depot_name=str(depot.get("name") or "depot"),
        groups=groups,
    )


def fleet_members(spec: FleetSpec, vehicles: int | None = None) -> list[tuple[str, Group]]:
    """(VIN, group) of every vehicle, in the order the demo starts them."""
    order = _round_robin(spec.groups)
    if vehicles is not None:
        if vehicles < 1:
            raise ConfigError("--vehicles: at least 1")
        order = order[:vehicles]
    serial: dict[str, int] = {}
    out = []
    for group in order:
        serial[group.vin_prefix] = serial.get(group.vin_prefix, 0) + 1
        out.append((f"{group.vin_prefix}{serial[group.vin_prefix]:011d}", group))
    return out


def plan_fleet(
    spec: FleetSpec,
    folder: Path,
    *,
    seed: int = 0,
    vehicles: int | None = None,
    given: dict[str, list[tuple[float, float]]] | None = None,
    park_s: dict[str, dict[int, float]] | None = None,
) -> list[VehiclePlan]:
    """One plan per vehicle, its round written to ``folder/VIN.geojson``.

    ``vehicles`` caps the total (taken round-robin over the groups, so a small fleet is still mixed).
    ``given`` are the customer stops a dispatcher's plan gave a vehicle, in order (its round then
    leaves from the depot and comes back); vehicles without are given stops drawn with the seed.
    ``park_s``: per vehicle, the stops (index in ``given``) where it parks this long (a swap stop).
    """
    net = load_network(spec.network)
    _, depot_snap = net.snap([spec.depot], "delivery")
    if float(depot_snap[0]) > net.rules.snap_max_m:
        raise ConfigError(f"{WHERE}: depot is {float(depot_snap[0]):.0f} m from the nearest road of the map")
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    plans: list[VehiclePlan] = []
    for vin, group in fleet_members(spec, vehicles):
        drawn = _stops(net, group, spec.depot, rng)  # drawn for every vehicle: the seed's fleet stays
        stops = [spec.depot, *given[vin]] if given and given.get(vin) else drawn
        tour = net.tour(stops, group.roads)
        path = folder / f"{vin}.geojson"
        feature = tour.geojson(vehicle=vin, brand=group.brand, roads=group.roads, closed=True)
        path.write_text(json.dumps(feature), "utf-8")
        cycle = group.cycle
        if cycle == "delivery" and all(m > 0 for m in tour.legs_m):
            # the simulator's delivery cycle with the round's own legs: it parks at each stop
            cycle_file = folder / f"{vin}.cycle.yaml"
            params: dict[str, Any] = {
                "name": f"round-{vin}",
                "description": f"{len(stops) - 1} stops routed on {spec.network}, then back",
                "leg_lengths_m": [round(m, 1) for m in tour.legs_m],
            }
            if park_s and park_s.get(vin):  # a swap stop: parked for the station's robot
                params["stop_park_s"] = {int(k): float(v) for k, v in park_s[vin].items()}
            cycle_file.write_text(yaml.safe_dump(params), "utf-8")
            cycle = str(cycle_file)
        plans.append(
            VehiclePlan(
                vin=vin,
                brand=group.brand,
                roads=group.roads,
                cycle=cycle,
                seed=seed * 1000 + len(plans),
                route_file=str(path),
                round_m=round(tour.meters, 1),
                round_s=round(tour.seconds, 1),
                stops=[[round(a, 6), round(b, 6)] for a, b in stops],
                planned=bool(given and given.get(vin)),
            )
        )
    return plans


def _round_robin(groups: list[Group]) -> list[Group]:
    out: list[Group] = []
    left = {id(g): g.count for g in groups}
    while any(left.values()):
        for g in groups:
            if left[id(g)]:
                out.append(g)
                left[id(g)] -= 1
    return out


def _stops(
    net: RoadNetwork, group: Group, depot: tuple[float, float], rng: np.random.Generator
) -> list[tuple[float, float]]:
    """A PICKMAN leaves from the depot; a car's errands start anywhere. Stops >= 150 m apart."""
    core = net.profile_graph(group.roads).core_nodes
    chosen: list[tuple[float, float]] = [depot] if group.brand == "kaiyun_pickman" else []
    wanted = group.stops + len(chosen)
    tries = 0
    while len(chosen) < wanted and tries < 10_000:
        tries += 1
        k = int(rng.choice(core))
        here = (float(net.node_lat[k]), float(net.node_lon[k]))
        if all(_far(here, c) for c in chosen):
            chosen.append(here)
    if len(chosen) < 2:
        raise ConfigError(f"{WHERE}: could not place {group.stops} stops for {group.brand}")
    return chosen


def _far(a: tuple[float, float], b: tuple[float, float], metres: float = 150.0) -> bool:
    from anycar.roads.geo import haversine_m

    return bool(haversine_m(a[0], a[1], b[0], b[1]) >= metres)


def plans_json(plans: list[VehiclePlan]) -> list[dict[str, Any]]:
    return [asdict(p) for p in plans]
