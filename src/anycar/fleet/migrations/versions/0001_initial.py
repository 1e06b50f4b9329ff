"""The first schema: tenants, users, vehicles, positions, signal values, events, dead letters, dedup.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer, "sqlite")  # SQLite's rowid must be INTEGER


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("created", sa.Float, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created", sa.Float, nullable=False),
        sa.UniqueConstraint("tenant_id", "name", name="uq_users_tenant_name"),
    )
    op.create_table(
        "vehicles",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("vin", sa.String(17), nullable=False),
        sa.Column("brand", sa.String(64), nullable=False),
        sa.Column("wire_id", sa.String(64), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("mqtt_hash", sa.String(256)),
        sa.Column("revoked", sa.Boolean, nullable=False),
        sa.Column("online", sa.Boolean),
        sa.Column("last_seen", sa.Float),
        sa.Column("last_ts", sa.Float),
        sa.Column("last_lat", sa.Float),
        sa.Column("last_lon", sa.Float),
        sa.Column("last_speed", sa.Float),
        sa.Column("last_heading", sa.Float),
        sa.Column("created", sa.Float, nullable=False),
        sa.UniqueConstraint("tenant_id", "vin", name="uq_vehicles_tenant_vin"),
    )
    op.create_index("ix_vehicles_tenant", "vehicles", ["tenant_id"])
    op.create_table(
        "positions",
        sa.Column("id", BIG, primary_key=True),
        sa.Column("vehicle_id", sa.Integer, sa.ForeignKey("vehicles.id"), nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("speed", sa.Float),
        sa.Column("heading", sa.Float),
        sa.Column("source", sa.String(16), nullable=False),
    )
    op.create_index("ix_positions_vehicle_ts", "positions", ["vehicle_id", "ts"])
    op.create_table(
        "signal_values",
        sa.Column("id", BIG, primary_key=True),
        sa.Column("vehicle_id", sa.Integer, sa.ForeignKey("vehicles.id"), nullable=False),
        sa.Column("path", sa.String(256), nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("num", sa.Float),
        sa.Column("value", sa.JSON),
    )
    op.create_index("ix_signal_values_vehicle_ts", "signal_values", ["vehicle_id", "ts"])
    op.create_table(
        "events",
        sa.Column("id", BIG, primary_key=True),
        sa.Column("vehicle_id", sa.Integer, sa.ForeignKey("vehicles.id"), nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("subject", sa.Text),
        sa.Column("message", sa.Text),
        sa.Column("data", sa.JSON),
        sa.Column("lat", sa.Float),
        sa.Column("lon", sa.Float),
    )
    op.create_index("ix_events_vehicle_ts", "events", ["vehicle_id", "ts"])
    op.create_table(
        "dead_letters",
        sa.Column("id", BIG, primary_key=True),
        sa.Column("received", sa.Float, nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("vehicle_id", sa.Integer, sa.ForeignKey("vehicles.id")),
    )
    op.create_index("ix_dead_letters_received", "dead_letters", ["received"])
    op.create_table(
        "received",
        sa.Column("vehicle", sa.String(64), primary_key=True),
        sa.Column("boot", sa.String(16), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
    )


def downgrade() -> None:
    for name in (
        "received",
        "dead_letters",
        "events",
        "signal_values",
        "positions",
        "vehicles",
        "users",
        "tenants",
    ):
        op.drop_table(name)
