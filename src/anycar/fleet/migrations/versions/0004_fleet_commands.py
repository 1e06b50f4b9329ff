"""fleet-commands: commands to vehicles, the accessory inventory, vendor keys, the firmware
ledger and rollouts.

Revision ID: 0002_fleet_commands
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_fleet_commands"
down_revision = "fleet_domain"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vendor_keys",
        sa.Column("key_id", sa.String(16), primary_key=True),
        sa.Column("vendor_id", sa.Integer, nullable=False),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("label", sa.String(128), nullable=False),
        sa.Column("added", sa.Float, nullable=False),
        sa.Column("revoked", sa.Float),
    )
    op.create_table(
        "firmware_releases",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("vendor_id", sa.Integer, nullable=False),
        sa.Column("product_id", sa.Integer, nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
        sa.Column("image", sa.LargeBinary, nullable=False),
        sa.Column("url_token", sa.String(64), nullable=False, unique=True),
        sa.Column("uploaded", sa.Float, nullable=False),
        sa.Column("uploaded_by", sa.String(128)),
        sa.UniqueConstraint("vendor_id", "product_id", "version", name="uq_firmware_product_version"),
    )
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("release_id", sa.Integer, sa.ForeignKey("firmware_releases.id"), nullable=False),
        sa.Column("percent", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("max_failures", sa.Integer, nullable=False),
        sa.Column("failed_before", sa.Integer, nullable=False),
        sa.Column("max_in_flight", sa.Integer, nullable=False),
        sa.Column("base_url", sa.String(512), nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
    )
    op.create_index("ix_rollouts_tenant", "rollouts", ["tenant_id"])
    op.create_table(
        "commands",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("vehicle_id", sa.Integer, sa.ForeignKey("vehicles.id"), nullable=False),
        sa.Column("command_id", sa.String(128), nullable=False, unique=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("results", sa.JSON),
        sa.Column("ttl_s", sa.Float, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("sent", sa.Float),
        sa.Column("expires", sa.Float),
        sa.Column("answered", sa.Float),
        sa.Column("user_name", sa.String(128)),
        sa.Column("rollout_id", sa.Integer, sa.ForeignKey("rollouts.id")),
        sa.Column("accessory", sa.String(48)),
    )
    op.create_index("ix_commands_vehicle_created", "commands", ["vehicle_id", "created"])
    op.create_index("ix_commands_status", "commands", ["status"])
    op.create_index("ix_commands_rollout", "commands", ["rollout_id"])
    op.create_table(
        "accessories",
        sa.Column("vehicle_id", sa.Integer, sa.ForeignKey("vehicles.id"), primary_key=True),
        sa.Column("instance", sa.String(48), primary_key=True),
        sa.Column("vendor_id", sa.Integer, nullable=False),
        sa.Column("vendor", sa.String(64), nullable=False),
        sa.Column("product_id", sa.Integer, nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("serial", sa.String(128)),
        sa.Column("firmware", sa.String(64), nullable=False),
        sa.Column("mount", sa.String(128), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
    )
    op.create_table(
        "inventory_reports",
        sa.Column("vehicle_id", sa.Integer, sa.ForeignKey("vehicles.id"), primary_key=True),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("received", sa.Float, nullable=False),
    )
    op.create_index("ix_accessories_product", "accessories", ["vendor_id", "product_id"])
    op.create_index("ix_accessories_model", "accessories", ["model"])


def downgrade() -> None:
    for name in (
        "inventory_reports",
        "accessories",
        "commands",
        "rollouts",
        "firmware_releases",
        "vendor_keys",
    ):
        op.drop_table(name)
