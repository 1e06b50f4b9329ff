"""Mosquitto's password file and ACL, written from the registry.

Each hub vehicle logs in with its wire id and may publish only its uplink channels under
``anycar/v1/<id>/`` and read only its own ``commands`` and ``campaigns``; the ingest account
(``anycar-ingest``) reads every uplink channel and writes the downlink ones. Passwords are in the
PBKDF2-SHA512 form Mosquitto 2 reads (``$7$<iterations>$<salt>$<hash>``, base64), made here so no
``mosquitto_passwd`` is needed. Files are replaced atomically; Mosquitto rereads them on SIGHUP.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Engine

from anycar.fleet import db
from anycar.wire import Channel

ITERATIONS = 101  # Mosquitto 2's own default for $7$
INGEST_USER = "anycar-ingest"
UPLINK = [c for c in Channel if c.uplink]
DOWNLINK = [c for c in Channel if not c.uplink]


def hash_password(password: str, *, iterations: int = ITERATIONS) -> str:
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, dklen=64)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


@dataclass(frozen=True, slots=True)
class BrokerFiles:
    passwords: Path
    acl: Path
    ingest_password: str


def _replace(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(tmp, path)


def ingest_password(folder: Path) -> str:
    """The ingest account's password, minted once into ``folder/ingest.secret`` (mode 0600)."""
    secret = folder / "ingest.secret"
    if secret.is_file():
        return secret.read_text().strip()
    value = secrets.token_urlsafe(24)
    _replace(secret, value + "\n")
    return value


def acl_for(vehicle: str) -> list[str]:
    lines = [f"user {vehicle}"]
    lines += [f"topic write anycar/v1/{vehicle}/{c}" for c in UPLINK]
    lines += [f"topic read anycar/v1/{vehicle}/{c}" for c in DOWNLINK]
    return lines


def write_files(engine: Engine, folder: Path) -> BrokerFiles:
    """``folder/passwords`` and ``folder/acl`` for every vehicle that is not revoked, plus ingest."""
    folder.mkdir(parents=True, exist_ok=True)
    password = ingest_password(folder)
    v = db.vehicles.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(v.wire_id, v.mqtt_hash)
            .where(v.revoked.is_(False), v.mqtt_hash.is_not(None), v.kind == "hub")
            .order_by(v.wire_id)
        ).all()
    passwords = [f"{INGEST_USER}:{hash_password(password)}"] + [f"{r.wire_id}:{r.mqtt_hash}" for r in rows]
    acl = [
        "# written by anycar fleet from its registry; edits are overwritten",
        f"user {INGEST_USER}",
        *(f"topic read anycar/v1/+/{c}" for c in UPLINK),
        *(f"topic write anycar/v1/+/{c}" for c in DOWNLINK),
    ]
    for r in rows:
        acl += ["", *acl_for(r.wire_id)]
    files = BrokerFiles(folder / "passwords", folder / "acl", password)
    _replace(files.passwords, "\n".join(passwords) + "\n")
    _replace(files.acl, "\n".join(acl) + "\n")
    return files
