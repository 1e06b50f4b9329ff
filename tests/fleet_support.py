"""The fleet's tests' real parts: a fresh PostgreSQL database per test (dropped after), a fresh
SQLite file, registered vehicles, and waiting with generous timeouts."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
from sqlalchemy.engine import Engine

from anycar.fleet.db import make_engine
from anycar.fleet.migrate import upgrade

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
def fleet_engine(kind: str, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty fleet database: ``sqlite`` (a file in tmp_path) or ``postgres``."""
    with contextlib.ExitStack() as stack:
        url = (
            f"sqlite:///{tmp_path / 'fleet.sqlite3'}"
            if kind == "sqlite"
            else stack.enter_context(postgres_url())
        )
        engine = make_engine(url)
        upgrade(engine)
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
