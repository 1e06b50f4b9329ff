"""Where every pack is and what it has been through: the battery passport.

A pack is in a slot (``charging``, ``ready``, ``faulty``), in a vehicle (``in_vehicle``),
``retired`` (state of health under the policy's threshold: never handed out again), or
``unknown``. Every move is a row in ``swap_pack_history`` (station, slot, vehicle, SoC, SoH,
swap), so a pack's life across stations and vehicles is one index range. The station's report
is the physical truth and is always applied; what contradicts the inventory becomes an alert.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine

from anycar.swap import tables as t
from anycar.swap.policy import Policy

IN_SLOT = ("charging", "ready", "faulty", "retired")


@dataclass(frozen=True, slots=True)
class Alert:
    kind: str
    detail: str


def _history(conn: Connection, serial: str, event: str, **values: Any) -> None:
    conn.execute(
        insert(t.pack_history).values(serial=serial, ts=values.pop("ts", time.time()), event=event, **values)
    )


def alert(conn: Connection, station: str | None, kind: str, detail: str, swap_id: int | None = None) -> None:
    conn.execute(
        insert(t.alerts).values(ts=time.time(), station_id=station, kind=kind, detail=detail, swap_id=swap_id)
    )


def slot_state(soc: float, soh: float, policy: Policy) -> str:
    if soh < policy.retire_soh:
        return "retired"
    return "ready" if soc >= policy.ready_soc else "charging"


def _pack(conn: Connection, serial: str) -> Any:
    return conn.execute(select(t.packs).where(t.packs.c.serial == serial)).first()


def _unknown_pack(
    conn: Connection, serial: str, soc: float, soh: float, capacity: float, chemistry: str
) -> None:
    conn.execute(
        insert(t.packs).values(
            serial=serial, chemistry=chemistry, capacity_kwh=capacity, soh=soh, soc=soc, cycles=0.0,
            state="unknown", updated=time.time(),
        )
    )  # fmt: skip


def into_slot(
    conn: Connection,
    policy: Policy,
    *,
    serial: str,
    station: str,
    evse: int,
    soc: float,
    soh: float,
    vehicle_id: int | None,
    swap_id: int | None,
    default_capacity: float,
    default_chemistry: str,
) -> list[Alert]:
    """A pack goes into a station's slot (BatteryIn); it should have come out of ``vehicle_id``."""
    alerts: list[Alert] = []
    row = _pack(conn, serial)
    if row is None:
        alerts.append(
            Alert(
                "unknown_pack", f"pack {serial} is not in the inventory; registered from the station's data"
            )
        )
        _unknown_pack(conn, serial, soc, soh, default_capacity, default_chemistry)
        row = _pack(conn, serial)
    elif row.state == "in_vehicle" and vehicle_id is not None and row.vehicle_id != vehicle_id:
        alerts.append(
            Alert(
                "pack_elsewhere",
                f"pack {serial} is recorded in vehicle {row.vehicle_id}, not in {vehicle_id}",
            )
        )
    elif row.state in IN_SLOT:
        alerts.append(
            Alert("pack_elsewhere", f"pack {serial} is recorded in slot {row.station_id}/{row.evse_id}")
        )
    discharged = max(0.0, (row.soc - soc) / 100.0) if row.state == "in_vehicle" else 0.0
    state = slot_state(soc, soh, policy)
    conn.execute(
        update(t.packs)
        .where(t.packs.c.serial == serial)
        .values(
            soc=soc, soh=soh, cycles=t.packs.c.cycles + discharged, state=state, station_id=station,
            evse_id=evse, vehicle_id=None, updated=time.time(),
        )
    )  # fmt: skip
    _history(
        conn,
        serial,
        "into_slot",
        station_id=station,
        evse_id=evse,
        vehicle_id=vehicle_id,
        soc=soc,
        soh=soh,
        swap_id=swap_id,
    )
    if state == "retired":
        _history(
            conn,
            serial,
            "retired",
            station_id=station,
            evse_id=evse,
            soh=soh,
            detail=f"SoH {soh:g} < {policy.retire_soh:g}",
        )
    return alerts


def out_to_vehicle(
    conn: Connection,
    *,
    serial: str,
    station: str,
    evse: int,
    soc: float,
    soh: float,
    vehicle_id: int,
    swap_id: int | None,
    default_capacity: float,
    default_chemistry: str,
) -> list[Alert]:
    """A pack leaves a station's slot into ``vehicle_id`` (BatteryOut)."""
    alerts: list[Alert] = []
    row = _pack(conn, serial)
    if row is None:
        alerts.append(Alert("unknown_pack", f"pack {serial} handed out but not in the inventory"))
        _unknown_pack(conn, serial, soc, soh, default_capacity, default_chemistry)
    elif row.station_id != station or row.evse_id != evse:
        where = (
            f"{row.station_id}/{row.evse_id}"
            if row.station_id
            else (f"vehicle {row.vehicle_id}" if row.vehicle_id else row.state)
        )
        alerts.append(
            Alert("pack_elsewhere", f"pack {serial} handed out of {station}/{evse} but recorded at {where}")
        )
    elif row.state == "retired":
        alerts.append(Alert("retired_pack_out", f"pack {serial} (retired, SoH {row.soh:g}) was handed out"))
    conn.execute(
        update(t.packs)
        .where(t.packs.c.serial == serial)
        .values(
            soc=soc,
            soh=soh,
            state="in_vehicle",
            station_id=None,
            evse_id=None,
            vehicle_id=vehicle_id,
            updated=time.time(),
        )
    )
    _history(
        conn,
        serial,
        "into_vehicle",
        station_id=station,
        evse_id=evse,
        vehicle_id=vehicle_id,
        soc=soc,
        soh=soh,
        swap_id=swap_id,
    )
    return alerts


_p = t.packs.c
_SOC = (
    update(t.packs)
    .where(
        _p.station_id == bindparam("b_station"),
        _p.evse_id == bindparam("b_evse"),
        or_(_p.state == "charging", _p.state == "ready"),  # not IN: executemany takes no expanding parameters
    )
    .values(soc=bindparam("b_soc"), state=bindparam("b_state"), updated=bindparam("b_now"))
)


def apply_soc(conn: Connection, policy: Policy, socs: dict[tuple[str, int], float]) -> None:
    """Meter values: the SoC of the packs in stations' slots, as one executemany of one compiled UPDATE."""
    if not socs:
        return
    now = time.time()
    conn.execute(
        _SOC,
        [
            {
                "b_station": station,
                "b_evse": evse,
                "b_soc": soc,
                "b_state": "ready" if soc >= policy.ready_soc else "charging",
                "b_now": now,
            }
            for (station, evse), soc in socs.items()
        ],
    )


def ready_count(conn: Connection, station: str) -> int:
    p = t.packs.c
    return int(
        conn.execute(select(func.count()).where(p.station_id == station, p.state == "ready")).scalar() or 0
    )


def passport(engine: Engine, serial: str) -> dict[str, Any] | None:
    """A pack's identity, where it is now and its whole history, oldest first."""
    with engine.connect() as conn:
        row = _pack(conn, serial)
        if row is None:
            return None
        h = t.pack_history.c
        history = (
            conn.execute(select(t.pack_history).where(h.serial == serial).order_by(h.ts, h.id))
            .mappings()
            .all()
        )
    doc = dict(row._mapping)
    doc["history"] = [
        {k: v for k, v in dict(e).items() if k not in ("id", "serial") and v is not None} for e in history
    ]
    return doc


def station_packs(engine: Engine, station: str) -> list[dict[str, Any]]:
    p = t.packs.c
    with engine.connect() as conn:
        rows = (
            conn.execute(select(t.packs).where(p.station_id == station).order_by(p.evse_id)).mappings().all()
        )
    return [dict(r) for r in rows]
