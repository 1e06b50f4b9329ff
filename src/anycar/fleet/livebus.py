"""The live feed across processes: ingest workers NOTIFY what they committed, every API process
LISTENs and fans it out to its own WebSocket clients (PostgreSQL only; SQLite is one process).

Why PostgreSQL LISTEN/NOTIFY and not each API process subscribing to MQTT itself: the feed then
shows only what was committed (a position on the map is in the database), the API processes need
no broker account and decode nothing, and any number of them get every commit whichever worker
made it. Its costs: a notification's payload is at most 8000 bytes (a batch goes as several), and
notifications are not stored (an API process that is down misses them; its clients reconnect
and read the REST routes). NOTIFY is sent after the batch's commit, from a queue of its own: a
full queue drops live items (counted), never the ingest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import psycopg
from sqlalchemy.engine import Engine

from anycar.fleet.live import LiveFeed
from anycar.fleet.tasks import stop_task

log = logging.getLogger("anycar.fleet.livebus")
CHANNEL = "anycar_live"
MAX_PAYLOAD = 7900  # PostgreSQL refuses a payload of 8000 bytes or more
QUEUE = 10_000  # live items waiting to be sent


def conninfo(engine: Engine) -> str:
    """libpq's connection string for the engine's database."""
    url = engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def chunks(kind: str, items: list[dict[str, Any]]) -> list[str]:
    """Payloads of at most MAX_PAYLOAD bytes, each ``{"k": kind, "i": [items]}``."""
    out: list[str] = []
    current: list[str] = []
    size = 0
    head = len(json.dumps({"k": kind, "i": []}))
    for item in items:
        text = json.dumps(item, separators=(",", ":"), default=str)
        if len(text) + head > MAX_PAYLOAD:
            continue  # one item too big for a notification: the REST routes still have it
        if current and size + len(text) + 1 + head > MAX_PAYLOAD:
            out.append(f'{{"k":{json.dumps(kind)},"i":[{",".join(current)}]}}')
            current, size = [], 0
        current.append(text)
        size += len(text) + 1
    if current:
        out.append(f'{{"k":{json.dumps(kind)},"i":[{",".join(current)}]}}')
    return out


class NotifyPublisher:
    """What the ingest workers publish to (the same ``publish(kind, items)`` as ``LiveFeed``)."""

    name = "live-notify"

    def __init__(self, engine: Engine) -> None:
        self.dsn = conninfo(engine)
        self.sent = 0
        self.dropped = 0
        self.errors = 0
        self._queue: asyncio.Queue[tuple[str, list[dict[str, Any]]]] = asyncio.Queue(QUEUE)
        self._task: asyncio.Task[None] | None = None

    def publish(self, kind: str, items: list[dict[str, Any]]) -> None:
        if not items:
            return
        try:
            self._queue.put_nowait((kind, items))
        except asyncio.QueueFull:
            self.dropped += len(items)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._send(), name="fleet-live-notify")

    async def _send(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
                    while True:
                        kind, items = await self._queue.get()
                        for payload in chunks(kind, items):
                            await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
                        self.sent += len(items)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database went away: what was queued meanwhile waits
                self.errors += 1
                log.warning("live notify: %s; reconnecting", exc)
                await asyncio.sleep(1.0)

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None


class NotifyListener:
    """An API process's side: LISTEN, and hand every committed item to the local ``LiveFeed``."""

    name = "live-listen"

    def __init__(self, engine: Engine, feed: LiveFeed) -> None:
        self.dsn = conninfo(engine)
        self.feed = feed
        self.received = 0
        self.errors = 0
        self.listening = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="fleet-live-listen")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listening.wait(), 15)

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    async for note in conn.notifies():
                        try:
                            doc = json.loads(note.payload)
                            self.feed.publish(str(doc["k"]), list(doc["i"]))
                            self.received += len(doc["i"])
                        except (ValueError, KeyError, TypeError) as exc:
                            log.warning("live listen: a notification that is not ours: %s", exc)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.errors += 1
                self.listening.clear()
                log.warning("live listen: %s; reconnecting", exc)
                await asyncio.sleep(1.0)

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None
