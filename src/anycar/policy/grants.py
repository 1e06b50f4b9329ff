"""Persisted grants (table ``grants``): given at commissioning or app registration, kept across
restarts."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from anycar.policy.db import open_db
from anycar.policy.privileges import Grant

SCHEMA = """
CREATE TABLE IF NOT EXISTS grants (
    subject TEXT PRIMARY KEY,
    grant_json TEXT NOT NULL,
    granted_at REAL NOT NULL
);
"""


class GrantStore:
    def __init__(self, db_path: str | Path | None = None) -> None:
        self._grants: dict[str, Grant] = {}
        self._db: sqlite3.Connection | None = open_db(db_path, SCHEMA) if db_path is not None else None
        if self._db is not None:
            for row in self._db.execute("SELECT grant_json FROM grants"):
                grant = Grant.from_dict(json.loads(row["grant_json"]))
                self._grants[grant.subject] = grant

    def put(self, grant: Grant) -> None:
        self._grants[grant.subject] = grant
        if self._db is not None:
            self._db.execute(
                "INSERT OR REPLACE INTO grants (subject, grant_json, granted_at) VALUES (?, ?, ?)",
                (grant.subject, json.dumps(grant.to_dict()), time.time()),
            )

    def get(self, subject: str) -> Grant | None:
        return self._grants.get(subject)

    def drop(self, subject: str) -> None:
        self._grants.pop(subject, None)
        if self._db is not None:
            self._db.execute("DELETE FROM grants WHERE subject = ?", (subject,))

    def all(self) -> list[Grant]:
        return list(self._grants.values())

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
