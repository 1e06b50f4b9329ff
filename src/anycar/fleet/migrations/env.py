"""Alembic's environment for the fleet: run on the connection ``anycar.fleet.migrate`` hands in."""

from __future__ import annotations

from alembic import context

from anycar.fleet.db import metadata
from anycar.fleet.partitions import include_name

connection = context.config.attributes["connection"]
context.configure(
    connection=connection, target_metadata=metadata, render_as_batch=True, include_name=include_name
)
with context.begin_transaction():
    context.run_migrations()
