"""ops-console: a station's site (position and display name) for the fleet map.

Revision ID: swap_0002
Revises: swap_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "swap_0002"
down_revision = "swap_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "swap_sites",
        sa.Column("station_id", sa.String(length=48), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("updated", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["station_id"], ["swap_stations.id"]),
        sa.PrimaryKeyConstraint("station_id"),
    )


def downgrade() -> None:
    op.drop_table("swap_sites")
