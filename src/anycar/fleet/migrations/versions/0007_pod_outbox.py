"""logistics-rest: the POD webhooks' outbox, written in the POD's own transaction.

Revision ID: pod_outbox
Revises: delivery_exec
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "pod_outbox"
down_revision = "delivery_exec"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pod_outbox",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("item", sa.JSON, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("sent", sa.Float),
    )
    op.create_index("ix_pod_outbox_sent", "pod_outbox", ["sent", "id"])


def downgrade() -> None:
    op.drop_index("ix_pod_outbox_sent", table_name="pod_outbox")
    op.drop_table("pod_outbox")
