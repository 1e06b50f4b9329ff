"""ingest-store: a message's signal values in one row (``signal_batches``), read through a
``signal_values`` view that shows one row per value as the table did.

At 10 values a message the table of one row per value cost PostgreSQL ten heap tuples, ten
index entries, ten sequence numbers and ten foreign-key checks per message, more than the rest
of the commit. The rows already stored move: the values of one vehicle at one time become one
row (their order kept). On PostgreSQL ``signal_batches`` is range-partitioned by ``ts`` like
``positions``, with a partition for every one ``signal_values`` had (same bounds, same names
with the new table's prefix); the ids go (nothing read them). SQLite gets the same table with
JSON arrays and the same view through ``json_each``.

Revision ID: signal_batches
Revises: position_days
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "signal_batches"
down_revision = "position_days"
branch_labels = None
depends_on = None

_PG_VIEW = """
CREATE VIEW signal_values AS
SELECT b.vehicle_id, u.path, u.ts, u.num, CAST(u.value AS json) AS value, b.ts AS batch_ts
FROM signal_batches b, unnest(b.paths, b.tss, b.nums, b.vals) AS u(path, ts, num, value)
"""
_SQLITE_VIEW = """
CREATE VIEW signal_values AS
SELECT b.vehicle_id AS vehicle_id, p.value AS path,
       json_extract(b.tss, '$[' || p.key || ']') AS ts,
       json_extract(b.nums, '$[' || p.key || ']') AS num,
       b.vals -> p.key AS value, b.ts AS batch_ts
FROM signal_batches b, json_each(b.paths) AS p
"""


_HOT_TABLES = ("vehicles", "position_days")
FILLFACTOR = 50


def _children(table: str) -> list[tuple[str, str]]:
    rows = op.get_bind().execute(
        sa.text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = CAST(:t AS regclass)"
        ),
        {"t": table},
    )
    return [(str(name), str(bound)) for name, bound in rows]


def _upgrade_pg() -> None:
    op.execute(
        """CREATE TABLE signal_batches (
            vehicle_id integer NOT NULL REFERENCES vehicles (id),
            ts double precision NOT NULL,
            paths varchar(256)[] NOT NULL,
            tss double precision[] NOT NULL,
            nums double precision[] NOT NULL,
            vals text[] NOT NULL
        ) PARTITION BY RANGE (ts)"""
    )
    for name, bound in _children("signal_values"):  # names and bounds from pg_catalog
        new = re.sub(r"^signal_values_", "signal_batches_", name)
        op.execute(f"CREATE TABLE {new} PARTITION OF signal_batches {bound}")
    op.execute("CREATE INDEX ix_signal_batches_vehicle_ts ON signal_batches (vehicle_id, ts)")
    # a row per vehicle and time (a message's values share one t0, so mostly one per message);
    # the batch's ts is the newest value's, here the group's own
    op.execute(
        """INSERT INTO signal_batches (vehicle_id, ts, paths, tss, nums, vals)
        SELECT vehicle_id, ts, array_agg(path ORDER BY id), array_agg(ts ORDER BY id),
               array_agg(num ORDER BY id), array_agg(CAST(value AS text) ORDER BY id)
        FROM signal_values GROUP BY vehicle_id, ts"""
    )
    op.execute("DROP TABLE signal_values")  # its partitions and its id sequence go with it
    op.execute(_PG_VIEW)
    # every batch rewrites each of its vehicles' row and vehicle-day: with room left on the page
    # those are HOT updates (no new entry in any index); full pages made most of them cold,
    # four index entries each for a vehicle. Pages written from now on keep the room.
    for table in _HOT_TABLES:
        op.execute(f"ALTER TABLE {table} SET (fillfactor = {FILLFACTOR})")


def _upgrade_sqlite() -> None:
    op.create_table(
        "signal_batches",
        sa.Column("vehicle_id", sa.Integer, sa.ForeignKey("vehicles.id"), nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("paths", sa.JSON, nullable=False),
        sa.Column("tss", sa.JSON, nullable=False),
        sa.Column("nums", sa.JSON, nullable=False),
        sa.Column("vals", sa.JSON, nullable=False),
    )
    op.create_index("ix_signal_batches_vehicle_ts", "signal_batches", ["vehicle_id", "ts"])
    op.execute(
        """INSERT INTO signal_batches (vehicle_id, ts, paths, tss, nums, vals)
        SELECT vehicle_id, ts, json_group_array(path), json_group_array(ts), json_group_array(num),
               json_group_array(json(coalesce(value, 'null')))
        FROM (SELECT * FROM signal_values ORDER BY vehicle_id, ts, id) GROUP BY vehicle_id, ts"""
    )
    op.drop_index("ix_signal_values_vehicle_ts", "signal_values")
    op.drop_table("signal_values")
    op.execute(_SQLITE_VIEW)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _upgrade_pg()
    else:
        _upgrade_sqlite()


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.execute("DROP VIEW signal_values")
    if postgres:
        for table in _HOT_TABLES:
            op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
        op.execute("CREATE SEQUENCE signal_values_id_seq")
        op.execute(
            """CREATE TABLE signal_values (
                id bigint NOT NULL DEFAULT nextval('signal_values_id_seq'),
                vehicle_id integer NOT NULL REFERENCES vehicles (id),
                path varchar(256) NOT NULL,
                ts double precision NOT NULL,
                num double precision,
                value json
            ) PARTITION BY RANGE (ts)"""
        )
        op.execute("ALTER SEQUENCE signal_values_id_seq OWNED BY signal_values.id")
        for name, bound in _children("signal_batches"):
            old = re.sub(r"^signal_batches_", "signal_values_", name)
            op.execute(f"CREATE TABLE {old} PARTITION OF signal_values {bound}")
        op.execute("CREATE INDEX ix_signal_values_vehicle_ts ON signal_values (vehicle_id, ts)")
        op.execute(
            """INSERT INTO signal_values (vehicle_id, path, ts, num, value)
            SELECT b.vehicle_id, u.path, u.ts, u.num, CAST(u.value AS json)
            FROM signal_batches b, unnest(b.paths, b.tss, b.nums, b.vals) AS u(path, ts, num, value)"""
        )
        op.execute("DROP TABLE signal_batches")
        return
    op.create_table(
        "signal_values",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("vehicle_id", sa.Integer, sa.ForeignKey("vehicles.id"), nullable=False),
        sa.Column("path", sa.String(256), nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("num", sa.Float),
        sa.Column("value", sa.JSON),
    )
    op.create_index("ix_signal_values_vehicle_ts", "signal_values", ["vehicle_id", "ts"])
    op.execute(
        """INSERT INTO signal_values (vehicle_id, path, ts, num, value)
        SELECT b.vehicle_id, p.value, json_extract(b.tss, '$[' || p.key || ']'),
               json_extract(b.nums, '$[' || p.key || ']'), b.vals -> p.key
        FROM signal_batches b, json_each(b.paths) AS p"""
    )
    op.drop_index("ix_signal_batches_vehicle_ts", "signal_batches")
    op.drop_table("signal_batches")
