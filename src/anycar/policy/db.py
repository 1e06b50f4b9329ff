"""The hub's SQLite file: where registry, trust keys, grants and events outlive a restart.

One file holds every room's tables. The stores of one file share one connection (``open_db``
hands out the same connection, counted, and ``close`` on it only closes the last user), so that
a change spanning stores (commissioning: registry row and grant row) is one transaction:
``with transaction(conn): ...``. The event log has a connection of its own, used only by its
writer thread. The default path is ``$ANYCAR_HUB_DB``, else
``$XDG_DATA_HOME/anycar/hub.sqlite3`` (``~/.local/share`` if unset).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from anycar.errors import ConfigError

MEMORY = ":memory:"


def default_db_path() -> Path:
    env = os.environ.get("ANYCAR_HUB_DB")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "anycar" / "hub.sqlite3"


class HubConnection(sqlite3.Connection):
    """A connection that several stores hold; ``close`` lets go of one hold."""

    holds = 1
    key: str | None = None
    depth = 0  # nesting of ``transaction`` blocks

    def close(self) -> None:
        with _lock:
            self.holds -= 1
            if self.holds > 0:
                return
            if self.key is not None and _shared.get(self.key) is self:
                del _shared[self.key]
        super().close()


_shared: dict[str, HubConnection] = {}
_lock = threading.Lock()


def open_db(path: str | Path | None, schema: str, *, shared: bool = True) -> sqlite3.Connection:
    """Open (creating folders and tables as needed) the hub database at ``path``.

    ``shared`` connections are one per file and process; the event log's writer asks for its own."""
    target = default_db_path() if path is None else path
    memory = str(target) == MEMORY
    key = None if memory or not shared else str(Path(target).resolve())
    with _lock:
        conn = _shared.get(key) if key is not None else None
        if conn is not None:
            conn.holds += 1
    if conn is None:
        conn = _connect(target, memory)
        if key is not None:
            with _lock:
                raced = _shared.get(key)
                if raced is not None:
                    raced.holds += 1
                else:
                    conn.key = key
                    _shared[key] = conn
            if raced is not None:
                sqlite3.Connection.close(conn)
                conn = raced
    try:
        conn.executescript(schema)
    except sqlite3.Error as exc:
        conn.close()
        raise ConfigError(
            f"cannot open the hub database {target}: {exc}; choose a writable place with --db FILE "
            "or $ANYCAR_HUB_DB"
        ) from None
    return conn


def _connect(target: str | Path, memory: bool) -> HubConnection:
    """A new connection to ``target``; a location that cannot hold the database (read-only, not
    a folder, not a database) is a ``ConfigError`` naming the file, not a traceback."""
    conn: HubConnection | None = None
    try:
        if not memory:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            str(target), isolation_level=None, check_same_thread=False, factory=HubConnection
        )
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 5000")
        if not memory:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")  # WAL stays consistent on power loss
    except (OSError, sqlite3.Error) as exc:
        if conn is not None:
            sqlite3.Connection.close(conn)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(
            f"cannot open the hub database {target}: {reason}; choose a writable place with --db FILE "
            "or $ANYCAR_HUB_DB"
        ) from None
    return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection | None) -> Iterator[Any]:
    """All writes on ``conn`` inside the block commit together or not at all (nests: the outer
    block commits). ``None`` (a store kept in memory) makes it a plain block."""
    if conn is None:
        yield None
        return
    hub = conn if isinstance(conn, HubConnection) else None
    outer = hub is None or hub.depth == 0
    if outer:
        conn.execute("BEGIN IMMEDIATE")
    if hub is not None:
        hub.depth += 1
    try:
        yield conn
    except BaseException:
        if hub is not None:
            hub.depth -= 1
        if outer and conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    if hub is not None:
        hub.depth -= 1
    if outer:
        conn.execute("COMMIT")
