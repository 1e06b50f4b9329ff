"""Queue and capacity of swap stations over a day, as a discrete-event simulation (simpy).

Each station has one swap bay (a ``simpy.Resource``), ``chargers`` chargers sharing the grid
limit (a Resource), and a store of ready packs (a ``simpy.Container``). A vehicle arrives, waits
for the bay, then for a ready pack, the robot swaps in ``mechanical_s``; its old pack waits for a
charger and charges from its SoC to the ready SoC, then joins the ready store. Arrivals are a
non-homogeneous Poisson process following the day's demand profile (data file). The result per
station: swaps, waiting times, the queue over the day, and the packs needed for (almost) no
vehicle to wait for a pack. ``saturated`` measures a station's ceiling (a vehicle always waiting),
which is what NIO's published Gen4 figure (480 swaps a day) is compared with.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import simpy
import yaml

from anycar.swap.policy import DATA, Layout, LayoutError, load_layout

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Demand:
    hourly: list[float]  # normalised weights, sum 1
    soc_in: tuple[float, float]


def load_demand(name_or_path: str = "delivery-day") -> Demand:
    path = (
        Path(name_or_path)
        if name_or_path.endswith((".yaml", ".yml"))
        else DATA / "demand" / f"{name_or_path}.yaml"
    )
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise LayoutError(f"{path}: {exc}".splitlines()[0]) from None
    hourly = doc.get("hourly") if isinstance(doc, dict) else None
    if (
        not isinstance(hourly, list)
        or len(hourly) != 24
        or any(not isinstance(w, int | float) or w < 0 for w in hourly)
        or not sum(hourly)
    ):
        raise LayoutError(f"{path}: hourly: 24 weights >= 0, not all zero")
    lo, hi = doc.get("soc_in", [15.0, 25.0])
    return Demand([w / sum(hourly) for w in hourly], (float(lo), float(hi)))


@dataclass
class StationResult:
    name: str
    layout: str
    swaps: int = 0
    arrivals: int = 0
    waits: list[float] = field(default_factory=list)  # seconds from arrival to the robot starting
    pack_waits: int = 0  # vehicles that found no ready pack at the bay
    queue: list[tuple[float, int]] = field(default_factory=list)  # (t, vehicles waiting) at every change
    packs: int = 0
    packs_needed: int | None = None

    def wait_stats(self) -> dict[str, float]:
        if not self.waits:
            return {"mean": 0.0, "p95": 0.0, "max": 0.0}
        ordered = sorted(self.waits)
        return {
            "mean": sum(ordered) / len(ordered),
            "p95": ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)],
            "max": ordered[-1],
        }

    def max_queue(self) -> int:
        return max((q for _, q in self.queue), default=0)


class _Station:
    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        layout: Layout,
        packs: int,
        ready_soc: float,
        rng: random.Random,
    ) -> None:
        self.env, self.layout, self.ready_soc, self.rng = env, layout, ready_soc, rng
        self.bay = simpy.Resource(env, capacity=1)
        self.chargers = simpy.Resource(env, capacity=layout.chargers)
        self.ready = simpy.Container(env, init=packs, capacity=max(packs, 1) + 10_000)
        self.power_kw = min(layout.charger_kw, layout.grid_limit_kw / layout.chargers)
        self.result = StationResult(name, layout.name, packs=packs)
        self.waiting = 0

    def _queue(self, delta: int) -> None:
        self.waiting += delta
        queue = self.result.queue
        if queue and queue[-1][0] == self.env.now:  # served at once: no wait to show
            queue[-1] = (self.env.now, self.waiting)
        else:
            queue.append((self.env.now, self.waiting))

    def vehicle(self, soc_in: float, *, reserved: bool = False) -> Any:
        """One vehicle's swap; ``reserved``: its pack was set aside before (ReserveNow), so it only
        waits for the bay."""
        arrived = self.env.now
        self.result.arrivals += 1
        self._queue(+1)
        with self.bay.request() as bay:
            yield bay
            if not reserved:
                if self.ready.level < 1:
                    self.result.pack_waits += 1
                yield self.ready.get(1)
            self._queue(-1)
            self.result.waits.append(self.env.now - arrived)
            yield self.env.timeout(self.layout.mechanical_s)
        self.result.swaps += 1
        self.env.process(self.charge(soc_in))

    def charge(self, soc: float) -> Any:
        with self.chargers.request() as charger:
            yield charger
            hours = max(0.0, self.ready_soc - soc) / 100 * self.layout.capacity_kwh / self.power_kw
            yield self.env.timeout(hours * 3600)
        yield self.ready.put(1)


Station = _Station  # the station model, for other simulations (the swap-planning benchmark)


def _arrivals(
    env: simpy.Environment, station: _Station, per_day: float, demand: Demand, rng: random.Random
) -> Any:
    """Non-homogeneous Poisson arrivals by thinning against the busiest hour's rate."""
    peak = max(demand.hourly) * per_day / 3600.0
    if peak <= 0:
        return
    while True:
        yield env.timeout(rng.expovariate(peak))
        if env.now >= DAY:
            return
        hour = int(env.now // 3600) % 24
        if rng.random() < demand.hourly[hour] * per_day / 3600.0 / peak:
            env.process(station.vehicle(rng.uniform(*demand.soc_in)))


def _saturate(env: simpy.Environment, station: _Station, demand: Demand, rng: random.Random) -> Any:
    """Keep one vehicle always waiting at the bay: the station's own ceiling."""
    while env.now < DAY:
        yield env.process(station.vehicle(rng.uniform(*demand.soc_in)))


def run_station(
    layout: Layout, *, per_day: float, demand: Demand, packs: int | None = None, ready_soc: float = 95.0,
    seed: int = 1, saturated: bool = False, name: str = "station",
) -> StationResult:  # fmt: skip
    """One station over one day (vehicles still queued at midnight are served, their waits counted)."""
    rng = random.Random(seed)  # nosec B311 # a simulation's reproducible randomness, not a secret
    env = simpy.Environment()
    count = layout.slots - layout.empty_slots if packs is None else packs
    station = _Station(env, name, layout, count, ready_soc, rng)
    env.process(
        _saturate(env, station, demand, rng) if saturated else _arrivals(env, station, per_day, demand, rng)
    )
    env.run(until=DAY if saturated else DAY * 1.5)
    return station.result


def packs_needed(
    layout: Layout,
    *,
    per_day: float,
    demand: Demand,
    seed: int = 1,
    ready_soc: float = 95.0,
    limit: int = 200,
) -> int | None:
    """The fewest packs with which no vehicle of the day waits for a ready pack (same arrivals)."""
    for packs in range(1, limit + 1):
        if (
            run_station(
                layout, per_day=per_day, demand=demand, packs=packs, seed=seed, ready_soc=ready_soc
            ).pack_waits
            == 0
        ):
            return packs
    return None


def simulate(
    *, stations: int, layout: str, vehicles: int, swaps_per_vehicle: float, demand: str = "delivery-day", seed: int = 1,
) -> list[StationResult]:  # fmt: skip
    """N identical stations sharing a fleet's swaps evenly."""
    shape, profile = load_layout(layout), load_demand(demand)
    per_day = vehicles * swaps_per_vehicle / stations
    results = []
    for i in range(stations):
        result = run_station(
            shape, per_day=per_day, demand=profile, seed=seed + i, name=f"{shape.name}-{i + 1}"
        )
        result.packs_needed = packs_needed(shape, per_day=per_day, demand=profile, seed=seed + i)
        results.append(result)
    return results


def nio_comparison(layout: str = "nio-gen4", demand: str = "delivery-day", seed: int = 1) -> dict[str, Any]:
    """The simulated station's ceiling against NIO's published Gen4 figures."""
    shape = load_layout(layout)
    published = yaml.safe_load((DATA / "nio_gen4.yaml").read_text(encoding="utf-8"))
    ceiling = run_station(
        shape, per_day=0, demand=load_demand(demand), seed=seed, saturated=True, name=layout
    )
    return {
        "layout": shape.name,
        "batteries": shape.slots - shape.empty_slots + 1,
        "swap_s": shape.mechanical_s,
        "simulated_swaps_per_day": ceiling.swaps,
        "mechanical_ceiling_per_day": int(DAY // shape.mechanical_s),
        "published": published,
    }


def queue_chart(results: list[StationResult], path: Path) -> Path:
    """The queue at each station over the day (PNG or SVG by the file's suffix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.5), dpi=100)
    for result in results:
        xs = [0.0] + [t / 3600 for t, _ in result.queue]
        ys = [0] + [q for _, q in result.queue]
        ax.step(xs, ys, where="post", label=result.name, linewidth=1.2)
    ax.set_xlim(0, 24)
    ax.set_xlabel("hour of the day (UTC)")
    ax.set_ylabel("vehicles waiting")
    ax.set_title("swap-station queue over the day")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    return path
