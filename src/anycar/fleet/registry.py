"""Tenants, users with roles, vehicles: who may see what, and who may publish where.

A user's API token is shown once and stored as its SHA-256 (a token is 256 random bits, so a
plain hash is enough to make the table useless to a thief). A hub vehicle gets MQTT credentials
(its wire id as user name, a random password shown once, kept as Mosquitto's PBKDF2 line); a
plain GPS tracker gets a wire id with a random suffix, which is what its OsmAnd requests carry.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from anycar.fleet import db
from anycar.fleet.mosquitto import hash_password
from anycar.wire import WireError, check_vehicle

_VIN = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")  # ISO 3779: no I, O, Q
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ROLE_RIGHTS: dict[str, frozenset[str]] = {
    # fleet-commands: "command" sends commands to vehicles, "firmware" uploads releases and runs rollouts
    "owner": frozenset({"read", "dead_letters", "provision", "command", "firmware"}),
    "dispatcher": frozenset({"read", "dead_letters", "command"}),
    "driver": frozenset({"read"}),
    "viewer": frozenset({"read"}),
}


class RegistryError(ValueError):
    """A registry change that cannot be made; the message says which field and why."""


@dataclass(frozen=True, slots=True)
class User:
    id: int
    tenant_id: int
    name: str
    role: str

    @property
    def rights(self) -> frozenset[str]:
        return ROLE_RIGHTS[self.role]


@dataclass(frozen=True, slots=True)
class Credentials:
    vehicle: str
    username: str
    password: str | None  # None for a tracker (its id is its credential)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _name(value: str, what: str) -> str:
    if not _NAME.match(value):
        raise RegistryError(f"{what} {value!r}: 1-64 of A-Z a-z 0-9 _ . - (starting with a letter or digit)")
    return value


def tenant_id(engine: Engine, name: str, *, create: bool = False) -> int:
    """The tenant called ``name``; with ``create`` it is made if missing."""
    _name(name, "tenant")
    with engine.begin() as conn:
        found = conn.execute(select(db.tenants.c.id).where(db.tenants.c.name == name)).scalar()
        if found is not None:
            return int(found)
        if not create:
            raise RegistryError(f"tenant {name!r}: no such tenant (anycar fleet tenant add {name})")
        key = conn.execute(insert(db.tenants).values(name=name, created=time.time())).inserted_primary_key
        assert key is not None  # nosec B101 # an INSERT of one row always has a key; narrows for mypy
        return int(key[0])


def add_user(engine: Engine, tenant: str, name: str, role: str) -> str:
    """A new user; returns the API token (shown once)."""
    if role not in ROLE_RIGHTS:
        raise RegistryError(f"role {role!r}: one of {', '.join(ROLE_RIGHTS)}")
    tid = tenant_id(engine, tenant)
    token = secrets.token_urlsafe(32)
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(db.users).values(
                    tenant_id=tid,
                    name=_name(name, "user"),
                    role=role,
                    token_hash=token_hash(token),
                    created=time.time(),
                )
            )
    except IntegrityError:
        raise RegistryError(f"user {name!r}: already in tenant {tenant!r}") from None
    return token


def user_for_token(engine: Engine, token: str) -> User | None:
    if not token or len(token) > 256:
        return None
    u = db.users.c
    with engine.connect() as conn:
        row = conn.execute(
            select(u.id, u.tenant_id, u.name, u.role).where(u.token_hash == token_hash(token))
        ).first()
    return User(row.id, row.tenant_id, row.name, row.role) if row else None


def add_vehicle(
    engine: Engine,
    vin: str,
    brand: str,
    *,
    tenant: str = "default",
    wire_id: str | None = None,
    tracker: bool = False,
) -> Credentials:
    """Register a vehicle and mint what it connects with (shown once)."""
    vin = vin.strip().upper()
    if not _VIN.match(vin):
        raise RegistryError(f"VIN {vin!r}: 17 characters of A-Z 0-9 without I, O, Q (ISO 3779)")
    _name(brand, "brand profile")
    if wire_id is None:
        wire_id = f"{vin}-{secrets.token_hex(10)}" if tracker else vin
    try:
        check_vehicle(wire_id)
    except WireError as exc:
        raise RegistryError(str(exc)) from None
    password = None if tracker else secrets.token_urlsafe(24)
    tid = tenant_id(engine, tenant, create=True)
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(db.vehicles).values(
                    tenant_id=tid,
                    vin=vin,
                    brand=brand,
                    wire_id=wire_id,
                    kind="tracker" if tracker else "hub",
                    mqtt_hash=hash_password(password) if password else None,
                    revoked=False,
                    created=time.time(),
                )
            )
    except IntegrityError:
        raise RegistryError(f"vehicle {vin} / {wire_id}: already registered") from None
    return Credentials(wire_id, wire_id, password)


def revoke_vehicle(engine: Engine, wire_id: str) -> None:
    """Cut a vehicle off: no broker login, no ACL entry, its OsmAnd requests refused."""
    with engine.begin() as conn:
        done = conn.execute(
            update(db.vehicles).where(db.vehicles.c.wire_id == wire_id).values(revoked=True, mqtt_hash=None)
        ).rowcount
    if not done:
        raise RegistryError(f"vehicle {wire_id!r}: not registered")
