"""pg-tail: a message's list of signal paths stored once (``signal_path_sets``), its
``signal_batches`` row naming it by id.

A ``signal_batches`` row of the bench's 10 values was 783 bytes, 428 of them the ``paths``
array, the same few lists in every row of a vehicle: 810 of the 1,731 bytes of WAL a message
went to that row (pg_walinspect). With the list in its own table, written once per distinct
list, the row is ~360 bytes and a message's WAL ≈ 1,310-1,410 bytes. Rows already stored keep
their ``paths`` (``path_set`` NULL); new rows on PostgreSQL carry ``path_set`` and an empty
``paths``; the ``signal_values`` view reads whichever the row has, so every query is the same.
SQLite gets the table and the column (nothing writes them there: its rows keep ``paths``).
A set is never deleted (a fleet has a few hundred distinct lists), so ``path_set`` needs no
foreign key (and no key check per row).

Revision ID: pgtail_path_sets
Revises: sqliterate_received
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "pgtail_path_sets"
down_revision = "sqliterate_received"
branch_labels = None
depends_on = None

_PG_VIEW = """
CREATE OR REPLACE VIEW signal_values AS
SELECT b.vehicle_id, u.path, u.ts, u.num, CAST(u.value AS json) AS value, b.ts AS batch_ts
FROM signal_batches b LEFT JOIN signal_path_sets s ON s.id = b.path_set,
     unnest(CASE WHEN b.path_set IS NULL THEN b.paths ELSE s.paths END, b.tss, b.nums, b.vals)
         AS u(path, ts, num, value)
"""
_PG_VIEW_BEFORE = """
CREATE OR REPLACE VIEW signal_values AS
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
"""  # as revision signal_batches made it (SQLite rebuilds the table to drop a column)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "signal_path_sets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(64), nullable=False, unique=True),  # sha256 of the list as JSON
        sa.Column("paths", sa.ARRAY(sa.String(256)) if postgres else sa.JSON, nullable=False),
    )
    op.add_column("signal_batches", sa.Column("path_set", sa.Integer))  # a partitioned parent: all
    if postgres:
        op.execute(_PG_VIEW)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute(
            "UPDATE signal_batches b SET paths = s.paths, path_set = NULL FROM signal_path_sets s "
            "WHERE s.id = b.path_set"
        )
        op.execute(_PG_VIEW_BEFORE)
        op.drop_column("signal_batches", "path_set")
    else:
        op.execute("DROP VIEW signal_values")
        with op.batch_alter_table("signal_batches") as batch:
            batch.drop_column("path_set")
        op.execute(_SQLITE_VIEW)
    op.drop_table("signal_path_sets")
