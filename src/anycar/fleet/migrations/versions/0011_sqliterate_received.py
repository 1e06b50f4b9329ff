"""sqlite-rate: on SQLite the dedup table ``received`` is a WITHOUT ROWID table.

As a rowid table keyed by (vehicle, boot, seq) every stored message wrote two B-trees: the
table (its rowid) and the primary key's automatic index (the key again, with the rowid). A WITHOUT
ROWID table is the key's B-tree alone: one insert and about half the bytes a message (48 instead
of 100 in a measurement of 300,000 keys), and each commit dirties one page fewer a message for
SQLite to write into its log. Nothing reads the rowid. PostgreSQL has no rowid: unchanged there.

Revision ID: sqliterate_received
Revises: late_alerts
"""

from __future__ import annotations

from alembic import op

revision = "sqliterate_received"
down_revision = "late_alerts"
branch_labels = None
depends_on = None

_COLUMNS = "vehicle VARCHAR(64) NOT NULL, boot VARCHAR(16) NOT NULL, seq BIGINT NOT NULL"


def _rebuild(rowid: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    tail = "" if rowid else " WITHOUT ROWID"
    op.execute(f"CREATE TABLE received_new ({_COLUMNS}, PRIMARY KEY (vehicle, boot, seq)){tail}")
    op.execute("INSERT INTO received_new (vehicle, boot, seq) SELECT vehicle, boot, seq FROM received")
    op.execute("DROP TABLE received")
    op.execute("ALTER TABLE received_new RENAME TO received")


def upgrade() -> None:
    _rebuild(rowid=False)


def downgrade() -> None:
    _rebuild(rowid=True)
