"""The policy event log: every shed, restore and refusal, visible while the hub runs (a ring in
memory) and afterwards (the ``events`` table of the hub's SQLite file).

Logging never waits for the disk and never fails because of it: an event goes into the ring and
to the listeners at once, and onto a bounded queue that one writer thread drains into SQLite.
A full disk or a read-only file costs persistence only (counted, reported through
``on_health``, retried with back-off), never the caller: the driving state and its restrictions
are decided from memory. The table has a retention (rows and bytes, oldest go first), and the
kinds an outsider can provoke (refused hellos, wrong codes, floods) are rate-limited: over the
limit they are counted, and a summary row (at most one per kind every 5 s) says how many were
not logged.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anycar.policy.db import open_db
from anycar.ratelimit import TokenBucket

log = logging.getLogger(__name__)

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
        "grant_changed",
        # a door opening / unlock with the ignition off started courtesy lighting (policy.courtesy)
        "courtesy",
        # automations (anycar.automations): a notify action, a loop or a storm stopped
        "automation_notify",
        "automation_loop",
        "automation_rate_limited",
        # accessory firmware updates (anycar.accessories.updating): started, done, failed
        "firmware_update",
        "firmware_updated",
        "firmware_failed",
    }
)

# What a peer without a token can make the hub log as often as it likes.
NOISY_KINDS = frozenset(
    {"refusal", "attestation_failed", "pairing_failed", "locked_out", "rate_limited", "fit_refused"}
)
# At most one "N more were not logged" row per kind in this many seconds.
SUMMARY_S = 5.0
# What one event row costs beyond its text columns (seq, ts, two index entries), for the byte cap.
_ROW_OVERHEAD = 48
_BYTES = "LENGTH(kind) + LENGTH(subject) + LENGTH(message) + LENGTH(data)"


@dataclass(frozen=True, slots=True)
class Retention:
    """How much of the log the database keeps, and how fast noisy kinds may be logged."""

    max_rows: int = 100_000
    max_bytes: int = 32 * 1024 * 1024
    noisy_per_s: float = 20.0  # per kind, over all subjects
    noisy_burst: float = 100.0
    queue_size: int = 10_000  # events waiting for the disk before new ones are dropped


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
    """Append-only log; ``db_path=None`` keeps it in memory only.

    ``on_health(error)`` hears the writer's state: an exception when persisting fails, ``None``
    when it works again (the supervisor turns that into the hub's health)."""

    def __init__(
        self,
        db_path: str | Path | None = None,
        *,
        capacity: int = 1000,
        retention: Retention | None = None,
        on_health: Callable[[BaseException | None], None] | None = None,
        max_file_bytes: int | None = None,
    ) -> None:
        self.retention = retention if retention is not None else Retention()
        self.on_health = on_health
        self._ring: deque[Event] = deque(maxlen=capacity)
        self._seq = 0
        self._listeners: list[Callable[[Event], None]] = []
        self._noisy: dict[str, TokenBucket] = {}
        self.suppressed: dict[str, int] = {}  # per kind, since the last summary row
        self._summarised: dict[str, float] = {}  # per kind, when the last summary row was made
        self.suppressed_total = 0
        self._writer: _Writer | None = None
        if db_path is not None:
            self._writer = _Writer(open_db(db_path, SCHEMA, shared=False), self.retention, self._health)
            if max_file_bytes is not None:
                self._writer.cap_file(max_file_bytes)
            self._seq = self._writer.max_seq()
            self._writer.start()

    def add_listener(self, listener: Callable[[Event], None]) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[Event], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def log(self, kind: str, subject: str, message: str, **data: Any) -> Event:
        """Record one event; never raises for the disk. A rate-limited event gets ``seq`` 0."""
        if kind not in KINDS:
            raise ValueError(f"unknown event kind {kind!r}")
        if kind in NOISY_KINDS:
            bucket = self._noisy.get(kind)
            if bucket is None:
                bucket = self._noisy[kind] = TokenBucket(
                    self.retention.noisy_per_s, self.retention.noisy_burst
                )
            if not bucket.take():
                self.suppressed[kind] = self.suppressed.get(kind, 0) + 1
                self.suppressed_total += 1
                return Event(time.time(), kind, subject, message, data, 0)
            now = time.monotonic()
            missed = self.suppressed.get(kind, 0)
            if missed and now - self._summarised.get(kind, -SUMMARY_S) >= SUMMARY_S:
                del self.suppressed[kind]
                self._summarised[kind] = now
                self._record(
                    kind,
                    "event-log",
                    f"{missed} more {kind} events were not logged (over {self.retention.noisy_per_s:g}/s)",
                    {"suppressed": missed},
                )
        return self._record(kind, subject, message, data)

    def _record(self, kind: str, subject: str, message: str, data: dict[str, Any]) -> Event:
        self._seq += 1
        event = Event(time.time(), kind, subject, message, data, self._seq)
        self._ring.append(event)
        if self._writer is not None:
            self._writer.put(event)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken listener must not stop the policy that logs
                log.exception("event listener failed on %s", kind)
        return event

    def _health(self, error: BaseException | None) -> None:
        if self.on_health is not None:
            self.on_health(error)

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
        if self._writer is None:
            return self.recent(kind=kind, subject=subject, limit=limit)
        self.flush()
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
        rows = self._writer.query(query, args)
        return [
            Event(r["ts"], r["kind"], r["subject"], r["message"], json.loads(r["data"]), r["seq"])
            for r in reversed(rows)
        ]

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued event is on disk (or the writer is failing); ``True`` if so."""
        return self._writer.flush(timeout) if self._writer is not None else True

    def status(self) -> dict[str, Any]:
        """For the hub's health: is the log persisting, what is queued, dropped, suppressed."""
        out: dict[str, Any] = {
            "persistent": self._writer is not None,
            "in_memory": len(self._ring),
            "suppressed": self.suppressed_total,
        }
        if self._writer is not None:
            out.update(self._writer.status())
        return out

    def close(self) -> None:
        if self._writer is not None:
            self._writer.stop()
            self._writer = None


class _Writer:
    """The one thread that writes events to SQLite, so that the event loop never waits for disk.

    The event loop only appends to a deque (no lock, no wake-up per event: waking the thread for
    each event would hand it the GIL in the middle of the policy's work); the thread takes what
    has gathered every ``PERIOD_S``, or at once when a flush or a big burst asks for it."""

    PERIOD_S = 0.1
    BATCH = 500

    def __init__(
        self, conn: sqlite3.Connection, retention: Retention, health: Callable[[BaseException | None], None]
    ) -> None:
        self.conn = conn
        self.retention = retention
        self._health = health
        self._pending: deque[Event] = deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()  # the connection: writer thread vs. history() readers
        self._inflight = 0
        self.failing: str | None = None
        self.closing = False
        self._stop = False
        self.written = 0
        self.dropped = 0
        self.trimmed = 0
        self.rows = self.bytes = 0
        self._recount()
        self._thread = threading.Thread(target=self._run, name="event-log-writer", daemon=True)

    def cap_file(self, max_bytes: int) -> None:
        """Never grow the database file beyond ``max_bytes`` from this connection."""
        page = int(self.conn.execute("PRAGMA page_size").fetchone()[0])
        self.conn.execute(f"PRAGMA max_page_count = {max(1, max_bytes // page)}")

    def max_seq(self) -> int:
        row = self.conn.execute("SELECT MAX(seq) FROM events").fetchone()
        return int(row[0] or 0)

    def start(self) -> None:
        self._thread.start()

    def put(self, event: Event) -> None:
        if len(self._pending) >= self.retention.queue_size:  # the disk is not keeping up
            self.dropped += 1
            return
        self._pending.append(event)
        if len(self._pending) == self.BATCH:
            self._wake.set()

    def flush(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while (self._pending or self._inflight) and self.failing is None:
            if time.monotonic() > end or not self._thread.is_alive():
                return False
            self._wake.set()
            time.sleep(0.005)
        return not self._pending and not self._inflight

    def query(self, sql: str, args: list[Any]) -> list[sqlite3.Row]:
        with self._lock:
            return list(self.conn.execute(sql, args).fetchall())

    def status(self) -> dict[str, Any]:
        return {
            "persisting": self.failing is None,
            "last_error": self.failing,
            "queued": len(self._pending) + self._inflight,
            "written": self.written,
            "dropped": self.dropped,
            "rows": self.rows,
            "bytes": self.bytes,
            "trimmed": self.trimmed,
            "max_rows": self.retention.max_rows,
            "max_bytes": self.retention.max_bytes,
        }

    def _take(self) -> list[Event]:
        batch: list[Event] = []
        while self._pending and len(batch) < self.BATCH:
            batch.append(self._pending.popleft())
        self._inflight = len(batch)
        return batch

    def _run(self) -> None:
        batch: list[Event] = []
        delay = 0.05
        while True:
            if not batch:
                stopping = self._stop
                batch = self._take()
                if not batch:
                    if stopping:
                        return
                    self._wake.wait(self.PERIOD_S)
                    self._wake.clear()
                    continue
            try:
                self._write(batch)
            except Exception as exc:  # disk full, read-only, I/O error: keep the batch, retry
                first = self.failing is None
                self.failing = f"{type(exc).__name__}: {exc}"
                if first:
                    log.error("event log cannot persist (%s); events are kept in memory", self.failing)
                self._health(exc)
                if self._stop and self.closing:  # closing on a failing disk: what is left is lost
                    self.dropped += len(batch) + len(self._pending)
                    self._pending.clear()
                    self._inflight = 0
                    return
                if len(self._pending) >= self.retention.queue_size:  # oldest first out
                    self.dropped += len(batch)
                    self._inflight = 0
                    batch = []
                self._wake.wait(delay)
                self._wake.clear()
                delay = min(delay * 2, 5.0)
                continue
            if self.failing is not None:
                log.warning("event log persists again after: %s", self.failing)
                self.failing = None
                self._health(None)
            delay = 0.05
            self._inflight = 0
            batch = []

    def _write(self, batch: list[Event]) -> None:
        rows = [(e.seq, e.ts, e.kind, e.subject, e.message, json.dumps(e.data, default=str)) for e in batch]
        size = sum(len(r[2]) + len(r[3]) + len(r[4]) + len(r[5]) + _ROW_OVERHEAD for r in rows)
        with self._lock:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                self.conn.executemany(
                    "INSERT OR REPLACE INTO events (seq, ts, kind, subject, message, data) VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
                self.rows += len(rows)
                self.bytes += size
                if self.rows > self.retention.max_rows or self.bytes > self.retention.max_bytes:
                    self._trim()  # in the same transaction: the caps hold at every commit
                self.conn.execute("COMMIT")
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                self._recount()
                raise
            self.written += len(rows)

    def _trim(self) -> None:
        """Drop the oldest rows until both caps have a tenth of headroom (caller holds the lock)."""
        target_rows = self.retention.max_rows * 9 // 10
        target_bytes = self.retention.max_bytes * 9 // 10
        for _ in range(8):  # rows differ in size: estimate from the mean, look again
            excess = max(0, self.rows - target_rows)
            if self.bytes > target_bytes and self.rows:
                excess = max(excess, int((self.bytes - target_bytes) * self.rows / self.bytes) + 1)
            excess = min(excess, self.rows)
            if excess <= 0:
                return
            cut = self.conn.execute(
                "SELECT seq FROM events ORDER BY seq LIMIT 1 OFFSET ?", (excess - 1,)
            ).fetchone()
            if cut is None:
                return
            self.conn.execute("DELETE FROM events WHERE seq <= ?", (cut[0],))
            self.trimmed += excess
            self._recount()

    def _recount(self) -> None:
        row = self.conn.execute(f"SELECT COUNT(*), COALESCE(SUM({_BYTES}), 0) FROM events").fetchone()  # nosec B608 # _BYTES is a constant of this module, no outside input
        self.rows = int(row[0])
        self.bytes = int(row[1]) + self.rows * _ROW_OVERHEAD

    def stop(self) -> None:
        """Write what is queued (a failing disk does not hold up the shutdown), then close."""
        self.closing = self.failing is not None
        self._stop = True
        self._wake.set()
        self._thread.join(10)
        if self._thread.is_alive():  # still retrying: give up on what is left
            self.closing = True
            self._wake.set()
            self._thread.join(10)
        with self._lock:
            self.conn.close()
