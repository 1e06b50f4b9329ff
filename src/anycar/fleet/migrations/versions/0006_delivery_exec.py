"""delivery-exec: routes pushed, deliveries (PIN, ETA, notifications), hub POD keys, proofs of delivery.

Revision ID: delivery_exec
Revises: logistics
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "delivery_exec"
down_revision = "logistics"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "route_pushes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("vehicle_id", sa.Integer, sa.ForeignKey("vehicles.id"), nullable=False),
        sa.Column("plan_id", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("command_id", sa.String(64), nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("route", sa.JSON, nullable=False),
    )
    op.create_index("ix_route_pushes_vehicle", "route_pushes", ["vehicle_id", "version"])
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("order_ref", sa.String(64), nullable=False),
        sa.Column("vehicle_id", sa.Integer, sa.ForeignKey("vehicles.id")),
        sa.Column("plan_id", sa.Integer, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("weight_kg", sa.Float, nullable=False),
        sa.Column("window", sa.String(64)),
        sa.Column("planned", sa.String(8)),
        sa.Column("pin", sa.String(16)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("eta_ts", sa.Float),
        sa.Column("eta_updated", sa.Float),
        sa.Column("eta_source", sa.String(64)),
        sa.Column("notified", sa.JSON, nullable=False),
    )
    op.create_index("ix_deliveries_tenant_order", "deliveries", ["tenant_id", "order_ref"], unique=True)
    op.create_table(
        "hub_keys",
        sa.Column("vehicle_id", sa.Integer, sa.ForeignKey("vehicles.id"), primary_key=True),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("first_seen", sa.Float, nullable=False),
    )
    op.create_table(
        "pods",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("vehicle_id", sa.Integer, sa.ForeignKey("vehicles.id"), nullable=False),
        sa.Column("order_ref", sa.String(64), nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("verified", sa.Boolean, nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("exceptions", sa.JSON, nullable=False),
        sa.Column("record", sa.JSON, nullable=False),
        sa.Column("received", sa.Float, nullable=False),
        sa.Column("note", sa.Text),
    )
    op.create_index("ix_pods_tenant_order", "pods", ["tenant_id", "order_ref"])
    op.create_table(
        "driver_links",
        sa.Column("token_sha256", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("vehicle_id", sa.Integer, sa.ForeignKey("vehicles.id"), nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("expires", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("driver_links")
    op.drop_index("ix_pods_tenant_order", "pods")
    op.drop_table("pods")
    op.drop_table("hub_keys")
    op.drop_index("ix_deliveries_tenant_order", "deliveries")
    op.drop_table("deliveries")
    op.drop_index("ix_route_pushes_vehicle", "route_pushes")
    op.drop_table("route_pushes")
