"""What automations keep in the hub's SQLite file: enabled flags, definitions given over REST,
"true since" of every ``for:``, runs paused in a delay or a wait, and the last traces.

The memory copy is the truth while the hub runs; SQLite is its durable mirror. When the
database is full, read-only or gone, writes fail, the engine keeps running from memory, and
``health()`` says what failed and since when, until a write succeeds again.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from anycar.errors import ConfigError
from anycar.policy.db import open_db

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS automation_enabled (id TEXT PRIMARY KEY, enabled INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS automation_defs (
    kind TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, owner TEXT NOT NULL, updated REAL NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE TABLE IF NOT EXISTS automation_since (key TEXT PRIMARY KEY, since REAL NOT NULL);
CREATE TABLE IF NOT EXISTS automation_runs (run_id TEXT PRIMARY KEY, automation TEXT NOT NULL, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS automation_traces (
    run_id TEXT PRIMARY KEY, automation TEXT NOT NULL, started REAL NOT NULL, body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS automation_traces_by ON automation_traces(automation, started);
"""


class Store:
    """SQLite behind a memory copy; ``path=None`` keeps everything in memory only."""

    def __init__(
        self, path: str | Path | None, *, traces_per_automation: int = 20, recovery_s: float = 10.0
    ) -> None:
        self.traces_per_automation = traces_per_automation
        self.recovery_s = recovery_s  # no failure for this long after a success: healthy again
        self.failure: str | None = None
        self.failed_since: float | None = None
        self.last_failed_at = 0.0
        self.last_ok_at = 0.0
        self.failed_writes = 0
        self.on_change: Callable[[str | None], None] | None = None  # told the error, or None when well again
        self._db: sqlite3.Connection | None = None
        if path is not None:
            try:
                self._db = open_db(path, SCHEMA)
            except (sqlite3.Error, ConfigError) as exc:  # open_db names the file in a ConfigError
                self._failed(exc)

    # -- health --------------------------------------------------------------------------------
    def _failed(self, exc: Exception) -> None:
        if self.failure is None:
            log.warning("automations database write failed, keeping state in memory: %s", exc)
            self.failed_since = time.time()
        self.failure = str(exc)
        self.last_failed_at = time.monotonic()
        self.failed_writes += 1
        if self.on_change is not None:
            self.on_change(self.failure)

    def _succeeded(self) -> None:
        """A write went through: healthy again once no write has failed for ``recovery_s`` (a full
        disk lets small writes through and refuses big ones: that is still failing)."""
        self.last_ok_at = time.monotonic()
        self._recovered()

    def _recovered(self) -> None:
        if (
            self.failure is not None
            and self.last_ok_at > self.last_failed_at
            and time.monotonic() - self.last_failed_at >= self.recovery_s
        ):
            log.warning("automations database writable again")
            self.failure = None
            self.failed_since = None
            if self.on_change is not None:
                self.on_change(None)

    def health(self) -> dict[str, Any]:
        self._recovered()
        return {
            "database": "memory only"
            if self._db is None and self.failure is None
            else ("ok" if self.failure is None else "failing"),
            "error": self.failure,
            "failing_since": self.failed_since,
            "failed_writes": self.failed_writes,
        }

    def _write(self, sql: str, args: tuple[Any, ...] = ()) -> None:
        if self._db is None:
            return
        try:
            self._db.execute(sql, args)
        except sqlite3.Error as exc:
            self._failed(exc)
            return
        self._succeeded()

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        if self._db is None:
            return []
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            self._failed(exc)
            return []

    @property
    def connection(self) -> sqlite3.Connection | None:
        return self._db

    # -- enabled flags -------------------------------------------------------------------------
    def enabled_flags(self) -> dict[str, bool]:
        return {r["id"]: bool(r["enabled"]) for r in self._read("SELECT id, enabled FROM automation_enabled")}

    def set_enabled(self, automation: str, enabled: bool) -> None:
        self._write(
            "INSERT OR REPLACE INTO automation_enabled (id, enabled) VALUES (?, ?)",
            (automation, int(enabled)),
        )

    # -- definitions given over REST -------------------------------------------------------------
    def definitions(self) -> list[tuple[str, str, dict[str, Any], str]]:
        out = []
        for r in self._read("SELECT kind, id, body, owner FROM automation_defs ORDER BY updated"):
            out.append((r["kind"], r["id"], json.loads(r["body"]), r["owner"]))
        return out

    def put_definition(self, kind: str, ident: str, body: dict[str, Any], owner: str) -> None:
        self._write(
            "INSERT OR REPLACE INTO automation_defs (kind, id, body, owner, updated) VALUES (?, ?, ?, ?, ?)",
            (kind, ident, json.dumps(body, default=str), owner, time.time()),
        )

    def drop_definition(self, kind: str, ident: str) -> None:
        self._write("DELETE FROM automation_defs WHERE kind = ? AND id = ?", (kind, ident))

    # -- "true since" of for: timers ----------------------------------------------------------------
    def since_all(self) -> dict[str, float]:
        return {r["key"]: float(r["since"]) for r in self._read("SELECT key, since FROM automation_since")}

    def set_since(self, key: str, since: float | None) -> None:
        if since is None:
            self._write("DELETE FROM automation_since WHERE key = ?", (key,))
        else:
            self._write("INSERT OR REPLACE INTO automation_since (key, since) VALUES (?, ?)", (key, since))

    # -- runs paused in a delay or a wait ----------------------------------------------------------
    def paused_runs(self) -> list[dict[str, Any]]:
        out = []
        for r in self._read("SELECT state FROM automation_runs"):
            try:
                out.append(json.loads(r["state"]))
            except ValueError:
                continue
        return out

    def pause_run(self, run_id: str, automation: str, state: dict[str, Any]) -> None:
        self._write(
            "INSERT OR REPLACE INTO automation_runs (run_id, automation, state) VALUES (?, ?, ?)",
            (run_id, automation, json.dumps(state, default=str)),
        )

    def end_run(self, run_id: str) -> None:
        self._write("DELETE FROM automation_runs WHERE run_id = ?", (run_id,))

    # -- traces ------------------------------------------------------------------------------------
    def save_traces(self, traces: list[dict[str, Any]]) -> None:
        """Write a batch of finished traces in one transaction and keep the last N per automation."""
        if self._db is None or not traces:
            return
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany(
                    "INSERT OR REPLACE INTO automation_traces (run_id, automation, started, body) VALUES (?, ?, ?, ?)",
                    [
                        (t["run_id"], t["automation"], t["started"], json.dumps(t, default=str))
                        for t in traces
                    ],
                )
                for automation in {t["automation"] for t in traces}:
                    self._db.execute(
                        "DELETE FROM automation_traces WHERE automation = ? AND run_id NOT IN ("
                        "SELECT run_id FROM automation_traces WHERE automation = ? ORDER BY started DESC LIMIT ?)",
                        (automation, automation, self.traces_per_automation),
                    )
        except sqlite3.Error as exc:
            self._failed(exc)
            return
        self._succeeded()

    def traces(self, automation: str, limit: int) -> list[dict[str, Any]]:
        rows = self._read(
            "SELECT body FROM automation_traces WHERE automation = ? ORDER BY started DESC LIMIT ?",
            (automation, limit),
        )
        return [json.loads(r["body"]) for r in rows]

    def close(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            finally:
                self._db = None
