"""route-push: a vehicle's route versions are unique, ``(vehicle_id, version)``.

Two pushes of routes at the same moment (a console move and a route keeper pass) could both read
the same newest version and both write the next one, so a hub would see two different routes
under one version. ``push_routes`` now takes one push of a tenant's routes at a time on
PostgreSQL, and this index makes a duplicate an error on both databases. A database that already
holds duplicates has each vehicle's versions renumbered in the order they were written; where
there are none (the versions were always the newest plus one) that changes nothing.

Revision ID: routepush_unique_version
Revises: sqlitemarks_received_marks
"""

from __future__ import annotations

from alembic import op

revision = "routepush_unique_version"
down_revision = "sqlitemarks_received_marks"
branch_labels = None
depends_on = None

_RENUMBER = (
    "UPDATE route_pushes SET version = (SELECT count(*) FROM route_pushes r "
    "WHERE r.vehicle_id = route_pushes.vehicle_id AND r.id <= route_pushes.id) "
    "WHERE vehicle_id IN (SELECT vehicle_id FROM route_pushes GROUP BY vehicle_id, version "
    "HAVING count(*) > 1)"
)


def upgrade() -> None:
    op.drop_index("ix_route_pushes_vehicle", "route_pushes")
    op.execute(_RENUMBER)
    op.create_index("ux_route_pushes_vehicle_version", "route_pushes", ["vehicle_id", "version"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_route_pushes_vehicle_version", "route_pushes")
    op.create_index("ix_route_pushes_vehicle", "route_pushes", ["vehicle_id", "version"])
