"""The hub's SQLite file: where registry, trust keys, grants and events outlive a restart.

One file holds every room's tables; each room opens its own connection. The default path is
``$ANYCAR_HUB_DB``, else ``$XDG_DATA_HOME/anycar/hub.sqlite3`` (``~/.local/share`` if unset).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from anycar.errors import ConfigError

MEMORY = ":memory:"


def default_db_path() -> Path:
    env = os.environ.get("ANYCAR_HUB_DB")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "anycar" / "hub.sqlite3"


def open_db(path: str | Path | None, schema: str) -> sqlite3.Connection:
    """Open (creating folders and tables as needed) the hub database at ``path``."""
    target = default_db_path() if path is None else path
    try:
        if str(target) != MEMORY:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(target), isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 5000")
        if str(target) != MEMORY:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")  # WAL stays consistent on power loss
        conn.executescript(schema)
    except (OSError, sqlite3.Error) as exc:  # a read-only or missing data folder is the user's to fix
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(
            f"cannot open the hub database {target}: {reason}; choose a writable place with --db FILE "
            "or $ANYCAR_HUB_DB"
        ) from None
    return conn
