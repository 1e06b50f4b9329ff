"""The device registry: commissioned accessories, kept in the hub's SQLite file so that they are
still known (and still fitted) after a hub restart.

A record is ``confirmed`` once its accessory has proved the token it was given (its first
authenticated reconnection). Until then the token may never have reached it (the hub died while
sending it): such an accessory may say hello without a proof and be commissioned again with
its pairing code, into the same instance."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from anycar.policy.db import open_db, transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS accessories (
    instance TEXT PRIMARY KEY,
    accessory TEXT NOT NULL UNIQUE,
    record TEXT NOT NULL
);
"""


@dataclass
class AccessoryRecord:
    instance: str
    accessory: str  # "<vendor hex>:<product hex>:<serial>"
    manifest: dict[str, Any]
    key_id: str
    mount_id: str
    priority: str
    privilege: str
    token: str
    paths: dict[str, str] = field(default_factory=dict)
    reads: list[str] = field(default_factory=list)
    actuates: list[str] = field(default_factory=list)
    commissioned_at: float = 0.0
    confirmed: bool = True  # records written before this field existed had their token

    def public(self) -> dict[str, Any]:
        """Everything but the secret token."""
        out = asdict(self)
        out.pop("token")
        out.pop("manifest")
        out["product"] = self.manifest.get("product_name")
        out["model"] = self.manifest.get("model")
        out["vendor"] = self.manifest.get("vendor_name")
        out["traits"] = self.manifest.get("traits")
        return out


class Registry:
    def __init__(self, db_path: str | Path | None = None) -> None:
        self._records: dict[str, AccessoryRecord] = {}
        self._db: sqlite3.Connection | None = open_db(db_path, SCHEMA) if db_path is not None else None
        if self._db is not None:
            for row in self._db.execute("SELECT record FROM accessories ORDER BY rowid"):
                rec = AccessoryRecord(**json.loads(row["record"]))
                self._records[rec.instance] = rec

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Writes of every store on this file (registry, grants) inside commit together."""
        with transaction(self._db):
            yield

    def put(self, rec: AccessoryRecord) -> None:
        """Store ``rec`` (the disk first: a failed write leaves memory as it was)."""
        if self._db is not None:
            self._db.execute(
                "INSERT OR REPLACE INTO accessories (instance, accessory, record) VALUES (?, ?, ?)",
                (rec.instance, rec.accessory, json.dumps(asdict(rec))),
            )
        self._records[rec.instance] = rec

    def drop(self, instance: str) -> None:
        if self._db is not None:
            self._db.execute("DELETE FROM accessories WHERE instance = ?", (instance,))
        self._records.pop(instance, None)

    def restore(self, instance: str, previous: AccessoryRecord | None) -> None:
        """Memory only: undo a ``put`` whose transaction was rolled back."""
        if previous is None:
            self._records.pop(instance, None)
        else:
            self._records[instance] = previous

    def get(self, instance: str) -> AccessoryRecord | None:
        return self._records.get(instance)

    def by_accessory(self, accessory: str) -> AccessoryRecord | None:
        return next((r for r in self._records.values() if r.accessory == accessory), None)

    def all(self) -> list[AccessoryRecord]:
        return list(self._records.values())

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
