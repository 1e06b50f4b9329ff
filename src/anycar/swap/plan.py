"""A station's charging plan: which pack charges in which hour, within the grid limit and the
chargers it has, so that enough packs are ready for the reservations and the predicted swaps,
in the cheaper hours where a tariff is given.

Earliest deadline first: the packs nearest to ready are given the earliest deadlines (the k-th
pack the day needs must be ready by the hour the cumulative demand reaches k); each pack's energy
goes into the cheapest hours before its deadline that still have grid power and a free charger.
What cannot be ready in time is charged as early as possible and reported as ``late``. The plan
goes to the station as one TxDefaultProfile per slot (hourly limits in W).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from anycar.swap import tables as t


@dataclass(frozen=True, slots=True)
class SlotPack:
    evse: int
    serial: str
    soc: float
    capacity_kwh: float


@dataclass
class Plan:
    start: float  # epoch seconds, on the hour
    hours: int
    kw: dict[int, list[float]]  # per slot, per hour
    ready: list[int]  # packs ready at the end of each hour
    needed: list[int]  # packs the demand needs by the end of each hour
    cost: float
    late: list[str] = field(default_factory=list)  # packs that cannot be ready by their deadline

    def grid_kw(self) -> list[float]:
        return [round(sum(row[h] for row in self.kw.values()), 3) for h in range(self.hours)]

    def profiles(self) -> dict[int, dict[str, Any]]:
        """One OCPP TxDefaultProfile per slot (absolute, hourly periods, W)."""
        start = datetime.fromtimestamp(self.start, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        out = {}
        for evse, row in self.kw.items():
            periods = [{"startPeriod": h * 3600, "limit": round(kw * 1000, 1)} for h, kw in enumerate(row)]
            out[evse] = {
                "id": 100 + evse,
                "stackLevel": 0,
                "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": [
                    {
                        "id": 100 + evse,
                        "chargingRateUnit": "W",
                        "startSchedule": start,
                        "chargingSchedulePeriod": periods,
                    }
                ],
            }
        return out


def make_plan(
    packs: list[SlotPack],
    *,
    chargers: int,
    charger_kw: float,
    grid_limit_kw: float,
    demand: list[float],
    tariff: list[float] | None = None,
    start: float | None = None,
    ready_soc: float = 95.0,
) -> Plan:
    """Plan ``len(demand)`` hours; ``demand[h]`` = swaps expected in hour h (reservations in hour 0)."""
    hours = len(demand)
    start = math.floor((time.time() if start is None else start) / 3600) * 3600
    first_hour = datetime.fromtimestamp(start, UTC).hour
    price = [float(tariff[(first_hour + h) % 24]) if tariff else 0.0 for h in range(hours)]
    need = {p.serial: max(0.0, (ready_soc - p.soc) / 100 * p.capacity_kwh) for p in packs}
    ready_now = sum(1 for p in packs if need[p.serial] <= 1e-9)
    todo = sorted((p for p in packs if need[p.serial] > 1e-9), key=lambda p: need[p.serial])
    cumulative, deadlines = 0.0, list[int]()
    for h in range(hours):
        cumulative += demand[h]
        while ready_now + len(deadlines) < math.ceil(cumulative - 1e-9) and len(deadlines) < len(todo):
            deadlines.append(h)
    grid_left = [grid_limit_kw] * hours
    chargers_left = [chargers] * hours
    kw = {p.evse: [0.0] * hours for p in packs}
    done_at: dict[str, int] = {p.serial: -1 for p in packs if need[p.serial] <= 1e-9}
    late: list[str] = []
    for i, pack in enumerate(todo):
        deadline = deadlines[i] if i < len(deadlines) else hours - 1
        left = need[pack.serial]
        for window in (sorted(range(deadline + 1), key=lambda h: (price[h], h)), range(deadline + 1, hours)):
            for h in window:
                if left <= 1e-9:
                    break
                if chargers_left[h] < 1 or grid_left[h] <= 1e-9:
                    continue
                power = min(charger_kw, grid_left[h], left)  # kWh in one hour = kW
                kw[pack.evse][h] += power
                grid_left[h] -= power
                chargers_left[h] -= 1
                left -= power
                done_at[pack.serial] = max(done_at.get(pack.serial, -1), h)
        if left > 1e-9 or (done_at.get(pack.serial, hours) > deadline and i < len(deadlines)):
            late.append(pack.serial)
        if left > 1e-9:
            done_at[pack.serial] = hours  # not within the horizon
    ready = [sum(1 for s, h in done_at.items() if h <= hour) for hour in range(hours)]
    needed = [math.ceil(sum(demand[: h + 1]) - 1e-9) for h in range(hours)]
    cost = sum(kw[e][h] * price[h] for e in kw for h in range(hours))
    return Plan(
        start,
        hours,
        {e: [round(v, 4) for v in row] for e, row in kw.items()},
        ready,
        needed,
        round(cost, 4),
        late,
    )


def predicted_demand(engine: Engine, station: str, *, days: int = 7, now: float | None = None) -> list[float]:
    """Swaps per UTC hour at ``station``, averaged over the last ``days`` days, from hour now on;
    the active reservations are added to the first hour (they may arrive at any time)."""
    now = time.time() if now is None else now
    s, r = t.swaps.c, t.reservations.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(s.requested).where(
                s.station_id == station, s.state == "done", s.requested >= now - days * 86400
            )
        ).all()
        reserved = conn.execute(
            select(func.count()).where(r.station_id == station, r.status == "active", r.expires >= now)
        ).scalar()
    per_hour = [0.0] * 24
    for (ts,) in rows:
        per_hour[datetime.fromtimestamp(ts, UTC).hour] += 1 / days
    first = datetime.fromtimestamp(now, UTC).hour
    demand = [per_hour[(first + h) % 24] for h in range(24)]
    demand[0] += float(reserved or 0)
    return demand


def station_plan(
    engine: Engine,
    station: str,
    *,
    charger_kw: float,
    chargers: int,
    ready_soc: float,
    demand: list[float] | None = None,
) -> Plan:
    """The plan for ``station`` from the inventory (its slots' packs), its grid limit and tariff."""
    p = t.packs.c
    with engine.connect() as conn:
        row = conn.execute(select(t.stations).where(t.stations.c.id == station)).one()
        packs = conn.execute(
            select(p.evse_id, p.serial, p.soc, p.capacity_kwh).where(
                p.station_id == station, p.state.in_(("charging", "ready"))
            )
        ).all()
    return make_plan(
        [SlotPack(int(r.evse_id), r.serial, float(r.soc), float(r.capacity_kwh)) for r in packs],
        chargers=chargers, charger_kw=charger_kw, grid_limit_kw=float(row.grid_limit_kw),
        demand=demand if demand is not None else predicted_demand(engine, station), tariff=row.tariff, ready_soc=ready_soc,
    )  # fmt: skip
