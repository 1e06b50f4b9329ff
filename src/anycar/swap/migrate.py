"""Running the swap room's Alembic scripts (after the fleet's, which make tenants and vehicles)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine

from anycar.fleet.migrate import upgrade as fleet_upgrade

SCRIPTS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_swap"


def upgrade(engine: Engine) -> str | None:
    """The fleet's migrations, then the swap tables'; returns the swap revision."""
    fleet_upgrade(engine)
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")
    with engine.connect() as connection:
        return MigrationContext.configure(
            connection, opts={"version_table": VERSION_TABLE}
        ).get_current_revision()
