"""Stations (who may connect and how), vehicles' swap id tokens, and packs entering the inventory.

A profile-2 station's password is minted here (192 random bits, shown once) and kept as its
SHA-256: like the fleet's API tokens, a secret that long needs no slow hash to make a stolen
table useless, and checking it costs microseconds when a thousand stations reconnect at once.
A profile-3 station has no password: its TLS client certificate's common name must be its id.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from anycar.fleet import db as fleet_db
from anycar.fleet.registry import RegistryError, tenant_id
from anycar.swap import tables as t
from anycar.swap.policy import Layout, load_layout

_STATION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,47}$")  # OCPP identity: URL-safe, <= 48


@dataclass(frozen=True, slots=True)
class StationAuth:
    id: str
    tenant_id: int
    password_hash: str | None
    security_profile: int


def password_hash(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def check_password(stored: str | None, password: str) -> bool:
    return stored is not None and hmac.compare_digest(stored, password_hash(password))


def add_station(
    engine: Engine,
    station: str,
    *,
    tenant: str = "default",
    layout: str = "pickman-8",
    profile: int = 2,
    tariff: list[float] | None = None,
) -> str | None:
    """Register a station and its slots; returns its basic-auth password (profile 2), shown once."""
    if not _STATION.match(station):
        raise RegistryError(f"station {station!r}: 1-48 of A-Z a-z 0-9 _ . - (its OCPP identity)")
    if profile not in (2, 3):
        raise RegistryError(f"security profile {profile}: 2 (TLS + basic auth) or 3 (TLS client certificate)")
    if tariff is not None and (len(tariff) != 24 or any(p < 0 for p in tariff)):
        raise RegistryError("tariff: 24 prices per kWh, one for each UTC hour, none negative")
    shape: Layout = load_layout(layout)
    password = secrets.token_urlsafe(24) if profile == 2 else None
    tid = tenant_id(engine, tenant, create=True)
    now = time.time()
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(t.stations).values(
                    id=station,
                    tenant_id=tid,
                    password_hash=password_hash(password) if password else None,
                    security_profile=profile,
                    layout=shape.name,
                    grid_limit_kw=shape.grid_limit_kw,
                    tariff=tariff,
                    online=False,
                    created=now,
                )
            )
            conn.execute(
                insert(t.slots),
                [
                    {"station_id": station, "evse_id": i, "status": "Unavailable", "updated": now}
                    for i in range(1, shape.slots + 1)
                ],
            )
    except IntegrityError:
        raise RegistryError(f"station {station!r}: already registered") from None
    return password


def station_auth(engine: Engine, station: str) -> StationAuth | None:
    if not _STATION.match(station):
        return None
    s = t.stations.c
    with engine.connect() as conn:
        row = conn.execute(
            select(s.id, s.tenant_id, s.password_hash, s.security_profile).where(s.id == station)
        ).first()
    return StationAuth(row.id, row.tenant_id, row.password_hash, row.security_profile) if row else None


def vehicle_id(conn: Connection, wire_id: str) -> int:
    v = fleet_db.vehicles.c
    found = conn.execute(select(v.id).where(v.wire_id == wire_id, v.revoked.is_(False))).scalar()
    if found is None:
        raise RegistryError(f"vehicle {wire_id!r}: not registered (anycar fleet vehicle add)")
    return int(found)


def add_token(engine: Engine, wire_id: str, token: str | None = None) -> str:
    """A swap idToken for a vehicle (what its driver or plate reader presents); returns it."""
    token = token or secrets.token_hex(16)
    if not 1 <= len(token) <= 255:
        raise RegistryError("idToken: 1-255 characters")
    with engine.begin() as conn:
        vid = vehicle_id(conn, wire_id)
        try:
            conn.execute(
                insert(t.id_tokens).values(token=token, vehicle_id=vid, revoked=False, created=time.time())
            )
        except IntegrityError:
            raise RegistryError(f"idToken {token!r}: already issued") from None
    return token


def add_pack(
    engine: Engine,
    serial: str,
    *,
    chemistry: str,
    capacity_kwh: float,
    soh: float,
    soc: float,
    cycles: float = 0.0,
    vehicle: str | None = None,
    station: str | None = None,
    evse_id: int | None = None,
    ready_soc: float = 95.0,
) -> None:
    """A pack enters the passport, in a vehicle or in a station's slot."""
    if not 1 <= len(serial) <= 50:
        raise RegistryError(f"pack serial {serial!r}: 1-50 characters (OCPP serialNumber)")
    if not (0 <= soh <= 100 and 0 <= soc <= 100 and capacity_kwh > 0):
        raise RegistryError(f"pack {serial}: soh and soc in [0, 100], capacity above 0")
    now = time.time()
    with engine.begin() as conn:
        vid = vehicle_id(conn, vehicle) if vehicle else None
        state = (
            "in_vehicle" if vid else ("ready" if soc >= ready_soc else "charging") if station else "unknown"
        )
        values: dict[str, Any] = dict(
            serial=serial, chemistry=chemistry, capacity_kwh=capacity_kwh, soh=soh, soc=soc, cycles=cycles,
            state=state, station_id=station, evse_id=evse_id, vehicle_id=vid, updated=now,
        )  # fmt: skip
        try:
            conn.execute(insert(t.packs).values(**values))
        except IntegrityError:
            raise RegistryError(f"pack {serial!r}: already in the inventory") from None
        conn.execute(
            insert(t.pack_history).values(
                serial=serial, ts=now, event="registered", station_id=station, evse_id=evse_id,
                vehicle_id=vid, soc=soc, soh=soh,
            )
        )  # fmt: skip
        if station and evse_id:
            conn.execute(
                update(t.slots)
                .where(t.slots.c.station_id == station, t.slots.c.evse_id == evse_id)
                .values(status="Occupied", updated=now)
            )


def stock_station(
    engine: Engine,
    station: str,
    layout: str,
    *,
    ready_soc: float = 95.0,
    serials: list[str] | None = None,
    soc: float | None = None,
) -> list[str]:
    """Put the layout's packs into a new station's slots (all but ``empty_slots``); their serials.
    ``serials``: the packs' own serials for slots 1.. (the makers', e.g. the PICKMAN's ``KYB…``),
    ``soc``: their charge instead of the layout's."""
    shape = load_layout(layout)
    given = serials or [f"{station}-P{evse:02d}" for evse in range(1, shape.slots - shape.empty_slots + 1)]
    if len(given) > shape.slots - 1:
        raise RegistryError(
            f"station {station}: {len(given)} packs for {shape.slots} slots (one stays empty)"
        )
    serials = []
    for evse, serial in enumerate(given, start=1):
        add_pack(
            engine, serial, chemistry=shape.chemistry, capacity_kwh=shape.capacity_kwh, soh=shape.soh,
            soc=shape.soc if soc is None else soc, station=station, evse_id=evse, ready_soc=ready_soc,
        )  # fmt: skip
        serials.append(serial)
    return serials
