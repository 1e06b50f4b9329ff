"""The fleet domain: trips, stops, derivation cursors, geofences and their events, alerts, the
tenants' rule overrides, webhooks.

Revision ID: fleet_domain
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "fleet_domain"
down_revision = "0002_fleet_scale"
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def _fk(table: str) -> sa.ForeignKey:
    return sa.ForeignKey(f"{table}.id")


def upgrade() -> None:
    op.create_table(
        "trips",
        sa.Column("id", BIG, primary_key=True),
        sa.Column("tenant_id", sa.Integer, _fk("tenants"), nullable=False),
        sa.Column("vehicle_id", sa.Integer, _fk("vehicles"), nullable=False),
        sa.Column("start_ts", sa.Float, nullable=False),
        sa.Column("end_ts", sa.Float),
        sa.Column("start_lat", sa.Float),
        sa.Column("start_lon", sa.Float),
        sa.Column("end_lat", sa.Float),
        sa.Column("end_lon", sa.Float),
        sa.Column("distance_m", sa.Float, nullable=False),
        sa.Column("max_speed", sa.Float),
        sa.Column("avg_speed", sa.Float),
        sa.Column("energy_kwh", sa.Float),
        sa.Column("soc_start", sa.Float),
        sa.Column("soc_end", sa.Float),
        sa.Column("open", sa.Boolean, nullable=False),
    )
    op.create_index("ix_trips_vehicle_start", "trips", ["vehicle_id", "start_ts"])
    op.create_index("ix_trips_tenant_start", "trips", ["tenant_id", "start_ts"])
    op.create_table(
        "stops",
        sa.Column("id", BIG, primary_key=True),
        sa.Column("tenant_id", sa.Integer, _fk("tenants"), nullable=False),
        sa.Column("vehicle_id", sa.Integer, _fk("vehicles"), nullable=False),
        sa.Column("start_ts", sa.Float, nullable=False),
        sa.Column("end_ts", sa.Float),
        sa.Column("lat", sa.Float),
        sa.Column("lon", sa.Float),
        sa.Column("open", sa.Boolean, nullable=False),
    )
    op.create_index("ix_stops_vehicle_start", "stops", ["vehicle_id", "start_ts"])
    op.create_index("ix_stops_tenant_start", "stops", ["tenant_id", "start_ts"])
    op.create_table(
        "derive_cursors",
        sa.Column("vehicle_id", sa.Integer, _fk("vehicles"), primary_key=True),
        sa.Column("until_ts", sa.Float, nullable=False),
        sa.Column("state", sa.JSON, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
    )
    op.create_table(
        "geofences",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.Integer, _fk("tenants"), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("geometry", sa.JSON, nullable=False),
        sa.Column("radius_m", sa.Float),
        sa.Column("speed_limit_kmh", sa.Float),
        sa.Column("properties", sa.JSON, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
    )
    op.create_index("ix_geofences_tenant", "geofences", ["tenant_id"])
    op.create_table(
        "geofence_events",
        sa.Column("id", BIG, primary_key=True),
        sa.Column("tenant_id", sa.Integer, _fk("tenants"), nullable=False),
        sa.Column("vehicle_id", sa.Integer, _fk("vehicles"), nullable=False),
        sa.Column("geofence_id", sa.Integer, nullable=False),
        sa.Column("geofence_name", sa.String(128), nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("lat", sa.Float),
        sa.Column("lon", sa.Float),
    )
    op.create_index("ix_geofence_events_tenant_ts", "geofence_events", ["tenant_id", "ts"])
    op.create_table(
        "alerts",
        sa.Column("id", BIG, primary_key=True),
        sa.Column("tenant_id", sa.Integer, _fk("tenants"), nullable=False),
        sa.Column("vehicle_id", sa.Integer, _fk("vehicles"), nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("data", sa.JSON),
        sa.Column("lat", sa.Float),
        sa.Column("lon", sa.Float),
        sa.Column("cleared_ts", sa.Float),
        sa.Column("ack_ts", sa.Float),
        sa.Column("ack_by", sa.String(128)),
        sa.Column("ack_note", sa.Text),
    )
    op.create_index("ix_alerts_tenant_ts", "alerts", ["tenant_id", "ts"])
    op.create_index("ix_alerts_vehicle_type", "alerts", ["vehicle_id", "type"])
    op.create_table(
        "tenant_rules",
        sa.Column("tenant_id", sa.Integer, _fk("tenants"), primary_key=True),
        sa.Column("override", sa.JSON, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
    )
    op.create_table(
        "webhooks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.Integer, _fk("tenants"), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("events", sa.JSON, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("delivered", sa.BigInteger, nullable=False),
        sa.Column("failed", sa.BigInteger, nullable=False),
        sa.Column("last_status", sa.String(256)),
        sa.Column("last_ts", sa.Float),
    )
    op.create_index("ix_webhooks_tenant", "webhooks", ["tenant_id"])


def downgrade() -> None:
    for name in (
        "webhooks",
        "tenant_rules",
        "alerts",
        "geofence_events",
        "geofences",
        "derive_cursors",
        "stops",
        "trips",
    ):
        op.drop_table(name)
