"""sqlite-marks: on SQLite the dedup is one row per (vehicle, boot), ``received_marks``.

Each stored message wrote a key of its own into ``received`` (vehicle, boot, seq): a B-tree keyed
by vehicle first, so a batch of 500 vehicles dirtied ~500 of its leaf pages, each written whole
into the WAL and again by the checkpoint, and that cost grew with the file (docs/performance.md,
sqlite-rate and sqlite-marks). Now a boot's seqs seen are a high-water mark (every seq at or
under ``hwm``) in one small row rewritten once a batch; a seq that arrives above a gap waits in
``received`` until the gap fills, ``above`` counting those rows. The mark takes the place of
``received_floor`` on SQLite: the upgrade folds each floor and each gapless run of ``received``
just above it into the mark and deletes the rows under it; the downgrade writes the marks back
as floors (the rows left above them stay), so both ways every key seen stays seen.

PostgreSQL keeps ``received``/``received_floor`` (two workers share a vehicle's messages there:
one row per vehicle would serialise them); it gets the table, empty, so the schema is one.

Revision ID: sqlitemarks_received_marks
Revises: pgtail_path_sets
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "sqlitemarks_received_marks"
down_revision = "pgtail_path_sets"
branch_labels = None
depends_on = None

_UNDER_MARK = (
    "DELETE FROM received WHERE seq <= (SELECT m.hwm FROM received_marks m "
    "WHERE m.vehicle = received.vehicle AND m.boot = received.boot)"
)
# the gapless run of received just above each mark: seq - row_number() equals hwm along it
_RUNS = """
UPDATE received_marks SET hwm = r.top, updated = :now
FROM (
    SELECT vehicle AS rv, boot AS rb, max(seq) AS top FROM (
        SELECT r.vehicle, r.boot, r.seq, m.hwm,
               r.seq - row_number() OVER (PARTITION BY r.vehicle, r.boot ORDER BY r.seq) AS k
        FROM received r JOIN received_marks m ON m.vehicle = r.vehicle AND m.boot = r.boot
    ) WHERE k = hwm GROUP BY vehicle, boot
) AS r
WHERE received_marks.vehicle = r.rv AND received_marks.boot = r.rb
"""


def upgrade() -> None:
    op.create_table(
        "received_marks",
        sa.Column("vehicle", sa.String(64), primary_key=True),
        sa.Column("boot", sa.String(16), primary_key=True),
        sa.Column("hwm", sa.BigInteger, nullable=False),
        sa.Column("above", sa.Integer, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
        sqlite_with_rowid=False,
    )
    if op.get_bind().dialect.name != "sqlite":
        return
    now = {"now": time.time()}
    op.execute(
        "INSERT INTO received_marks (vehicle, boot, hwm, above, updated) "
        "SELECT vehicle, boot, floor, 0, updated FROM received_floor"
    )
    op.get_bind().execute(
        sa.text(
            "INSERT INTO received_marks (vehicle, boot, hwm, above, updated) "
            "SELECT vehicle, boot, 0, 0, :now FROM received WHERE true GROUP BY vehicle, boot "
            "ON CONFLICT DO NOTHING"
        ),
        now,
    )
    op.execute(_UNDER_MARK)  # resends that raced a prune: under their floor, seen
    op.get_bind().execute(sa.text(_RUNS), now)
    op.execute(_UNDER_MARK)
    op.execute(
        "UPDATE received_marks SET above = (SELECT count(*) FROM received r "
        "WHERE r.vehicle = received_marks.vehicle AND r.boot = received_marks.boot)"
    )
    op.execute("DELETE FROM received_floor")  # the marks are SQLite's floors now


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "INSERT INTO received_floor (vehicle, boot, floor, updated) "
            "SELECT vehicle, boot, hwm, updated FROM received_marks WHERE true "
            "ON CONFLICT (vehicle, boot) DO UPDATE SET floor = max(floor, excluded.floor), "
            "updated = excluded.updated"
        )
    op.drop_table("received_marks")
