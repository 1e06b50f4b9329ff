"""The device registry: commissioned accessories, kept in the hub's SQLite file so that they are
still known (and still fitted) after a hub restart."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from anycar.policy.db import open_db

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

    def put(self, rec: AccessoryRecord) -> None:
        self._records[rec.instance] = rec
        if self._db is not None:
            self._db.execute(
                "INSERT OR REPLACE INTO accessories (instance, accessory, record) VALUES (?, ?, ?)",
                (rec.instance, rec.accessory, json.dumps(asdict(rec))),
            )

    def drop(self, instance: str) -> None:
        self._records.pop(instance, None)
        if self._db is not None:
            self._db.execute("DELETE FROM accessories WHERE instance = ?", (instance,))

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
