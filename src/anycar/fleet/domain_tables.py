"""The fleet domain's tables: trips, stops, each vehicle's derivation cursor, geofences and their
enter/exit events, alerts, the tenants' rule overrides and webhooks.

They live beside ``anycar.fleet.db`` (same ``metadata``, so Alembic and the schema test see
them) and are made by the migration ``fleet_domain``. Times are epoch seconds (float) as in the
rest of the fleet database.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    false,
)

from anycar.fleet.db import metadata

BIG = BigInteger().with_variant(Integer, "sqlite")

trips = Table(
    "trips",
    metadata,
    Column("id", BIG, primary_key=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id"), nullable=False),
    Column("vehicle_id", Integer, ForeignKey("vehicles.id"), nullable=False),
    Column("start_ts", Float, nullable=False),
    Column("end_ts", Float),  # None while under way
    Column("start_lat", Float),
    Column("start_lon", Float),
    Column("end_lat", Float),
    Column("end_lon", Float),
    Column("distance_m", Float, nullable=False),
    Column("max_speed", Float),
    Column("avg_speed", Float),
    Column("energy_kwh", Float),
    Column("soc_start", Float),
    Column("soc_end", Float),
    Column("open", Boolean, nullable=False),
)
Index("ix_trips_vehicle_start", trips.c.vehicle_id, trips.c.start_ts)
Index("ix_trips_tenant_start", trips.c.tenant_id, trips.c.start_ts)

stops = Table(
    "stops",
    metadata,
    Column("id", BIG, primary_key=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id"), nullable=False),
    Column("vehicle_id", Integer, ForeignKey("vehicles.id"), nullable=False),
    Column("start_ts", Float, nullable=False),
    Column("end_ts", Float),
    Column("lat", Float),
    Column("lon", Float),
    Column("open", Boolean, nullable=False),
)
Index("ix_stops_vehicle_start", stops.c.vehicle_id, stops.c.start_ts)
Index("ix_stops_tenant_start", stops.c.tenant_id, stops.c.start_ts)

# One row per vehicle: how far its stream has been derived, and the derivation's state there.
derive_cursors = Table(
    "derive_cursors",
    metadata,
    Column("vehicle_id", Integer, ForeignKey("vehicles.id"), primary_key=True),
    Column("until_ts", Float, nullable=False),
    Column("state", JSON, nullable=False),
    Column("updated", Float, nullable=False),
)

geofences = Table(
    "geofences",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("kind", String(16), nullable=False),  # polygon | circle
    Column("geometry", JSON, nullable=False),  # GeoJSON geometry (Polygon, or the circle's Point)
    Column("radius_m", Float),
    Column("speed_limit_kmh", Float),
    Column("properties", JSON, nullable=False),
    Column("updated", Float, nullable=False),
)
Index("ix_geofences_tenant", geofences.c.tenant_id)

geofence_events = Table(
    "geofence_events",
    metadata,
    Column("id", BIG, primary_key=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id"), nullable=False),
    Column("vehicle_id", Integer, ForeignKey("vehicles.id"), nullable=False),
    Column("geofence_id", Integer, nullable=False),  # no FK: the events outlive a deleted geofence
    Column("geofence_name", String(128), nullable=False),
    Column("ts", Float, nullable=False),
    Column("kind", String(8), nullable=False),  # enter | exit
    Column("lat", Float),
    Column("lon", Float),
)
Index("ix_geofence_events_tenant_ts", geofence_events.c.tenant_id, geofence_events.c.ts)

alerts = Table(
    "alerts",
    metadata,
    Column("id", BIG, primary_key=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id"), nullable=False),
    Column("vehicle_id", Integer, ForeignKey("vehicles.id"), nullable=False),
    Column("ts", Float, nullable=False),
    Column("type", String(32), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("data", JSON),
    Column("lat", Float),
    Column("lon", Float),
    Column("cleared_ts", Float),  # the condition ended (offline: the vehicle came back)
    Column("ack_ts", Float),
    Column("ack_by", String(128)),
    Column("ack_note", Text),
    # fleet-domain: raised from a late sample (``ts`` is the sample's time, ``raised_ts`` when it
    # was raised); withdrawn when data that came later showed it false, with the reason
    Column("late", Boolean, nullable=False, server_default=false()),
    Column("raised_ts", Float),
    Column("withdrawn_ts", Float),
    Column("withdrawn_reason", Text),
)
Index("ix_alerts_tenant_ts", alerts.c.tenant_id, alerts.c.ts)
Index("ix_alerts_vehicle_type", alerts.c.vehicle_id, alerts.c.type)

# the cloud rules' state of a vehicle after each sample time at which it changed, so a late sample
# is evaluated from the state its own time had (anycar.fleet.latealerts)
rule_checkpoints = Table(
    "rule_checkpoints",
    metadata,
    Column("vehicle_id", Integer, ForeignKey("vehicles.id"), primary_key=True),
    Column("ts", Float, primary_key=True),
    Column("state", JSON, nullable=False),
)

tenant_rules = Table(
    "tenant_rules",
    metadata,
    Column("tenant_id", Integer, ForeignKey("tenants.id"), primary_key=True),
    Column("override", JSON, nullable=False),
    Column("updated", Float, nullable=False),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id"), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("secret", String(128), nullable=False),
    Column("events", JSON, nullable=False),
    Column("created", Float, nullable=False),
    Column("delivered", BigInteger, nullable=False),
    Column("failed", BigInteger, nullable=False),
    Column("last_status", String(256)),
    Column("last_ts", Float),
)
Index("ix_webhooks_tenant", webhooks.c.tenant_id)

DOMAIN_TABLES = (trips, stops, derive_cursors, geofences, geofence_events, alerts, tenant_rules, webhooks)
