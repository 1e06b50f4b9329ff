"""Store-and-forward on disk: every message is written here before it is published, and removed
only when the broker acknowledges it (PUBACK), so a dead link, a restarted broker or a hub
killed with ``kill -9`` loses nothing that was spooled.

SQLite in WAL mode with ``synchronous=NORMAL``: a committed entry survives the process dying at
any point (power loss may take the last few commits). The spool is bounded by a byte quota
(and per campaign, by the campaign's own): when it is full the least important (highest
``prio`` number), oldest entries go first; every drop is counted by reason and priority, and
the counters outlive restarts. A full disk is treated as a full quota.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anycar.policy.db import open_db

SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    qos INTEGER NOT NULL,
    prio INTEGER NOT NULL,
    boot TEXT NOT NULL,
    seq INTEGER NOT NULL,
    created REAL NOT NULL,
    mono REAL NOT NULL,
    ttl REAL,
    campaign TEXT,
    size INTEGER NOT NULL,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS spool_victims ON spool(prio DESC, id);
CREATE INDEX IF NOT EXISTS spool_campaign ON spool(campaign, id);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    channel: str
    qos: int
    prio: int
    boot: str
    seq: int
    created: float
    mono: float
    ttl: float | None
    campaign: str | None
    payload: bytes

    def age(self, boot: str, now: float, mono_now: float) -> float:
        """Seconds since it was spooled: by the monotonic clock within one boot (a wall-clock jump
        does not age it), by the wall clock across boots (never negative)."""
        if self.boot == boot:
            return max(0.0, mono_now - self.mono)
        return max(0.0, now - self.created)


_COLUMNS = "id, channel, qos, prio, boot, seq, created, mono, ttl, campaign, payload"


class Spool:
    def __init__(
        self,
        path: str | Path,
        *,
        quota_bytes: int = 64 * 1024 * 1024,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.quota_bytes = quota_bytes
        self.clock = clock
        self.monotonic = monotonic
        self.db = open_db(self.path, SCHEMA)
        row = self.db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM spool").fetchone()
        self.depth = int(row[0])
        self.bytes = int(row[1])
        self.campaign_quota: dict[str, int] = {}
        self._campaign_bytes: dict[str, int] = {
            r[0]: int(r[1])
            for r in self.db.execute(
                "SELECT campaign, SUM(size) FROM spool WHERE campaign IS NOT NULL GROUP BY campaign"
            )
        }
        self.counters: dict[str, int] = {
            r[0]: int(r[1]) for r in self.db.execute("SELECT name, value FROM counters")
        }
        self.last_error = ""
        self.listeners: list[Callable[[], None]] = []

    # -- writing ----------------------------------------------------------------------------
    def put(
        self,
        channel: str,
        payload: bytes,
        *,
        prio: int,
        qos: int,
        boot: str,
        seq: int,
        ttl: float | None = None,
        campaign: str | None = None,
        protect: Iterable[int] = (),
    ) -> int | None:
        """Store one message; its id, or ``None`` if it was itself the least important and did not
        fit (counted). ``protect`` are ids in flight, never chosen to make room."""
        size = len(payload) + 64  # payload and row overhead
        keep = set(protect)
        if campaign is not None and campaign in self.campaign_quota:
            limit = self.campaign_quota[campaign]
            while self._campaign_bytes.get(campaign, 0) + size > limit:
                if not self._drop_one("campaign_quota", keep, campaign=campaign):
                    self._refuse(prio, "campaign_quota")
                    return None
        while self.bytes + size > self.quota_bytes:
            if not self._drop_one("quota", keep, at_least=prio):
                self._refuse(prio, "quota")
                return None
        row = (channel, qos, prio, boot, seq, self.clock(), self.monotonic(), ttl, campaign, size, payload)
        for attempt in range(3):
            try:
                cur = self.db.execute(
                    "INSERT INTO spool (channel, qos, prio, boot, seq, created, mono, ttl, campaign, size, payload)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
                break
            except sqlite3.OperationalError as exc:
                if "full" not in str(exc).lower():
                    raise
                # The disk (or the file's page limit) is full: make room as if the quota were reached.
                self.last_error = f"disk full: {exc}"
                self._count("disk_full")
                if attempt == 2 or not self._drop_one("disk_full", keep, at_least=prio, count=4):
                    self._refuse(prio, "disk_full")
                    return None
        else:  # pragma: no cover - the loop always breaks or returns
            return None
        self.depth += 1
        self.bytes += size
        if campaign is not None:
            self._campaign_bytes[campaign] = self._campaign_bytes.get(campaign, 0) + size
        for listener in self.listeners:
            listener()
        return int(cur.lastrowid or 0)

    def _refuse(self, prio: int, reason: str) -> None:
        self._count(f"dropped_{reason}")
        self._count(f"dropped_prio_{prio}")
        self._count("dropped")

    def _drop_one(
        self,
        reason: str,
        keep: set[int],
        *,
        at_least: int = 0,
        campaign: str | None = None,
        count: int = 1,
    ) -> bool:
        """Remove the least important, oldest entries (not in ``keep``); False if none qualifies."""
        if campaign is not None:
            rows = self.db.execute(
                "SELECT id, prio, size, campaign FROM spool WHERE campaign = ? ORDER BY id LIMIT ?",
                (campaign, len(keep) + count),
            ).fetchall()
        else:
            rows = self.db.execute(
                "SELECT id, prio, size, campaign FROM spool WHERE prio >= ? ORDER BY prio DESC, id LIMIT ?",
                (at_least, len(keep) + count),
            ).fetchall()
        victims = [r for r in rows if r[0] not in keep][:count]
        if not victims:
            return False
        for victim in victims:
            self._delete(victim[0], victim[2], victim[3])
            self._count(f"dropped_{reason}")
            self._count(f"dropped_prio_{victim[1]}")
            self._count("dropped")
        return True

    def _delete(self, entry_id: int, size: int, campaign: str | None) -> bool:
        cur = self.db.execute("DELETE FROM spool WHERE id = ?", (entry_id,))
        if not cur.rowcount:
            return False
        self.depth -= 1
        self.bytes -= size
        if campaign is not None:
            self._campaign_bytes[campaign] = self._campaign_bytes.get(campaign, 0) - size
        return True

    def _count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n
        try:
            self.db.execute(
                "INSERT INTO counters (name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                (name, n),
            )
        except sqlite3.OperationalError as exc:  # a full disk must not stop the counting in memory
            self.last_error = f"cannot store counter {name}: {exc}"

    # -- reading and acknowledging ------------------------------------------------------------
    def ack(self, entry: Entry, *, outcome: str = "published") -> None:
        """The broker took it (PUBACK, or written for QoS 0): remove it for good."""
        if self._delete(entry.id, len(entry.payload) + 64, entry.campaign):
            self._count(outcome)

    def drop(self, entry: Entry, reason: str) -> None:
        """Remove an entry that will never be delivered (expired, refused by the broker); counted."""
        if self._delete(entry.id, len(entry.payload) + 64, entry.campaign):
            self._count(f"dropped_{reason}")
            self._count(f"dropped_prio_{entry.prio}")
            self._count("dropped")

    def after(self, entry_id: int, limit: int, *, until: int | None = None) -> list[Entry]:
        """Entries with ``id`` > ``entry_id`` (and <= ``until``), oldest first."""
        if until is None:
            query = f"SELECT {_COLUMNS} FROM spool WHERE id > ? ORDER BY id LIMIT ?"  # nosec B608 # _COLUMNS is a constant of this module; values are bound
            rows = self.db.execute(query, (entry_id, limit))
        else:
            rows = self.db.execute(
                f"SELECT {_COLUMNS} FROM spool WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",  # nosec B608 # _COLUMNS is a constant of this module; values are bound
                (entry_id, until, limit),
            )
        return [Entry(*r) for r in rows]

    def last_id(self) -> int:
        row = self.db.execute("SELECT MAX(id) FROM spool").fetchone()
        return int(row[0] or 0)

    def oldest(self) -> float | None:
        row = self.db.execute("SELECT MIN(created) FROM spool").fetchone()
        return float(row[0]) if row[0] is not None else None

    # -- status for other processes -------------------------------------------------------------
    def set_meta(self, values: dict[str, Any]) -> None:
        try:
            self.db.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [(k, str(v)) for k, v in values.items()],
            )
        except sqlite3.OperationalError as exc:
            self.last_error = f"cannot store status: {exc}"

    def meta(self) -> dict[str, str]:
        return {r[0]: r[1] for r in self.db.execute("SELECT key, value FROM meta")}

    def stats(self) -> dict[str, Any]:
        oldest = self.oldest()
        return {
            "depth": self.depth,
            "bytes": self.bytes,
            "quota_bytes": self.quota_bytes,
            "oldest": oldest,
            "oldest_age_s": round(max(0.0, self.clock() - oldest), 3) if oldest is not None else None,
            "published": self.counters.get("published", 0),
            "dropped": self.counters.get("dropped", 0),
            "drops": {
                k[len("dropped_") :]: v for k, v in sorted(self.counters.items()) if k.startswith("dropped_")
            },
            "disk_full": self.counters.get("disk_full", 0),
            "last_error": self.last_error,
        }

    def close(self) -> None:
        self.db.close()
