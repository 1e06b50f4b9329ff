"""The policy event log: every shed, restore and refusal, visible while the hub runs (a ring in
memory) and afterwards (the ``events`` table of the hub's SQLite file).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anycar.policy.db import open_db

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    message TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS events_kind ON events(kind);
CREATE INDEX IF NOT EXISTS events_subject ON events(subject);
"""

# The kinds the hub logs; listeners and queries use these words.
KINDS = frozenset(
    {
        "shed",
        "restore",
        "refusal",
        "restriction",
        "attestation_failed",
        "pairing_failed",
        "locked_out",
        "commissioned",
        "fitted",
        "fit_refused",
        "removed",
        "unavailable",
        "available",
        "rate_limited",
        "trust_added",
        "trust_revoked",
        "driving_state",
        # automations (anycar.automations): a notify action, a loop or a storm stopped
        "automation_notify",
        "automation_loop",
        "automation_rate_limited",
    }
)


@dataclass(frozen=True, slots=True)
class Event:
    ts: float
    kind: str
    subject: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)
    seq: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "ts": self.ts,
            "kind": self.kind,
            "subject": self.subject,
            "message": self.message,
            "data": self.data,
        }


class EventLog:
    """Append-only log; ``db_path=None`` keeps it in memory only."""

    def __init__(self, db_path: str | Path | None = None, *, capacity: int = 1000) -> None:
        self._ring: deque[Event] = deque(maxlen=capacity)
        self._seq = 0
        self._db: sqlite3.Connection | None = open_db(db_path, SCHEMA) if db_path is not None else None
        self._listeners: list[Callable[[Event], None]] = []
        if self._db is not None:
            row = self._db.execute("SELECT MAX(seq) FROM events").fetchone()
            self._seq = int(row[0] or 0)

    def add_listener(self, listener: Callable[[Event], None]) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[Event], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def log(self, kind: str, subject: str, message: str, **data: Any) -> Event:
        if kind not in KINDS:
            raise ValueError(f"unknown event kind {kind!r}")
        ts = time.time()
        if self._db is not None:
            cur = self._db.execute(
                "INSERT INTO events (ts, kind, subject, message, data) VALUES (?, ?, ?, ?, ?)",
                (ts, kind, subject, message, json.dumps(data, default=str)),
            )
            seq = int(cur.lastrowid or 0)
        else:
            seq = self._seq + 1
        self._seq = seq
        event = Event(ts, kind, subject, message, data, seq)
        self._ring.append(event)
        for listener in list(self._listeners):
            listener(event)
        return event

    def recent(self, *, kind: str | None = None, subject: str | None = None, limit: int = 100) -> list[Event]:
        """Newest last, from the in-memory ring."""
        out = [
            e
            for e in self._ring
            if (kind is None or e.kind == kind) and (subject is None or e.subject == subject)
        ]
        return out[-limit:]

    def history(
        self, *, kind: str | None = None, subject: str | None = None, limit: int = 1000
    ) -> list[Event]:
        """Newest last, from the database (survives restarts); the ring if there is no database."""
        if self._db is None:
            return self.recent(kind=kind, subject=subject, limit=limit)
        query = "SELECT seq, ts, kind, subject, message, data FROM events"
        cond: list[str] = []
        args: list[Any] = []
        if kind is not None:
            cond.append("kind = ?")
            args.append(kind)
        if subject is not None:
            cond.append("subject = ?")
            args.append(subject)
        if cond:
            query += " WHERE " + " AND ".join(cond)
        query += " ORDER BY seq DESC LIMIT ?"
        args.append(limit)
        rows = self._db.execute(query, args).fetchall()
        return [
            Event(r["ts"], r["kind"], r["subject"], r["message"], json.loads(r["data"]), r["seq"])
            for r in reversed(rows)
        ]

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
