"""fleet-report: position_days, each vehicle's day of positions in one row (anycar.fleet.daily).

Backfilled from the positions already stored, with the report's own query, so the rollup is
exact from the first day.

Revision ID: position_days
Revises: pod_outbox
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "position_days"
down_revision = "pod_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "position_days",
        sa.Column("day", sa.Integer, primary_key=True),
        sa.Column("vehicle_id", sa.Integer, sa.ForeignKey("vehicles.id"), primary_key=True),
        sa.Column("fixes", sa.Integer, nullable=False),
        sa.Column("first_ts", sa.Float),
        sa.Column("last_ts", sa.Float),
        sa.Column("max_speed", sa.Float),
        sa.Column("km", sa.Float, nullable=False),
        sa.Column("first_lat", sa.Float),
        sa.Column("first_lon", sa.Float),
        sa.Column("last_lat", sa.Float),
        sa.Column("last_lon", sa.Float),
    )
    from anycar.fleet import daily  # the one rebuild the ingest's late path uses too

    daily.rebuild(op.get_bind(), float("-inf"), float("inf"))


def downgrade() -> None:
    op.drop_table("position_days")
