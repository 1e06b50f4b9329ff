"""Logistics: the orders board and the plans (proposed, accepted, superseded).

Revision ID: logistics
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "logistics"
down_revision = "0002_fleet_commands"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("ref", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("fields", sa.JSON, nullable=False),
        sa.Column("weight_kg", sa.Float, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("vehicle_id", sa.Integer, sa.ForeignKey("vehicles.id")),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
        sa.UniqueConstraint("tenant_id", "ref", name="uq_orders_tenant_ref"),
    )
    op.create_index("ix_orders_tenant_status", "orders", ["tenant_id", "status"])
    op.create_table(
        "plans",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("accepted", sa.Float),
        sa.Column("body", sa.JSON, nullable=False),
    )
    op.create_index("ix_plans_tenant_created", "plans", ["tenant_id", "created"])


def downgrade() -> None:
    op.drop_index("ix_plans_tenant_created", "plans")
    op.drop_table("plans")
    op.drop_index("ix_orders_tenant_status", "orders")
    op.drop_table("orders")
