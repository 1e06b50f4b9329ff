"""Alembic's environment for the swap tables: their own version table in the fleet database."""

from __future__ import annotations

from alembic import context

from anycar.swap.tables import SWAP_TABLES, metadata


def _ours(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    return type_ != "table" or (name or "") in SWAP_TABLES


connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,
    version_table="alembic_version_swap",
    include_object=_ours,
)
with context.begin_transaction():
    context.run_migrations()
