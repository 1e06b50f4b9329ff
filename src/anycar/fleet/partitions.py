"""PostgreSQL's day partitions of the time series: made ahead of time, listed, dropped when old.

``positions`` and ``signal_batches`` are range-partitioned by ``ts`` (epoch seconds) on
PostgreSQL: one partition per UTC day named ``<table>_pYYYYMMDD``, ``<table>_before`` for every
time before the fleet was migrated, ``<table>_default`` for a time no day partition covers yet (a
backlog from a day never made, a clock far ahead). Making a day whose rows already sit in the
default partition moves them first, so a new partition never fails on them. Every change runs
under one advisory lock, so two processes maintaining the same database take turns.
SQLite has no partitions: these functions do nothing there and retention deletes rows instead.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from anycar.fleet import db

DAY = 86_400
TABLES = ("positions", "signal_batches")
LOCK = 0x616E_7963  # pg_advisory_xact_lock key of the fleet's maintenance ("anyc")
_DAY_NAME = re.compile(r"_p(\d{8})$")


@dataclass(frozen=True, slots=True)
class Partition:
    table: str  # the parent
    name: str
    start: float | None  # None: MINVALUE (the ``_before`` partition) or the default partition
    end: float | None
    default: bool = False


def day_start(ts: float) -> float:
    return float(int(ts // DAY) * DAY)


def day_name(table: str, start: float) -> str:
    return f"{table}_p{dt.datetime.fromtimestamp(start, dt.UTC):%Y%m%d}"


def lock(conn: Connection) -> None:
    db.hold_advisory_lock(conn, LOCK)


def partitions(conn: Connection, table: str) -> list[Partition]:
    """The partitions of ``table`` with their bounds (read from pg_catalog), oldest first."""
    rows = conn.execute(
        text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = CAST(:t AS regclass)"
        ),
        {"t": table},
    )
    out = []
    for name, bound in rows:
        if bound == "DEFAULT":
            out.append(Partition(table, name, None, None, default=True))
            continue
        found = re.match(r"FOR VALUES FROM \((.+)\) TO \((.+)\)", bound)
        if found is None:
            continue
        low, high = (None if v == "MINVALUE" else float(v.strip("'")) for v in found.groups())
        out.append(Partition(table, name, low, high))
    return sorted(out, key=lambda p: (p.default, p.start if p.start is not None else float("-inf")))


def ensure_days(engine: Engine, first: float, last: float) -> list[str]:
    """Make a partition for every UTC day from the one holding ``first`` to the one holding
    ``last`` that no partition covers yet; returns the names made."""
    if engine.dialect.name != "postgresql":
        return []
    made: list[str] = []
    with engine.begin() as conn:
        lock(conn)
        for table in TABLES:
            existing = partitions(conn, table)
            start = day_start(first)
            while start <= last:
                end = start + DAY
                if not any(_overlaps(p, start, end) for p in existing):
                    name = day_name(table, start)
                    _make(conn, table, name, start, end)
                    existing.append(Partition(table, name, start, end))
                    made.append(name)
                start = end
    return made


def _overlaps(p: Partition, start: float, end: float) -> bool:
    if p.default:
        return False
    low = p.start if p.start is not None else float("-inf")
    high = p.end if p.end is not None else float("inf")
    return low < end and start < high


def _make(conn: Connection, table: str, name: str, start: float, end: float) -> None:
    # names come from our own table list and a date; bounds are floats we computed
    conn.execute(text(f"LOCK TABLE {table}_default IN ACCESS EXCLUSIVE MODE"))  # nosec B608
    conn.execute(text(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS)"))
    conn.execute(
        text(  # rows that went to the default partition for want of this day move first
            f"WITH moved AS (DELETE FROM {table}_default WHERE ts >= :a AND ts < :b RETURNING *) "  # nosec B608
            f"INSERT INTO {name} SELECT * FROM moved"
        ),
        {"a": start, "b": end},
    )
    conn.execute(
        text(f"ALTER TABLE {name} ADD CONSTRAINT {name}_range CHECK (ts >= {start!r} AND ts < {end!r})")
    )
    conn.execute(
        text(f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ({start!r}) TO ({end!r})")
    )
    conn.execute(text(f"ALTER TABLE {name} DROP CONSTRAINT {name}_range"))


def drop_before(engine: Engine, cutoff: float) -> list[str]:
    """Drop every day partition that ends at or before ``cutoff`` (all its rows are older)."""
    if engine.dialect.name != "postgresql":
        return []
    dropped: list[str] = []
    with engine.begin() as conn:
        lock(conn)
        for table in TABLES:
            for p in partitions(conn, table):
                if _DAY_NAME.search(p.name) and p.end is not None and p.end <= cutoff:
                    conn.execute(text(f"DROP TABLE {p.name}"))  # a name read from pg_catalog
                    dropped.append(p.name)
    return dropped


_CHILD = re.compile(rf"^({'|'.join(TABLES)})_(before|default|p\d{{8}})$")


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Alembic's ``include_name``: compare the parents, not their day partitions (which come and
    go with the maintenance, outside the migrations)."""
    return not (type_ == "table" and name is not None and _CHILD.match(name))
