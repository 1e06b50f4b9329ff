"""The swap room's first schema: stations, slots, packs and their history, id tokens,
reservations, swaps (with what they billed) and alerts.

Revision ID: swap_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "swap_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "swap_alerts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("station_id", sa.String(length=48), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("swap_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_swap_alerts_ts", "swap_alerts", ["ts"], unique=False)
    op.create_table(
        "swap_id_tokens",
        sa.Column("token", sa.String(length=255), nullable=False),
        sa.Column("vehicle_id", sa.Integer(), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["vehicles.id"],
        ),
        sa.PrimaryKeyConstraint("token"),
    )
    op.create_table(
        "swap_stations",
        sa.Column("id", sa.String(length=48), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("password_hash", sa.String(length=64), nullable=True),
        sa.Column("security_profile", sa.Integer(), nullable=False),
        sa.Column("layout", sa.String(length=64), nullable=False),
        sa.Column("grid_limit_kw", sa.Float(), nullable=False),
        sa.Column("tariff", sa.JSON(), nullable=True),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("last_seen", sa.Float(), nullable=True),
        sa.Column("boot_reason", sa.String(length=32), nullable=True),
        sa.Column("vendor", sa.String(length=50), nullable=True),
        sa.Column("model", sa.String(length=50), nullable=True),
        sa.Column("firmware", sa.String(length=50), nullable=True),
        sa.Column("firmware_status", sa.String(length=40), nullable=True),
        sa.Column("clock_skew_s", sa.Float(), nullable=True),
        sa.Column("created", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "swap_packs",
        sa.Column("serial", sa.String(length=50), nullable=False),
        sa.Column("chemistry", sa.String(length=16), nullable=False),
        sa.Column("capacity_kwh", sa.Float(), nullable=False),
        sa.Column("soh", sa.Float(), nullable=False),
        sa.Column("soc", sa.Float(), nullable=False),
        sa.Column("cycles", sa.Float(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("station_id", sa.String(length=48), nullable=True),
        sa.Column("evse_id", sa.Integer(), nullable=True),
        sa.Column("vehicle_id", sa.Integer(), nullable=True),
        sa.Column("updated", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["swap_stations.id"],
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["vehicles.id"],
        ),
        sa.PrimaryKeyConstraint("serial"),
    )
    op.create_index("ix_swap_packs_station", "swap_packs", ["station_id", "state"], unique=False)
    op.create_table(
        "swap_reservations",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("station_id", sa.String(length=48), nullable=False),
        sa.Column("vehicle_id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=255), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=True),
        sa.Column("expires", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["swap_stations.id"],
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["vehicles.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_swap_reservations_station", "swap_reservations", ["station_id", "status"], unique=False
    )
    op.create_table(
        "swap_slots",
        sa.Column("station_id", sa.String(length=48), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("updated", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["swap_stations.id"],
        ),
        sa.PrimaryKeyConstraint("station_id", "evse_id"),
    )
    op.create_table(
        "swap_swaps",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("station_id", sa.String(length=48), nullable=False),
        sa.Column("vehicle_id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("reservation_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("requested", sa.Float(), nullable=False),
        sa.Column("accepted", sa.Float(), nullable=True),
        sa.Column("in_ts", sa.Float(), nullable=True),
        sa.Column("out_ts", sa.Float(), nullable=True),
        sa.Column("finished", sa.Float(), nullable=True),
        sa.Column("pack_old", sa.String(length=50), nullable=True),
        sa.Column("pack_new", sa.String(length=50), nullable=True),
        sa.Column("soc_old", sa.Float(), nullable=True),
        sa.Column("soc_new", sa.Float(), nullable=True),
        sa.Column("energy_kwh", sa.Float(), nullable=True),
        sa.Column("amount", sa.Float(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["swap_stations.id"],
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["vehicles.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_swap_swaps_station_requested", "swap_swaps", ["station_id", "requested"], unique=False
    )
    op.create_index("ix_swap_swaps_tenant", "swap_swaps", ["tenant_id", "requested"], unique=False)
    op.create_table(
        "swap_pack_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("serial", sa.String(length=50), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("event", sa.String(length=24), nullable=False),
        sa.Column("station_id", sa.String(length=48), nullable=True),
        sa.Column("evse_id", sa.Integer(), nullable=True),
        sa.Column("vehicle_id", sa.Integer(), nullable=True),
        sa.Column("soc", sa.Float(), nullable=True),
        sa.Column("soh", sa.Float(), nullable=True),
        sa.Column("swap_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["serial"],
            ["swap_packs.serial"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_swap_pack_history_serial_ts", "swap_pack_history", ["serial", "ts"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_swap_pack_history_serial_ts", table_name="swap_pack_history")
    op.drop_table("swap_pack_history")
    op.drop_index("ix_swap_swaps_tenant", table_name="swap_swaps")
    op.drop_index("ix_swap_swaps_station_requested", table_name="swap_swaps")
    op.drop_table("swap_swaps")
    op.drop_table("swap_slots")
    op.drop_index("ix_swap_reservations_station", table_name="swap_reservations")
    op.drop_table("swap_reservations")
    op.drop_index("ix_swap_packs_station", table_name="swap_packs")
    op.drop_table("swap_packs")
    op.drop_table("swap_stations")
    op.drop_table("swap_id_tokens")
    op.drop_index("ix_swap_alerts_ts", table_name="swap_alerts")
    op.drop_table("swap_alerts")
