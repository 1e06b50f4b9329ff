"""fleet-domain: alerts on late data. An alert says whether it was raised from a late sample and
when, and whether (and why) later data withdrew it; the rules' state is kept at each change
(``rule_checkpoints``) so a late sample is evaluated in its own time order.

Revision ID: late_alerts
Revises: signal_batches
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "late_alerts"
down_revision = "signal_batches"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("late", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("raised_ts", sa.Float))
        batch.add_column(sa.Column("withdrawn_ts", sa.Float))
        batch.add_column(sa.Column("withdrawn_reason", sa.Text))
    op.create_table(
        "rule_checkpoints",
        sa.Column("vehicle_id", sa.Integer, sa.ForeignKey("vehicles.id"), primary_key=True),
        sa.Column("ts", sa.Float, primary_key=True),
        sa.Column("state", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rule_checkpoints")
    with op.batch_alter_table("alerts") as batch:
        for name in ("withdrawn_reason", "withdrawn_ts", "raised_ts", "late"):
            batch.drop_column(name)
