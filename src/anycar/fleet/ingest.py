"""Ingest workers: MQTT 5 shared subscriptions in, one database transaction per batch out.

Every worker subscribes to ``$share/anycar-ingest/anycar/v1/+/<channel>`` for each uplink
channel, so the broker splits the load over N workers. Each message is decoded and checked with
``anycar.wire.decode`` (nothing here knows the format); a bad one becomes a dead letter with its
reason, counted, and the worker goes on. The MQTT client is the ingest's own
(``anycar.fleet.mqttin``: paho's receive path was ~40 % of a worker's CPU), and it acknowledges
by hand: the PUBACKs of a batch go out only after its transaction committed, and the session persists at the
broker (a stable client id, session expiry of a day), so a worker killed at any point gets the
unacknowledged messages again when it comes back, and dedup in the store drops what had already
been committed. If the database is down, the batch is retried with backoff and nothing is acked:
ingest pauses and the broker holds the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from anycar.fleet.live import LiveFeed
from anycar.fleet.mqttin import Inbound, MqttError, MqttIn
from anycar.fleet.store import Accepted, DeadLetter, Store, Stored, refused_for_its_data
from anycar.fleet.tasks import stop_task
from anycar.wire import Channel, WireError, decode, parse_topic, subscription

log = logging.getLogger("anycar.fleet.ingest")
GROUP = "anycar-ingest"
SESSION_S = 86_400
FUTURE_S = 3600.0  # a message dated more than this ahead of our clock is refused
# A batch is what is waiting when the last commit returned, up to this many messages. PostgreSQL:
# 500 (ingest-speed). SQLite, one writer: 2,000, so that a writer fallen behind (a slow moment of
# a growing file) catches up in fewer, larger commits instead of a backlog that grows for minutes
# (docs/performance.md, "sqlite-batch"); when it keeps up the batches stay as small as ever.
BATCH_MAX = {"postgresql": 500, "sqlite": 2000}


@dataclass
class IngestStats:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    dead: int = 0
    batches: int = 0
    db_errors: int = 0
    dead_by_reason: dict[str, int] = field(default_factory=dict)
    last_error: str = ""
    socket_reads: int = 0  # of connections closed; status() adds the open one's (packets per read)
    packets: int = 0


def tune_gc() -> None:
    """For a process whose hot path is the ingest: freeze what exists now (imports, config) out
    of the cyclic collector's reach and collect the young generation every 50,000 allocations
    instead of 700. A batch holds ~60 objects per message alive through its commit, so with the
    defaults the collector ran again and again over them: ~35 % of the decode's CPU in a bench
    (20.6 vs 12.7 µs a message with the collector off; ingest-speed). Cycles are still collected."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 10)


def subscriptions(group: str = GROUP, vehicles: Sequence[str] = ("+",)) -> list[str]:
    """The shared subscriptions: each uplink channel of every vehicle (``+``), or of the ones named
    (a deployment may shard by vehicle; tests on a shared broker listen to their own)."""
    share = f"$share/{group}/" if group else ""  # "": plain subscriptions (fleet_scale: one worker on
    # Mosquitto 2.0, whose persistence restores plain subscriptions at a restart but not shared ones)
    return [f"{share}{subscription(c, v)}" for v in vehicles for c in Channel if c.uplink]


# the channel each kind of uplink message must come on
EXPECTED_CHANNEL = {
    "telemetry": Channel.TELEMETRY,
    "events": Channel.EVENTS,
    "state": Channel.STATE,
    "campaign-ack": Channel.CAMPAIGN_ACKS,
    "command-result": Channel.COMMAND_RESULTS,
    "inventory": Channel.INVENTORY,
    "pod": Channel.POD,  # delivery-exec
}
_TOPICS: dict[str, tuple[str, Channel]] = {}  # parsed topics: a fleet's are few and come again
_TOPICS_MAX = 200_000


def _topic(name: str) -> tuple[str, Channel]:
    """``parse_topic``, remembered (ingest-worker: the split, the enum and the regex cost ~1.5 µs a
    message); only good topics are kept, and the memory is bounded."""
    got = _TOPICS.get(name)
    if got is None:
        got = parse_topic(name)
        if len(_TOPICS) >= _TOPICS_MAX:
            _TOPICS.clear()
        _TOPICS[name] = got
    return got


def judge(store: Store, topic: str, payload: bytes, now: float) -> Accepted | DeadLetter:
    """Decode and check one message: an accepted message of a known vehicle, or why not."""
    got = _TOPICS.get(topic)  # _topic's memory looked up here: one call fewer a message
    if got is None:
        try:
            got = _topic(topic)
        except WireError as exc:
            return DeadLetter(topic, exc.reason, str(exc), payload)
    vehicle_id, channel = got
    ref = store.vehicle(vehicle_id)
    if ref is None or ref.revoked:
        reason = "unknown_vehicle" if ref is None else "revoked"
        return DeadLetter(topic, reason, f"vehicle {vehicle_id!r} is {reason.replace('_', ' ')}", payload)
    try:
        doc = decode(payload)
    except WireError as exc:
        return DeadLetter(topic, exc.reason, str(exc), payload, ref.id)
    if doc.get("vehicle") != vehicle_id:
        return DeadLetter(
            topic,
            "vehicle_mismatch",
            f"vehicle: {doc.get('vehicle')!r} published under {vehicle_id!r}",
            payload,
            ref.id,
        )
    if EXPECTED_CHANNEL.get(doc["kind"]) is not channel:
        return DeadLetter(
            topic, "wrong_channel", f"kind: {doc['kind']!r} on channel {channel}", payload, ref.id
        )
    if float(doc["ts"]) > now + FUTURE_S:
        return DeadLetter(
            topic, "future", f"ts: {doc['ts']} is more than {FUTURE_S:.0f} s ahead", payload, ref.id
        )
    return Accepted(ref, doc, topic, payload)


class IngestWorker:
    """One worker (a fleet component: ``start()``/``stop()``). ``worker_id`` must be stable
    across restarts of the same worker: it names the broker session that holds its unacked
    messages."""

    name = "ingest"

    def __init__(
        self,
        store: Store,
        *,
        host: str = "127.0.0.1",
        port: int = 1883,
        username: str | None = None,
        password: str | None = None,
        worker_id: str | None = None,
        group: str = GROUP,
        vehicles: Sequence[str] = ("+",),
        batch_max: int | None = None,
        batch_delay_s: float = 0.05,
        session_s: int = SESSION_S,
        live: LiveFeed | None = None,
        on_commit: Callable[[Stored], None] | None = None,
    ) -> None:
        self.store = store
        self.host, self.port = host, port
        self.username, self.password = username, password
        self.worker_id = worker_id or f"anycar-ingest-{uuid.uuid4().hex[:8]}"
        self.group = group
        self.vehicles = tuple(vehicles)
        self.batch_max = batch_max or BATCH_MAX.get(store.engine.dialect.name, 500)
        self.batch_delay_s = batch_delay_s
        self.session_s = session_s
        self.live = live
        self.on_commit = on_commit
        self.stats = IngestStats()
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._client: MqttIn | None = None

    async def start(self, timeout: float = 15.0) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._supervise(), name=f"fleet-{self.worker_id}")
        waiter = asyncio.ensure_future(self.connected.wait())
        done, _ = await asyncio.wait(
            [self._task, waiter], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        waiter.cancel()
        if self._task in done:
            self._task.result()  # raises what killed it
        if not self.connected.is_set():
            raise ConnectionError(f"ingest: no broker at {self.host}:{self.port} within {timeout:.0f} s")

    async def stop(self) -> None:
        self._stopping = True
        await stop_task(self._task)
        self._task = None

    async def _supervise(self) -> None:
        """Reconnect forever; an unexpected error is logged and counted, never silent."""
        delay = 0.2
        while not self._stopping:
            try:
                await self._session()
                delay = 0.2
            except MqttError as exc:
                self.stats.last_error = f"broker: {exc}"
                log.warning("ingest %s: broker: %s; reconnecting", self.worker_id, exc)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("ingest %s failed; restarting it", self.worker_id)
            self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _session(self) -> None:
        client = MqttIn(
            self.host,
            self.port,
            self.worker_id,
            username=self.username,
            password=self.password,
            session_s=self.session_s,
            receive_maximum=2 * self.batch_max,  # one batch committing, the next one judged
        )
        await client.connect()
        self._client = client
        try:
            granted = await client.subscribe(subscriptions(self.group, self.vehicles), qos=1)
            refused = [code for code in granted if code >= 0x80]
            if refused:  # an ACL that does not let the ingest account read: say so, keep the rest
                self.stats.last_error = f"broker: {len(refused)} subscription(s) refused (0x{refused[0]:02x})"
                log.warning("ingest %s: %s", self.worker_id, self.stats.last_error)
            self.connected.set()
            committing: asyncio.Task[None] | None = None
            try:
                while True:
                    batch = await self._collect(client)
                    judged = await self._judge(batch)  # while the previous batch commits
                    if committing is not None:
                        await committing  # one commit at a time, in arrival order
                    committing = asyncio.create_task(self._commit_and_ack(client, batch, judged))
            finally:  # stopped or disconnected: what was not acked comes again (dedup drops it)
                if committing is not None and not committing.done():
                    committing.cancel()
                if committing is not None:
                    with contextlib.suppress(Exception, asyncio.CancelledError):
                        await committing
        finally:
            client.close()
            self._client = None
            self.stats.socket_reads += client.reads
            self.stats.packets += client.packets

    async def _commit_and_ack(
        self, client: MqttIn, batch: list[Inbound], judged: tuple[list[Accepted], list[DeadLetter]]
    ) -> None:
        await self._commit(batch, *judged)
        client.ack([m.mid for m in batch if m.qos > 0])  # only after the commit

    async def _collect(self, client: MqttIn) -> list[Inbound]:
        """One batch: what is there once a message is in, topped up for ``batch_delay_s`` at
        most, ``batch_max`` at most (the broker's Receive Maximum is the same number). The client
        wakes this once, when the batch is full or the time is up (ingest-judge: it woke at every
        socket read, ~16 messages, each with a task and a timer)."""
        await client.wait()
        if client.waiting() < self.batch_max:
            await client.wait(self.batch_delay_s, want=self.batch_max)
        return client.take(self.batch_max)

    async def _judge(self, batch: list[Inbound]) -> tuple[list[Accepted], list[DeadLetter]]:
        """Decode and check a batch (its vehicles looked up in one query first)."""
        now = time.time()
        accepted: list[Accepted] = []
        dead: list[DeadLetter] = []
        names: set[str] = set()
        known = _TOPICS.get  # the topic memory holds nearly every topic: a fleet's come again
        for m in batch:
            if (got := known(m.topic)) is not None:
                names.add(got[0])
            elif m.topic.count("/") == 3:
                names.add(m.topic.split("/")[2])
        with contextlib.suppress(Exception):  # one query for the batch's vehicles, off the loop;
            await asyncio.to_thread(self.store.prefetch, names)  # if it fails, judge looks up alone
        for message in batch:
            verdict = judge(self.store, message.topic, message.payload, now)
            (accepted if isinstance(verdict, Accepted) else dead).append(verdict)  # type: ignore[arg-type]
        return accepted, dead

    async def _commit(self, batch: list[Inbound], accepted: list[Accepted], dead: list[DeadLetter]) -> None:
        """Store a judged batch; a database error keeps it and retries, acking nothing."""
        delay = 0.2
        while True:
            try:
                try:
                    stored = await asyncio.to_thread(self.store.commit, accepted, dead)
                except Exception as exc:
                    if not refused_for_its_data(exc):
                        raise
                    stored = await asyncio.to_thread(self._commit_apart, accepted, dead, exc)
                break
            except Exception as exc:  # the database is down or refused: keep the batch, retry
                self.stats.db_errors += 1
                self.stats.last_error = f"database: {type(exc).__name__}: {str(exc)[:200]}"
                log.warning("ingest %s: %s; retrying in %.1f s", self.worker_id, self.stats.last_error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        s = self.stats
        s.batches += 1
        s.received += len(batch)
        s.stored += stored.messages
        s.duplicates += stored.duplicates
        s.dead += stored.dead
        for d in dead:
            s.dead_by_reason[d.reason] = s.dead_by_reason.get(d.reason, 0) + 1
        if self.live is not None:
            self.live.publish("position", stored.positions)
            self.live.publish("event", stored.events)
        if self.on_commit is not None:
            self.on_commit(stored)

    def _commit_apart(self, accepted: list[Accepted], dead: list[DeadLetter], first: Exception) -> Stored:
        """A batch the database refused for its data: each message alone, so the one it cannot
        take becomes a dead letter (``store_refused``, with the database's words) and the rest is
        stored; otherwise one bad message would stop the worker, retried forever."""
        log.warning(
            "ingest %s: the database refused a batch (%s); storing its messages one by one",
            self.worker_id,
            str(first).splitlines()[0][:200],
        )
        stored = Stored()
        for item in accepted:
            try:
                stored.add(self.store.commit([item]))
            except Exception as exc:
                if not refused_for_its_data(exc):
                    raise  # down after all: the caller retries the whole batch (dedup drops what is in)
                words = str(getattr(exc, "orig", None) or exc).splitlines()[0]
                dead.append(
                    DeadLetter(
                        item.topic,
                        "store_refused",
                        f"the database refused it: {words}",
                        item.payload,
                        item.vehicle.id,
                    )
                )
        stored.add(self.store.commit([], dead))
        return stored

    def status(self) -> dict[str, Any]:
        out = {
            "worker": self.worker_id,
            "connected": self.connected.is_set(),
            "batch_max": self.batch_max,
            **vars(self.stats),
        }
        if self._client is not None:
            out["socket_reads"] += self._client.reads
            out["packets"] += self._client.packets
        return out
