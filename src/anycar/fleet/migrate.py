"""Running the fleet's Alembic migrations from code: on every start and ``anycar fleet db upgrade``.

The scripts ship inside the package (``anycar/fleet/migrations``), so an installed fleet needs no
alembic.ini; the revision in the database says what has run.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

SCRIPTS = Path(__file__).parent / "migrations"


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Bring the database to ``revision`` (default the newest); returns the revision it is at."""
    cfg = _config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)
    return current(engine)


def current(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()
