"""swap-vehicle: the vehicle's own word on the pack it carries after a swap (reconciliation).

Revision ID: swap_0004
Revises: swap_0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "swap_0004"
down_revision = "swap_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("swap_swaps", sa.Column("reconciled", sa.String(length=16), nullable=True))
    op.add_column("swap_swaps", sa.Column("vehicle_pack", sa.String(length=50), nullable=True))
    op.add_column("swap_swaps", sa.Column("reconciled_ts", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("swap_swaps") as batch:
        batch.drop_column("reconciled_ts")
        batch.drop_column("vehicle_pack")
        batch.drop_column("reconciled")
