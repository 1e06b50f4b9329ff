"""The fleet's tests' real parts: a fresh PostgreSQL database per test (dropped after), a fresh
SQLite file, registered vehicles, and waiting with generous timeouts."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import psycopg
from sqlalchemy.engine import Engine

from anycar.fleet import registry
from anycar.fleet.db import make_engine
from anycar.fleet.migrate import upgrade
from anycar.fleet.server import FleetConfig, FleetServer

PG = "host=127.0.0.1 port=5432 user=postgres dbname=test"


@contextlib.contextmanager
def postgres_url() -> Iterator[str]:
    name = f"anycar_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def fleet_engine(
    kind: str, tmp_path: Path, migrate: Callable[[Engine], object] = upgrade
) -> Iterator[Engine]:
    """A migrated, empty fleet database: ``sqlite`` (a file in tmp_path) or ``postgres``;
    ``migrate``: the fleet's migrations, or a room's that runs them and its own (the swap's)."""
    with contextlib.ExitStack() as stack:
        url = (
            f"sqlite:///{tmp_path / 'fleet.sqlite3'}"
            if kind == "sqlite"
            else stack.enter_context(postgres_url())
        )
        engine = make_engine(url)
        migrate(engine)
        try:
            yield engine
        finally:
            engine.dispose()


async def eventually(check: Callable[[], object], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.05)


def vin(n: int) -> str:
    return f"LKY{uuid.uuid4().hex[:5].upper().replace('O', '0').replace('I', '1')}{n:09d}"[:17]


def api_only_server(engine: Engine) -> FleetServer:
    """A FleetServer on ``engine`` for API and live-feed tests: free ports, its own share group,
    a vehicle list no broker message names, no maintenance rounds."""
    return FleetServer(
        FleetConfig(
            db_url=engine.url.render_as_string(hide_password=False),
            vehicles=[f"none-{uuid.uuid4().hex[:8]}"],
            group=f"t{uuid.uuid4().hex[:8]}",
            api_port=0,
            osmand_port=0,
            maintenance_s=None,
        )
    )


def one_worker_server(
    url: str, name: str, vehicles: list[str], signing_key: Path, **options: object
) -> FleetServer:
    """A FleetServer on ``url`` with one ingest worker in a share group of its own (named
    ``name`` and a random tag), ingesting ``vehicles``, the API on a free port, no OsmAnd
    listener; ``options`` are further FleetConfig fields."""
    tag = f"{name}-{uuid.uuid4().hex[:8]}"
    return FleetServer(
        FleetConfig(
            db_url=url,
            workers=1,
            worker_id=tag,
            group=tag,
            vehicles=vehicles,
            api_port=0,
            osmand_port=None,
            signing_key=signing_key,
            **options,  # type: ignore[arg-type]
        )
    )


@contextlib.asynccontextmanager
async def live_feed_server(engine: Engine) -> AsyncIterator[tuple[FleetServer, int, str, str]]:
    """A running ``api_only_server`` with a viewer of tenant "default": (server, tenant id, the
    viewer's token, the live feed's ws:// URL)."""
    server = api_only_server(engine)
    await server.start()
    try:
        tid = registry.tenant_id(engine, "default", create=True)
        token = registry.add_user(engine, "default", "watcher", "viewer")
        yield server, tid, token, server.ready()["api"].replace("http://", "ws://") + "/api/live"
    finally:
        await server.stop()
