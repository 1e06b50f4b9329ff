"""Keeping the link to the broker: connect, announce, publish the spool, hear the fleet, and
reconnect with exponential backoff and jitter when any of that breaks.

While connected, what was spooled since the connection came up is *live* and goes first;
what waited through the outage is the *backlog* and drains in spool order at ``drain_rate``
messages per second beside it, so catching up never starves live data. Up to ``window``
messages are in flight; each is removed from the spool only on its PUBACK.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiomqtt

from anycar.ratelimit import TokenBucket
from anycar.uplink.config import UplinkConfig
from anycar.uplink.mqtt import Client, make_client, publish_properties
from anycar.uplink.spool import Entry, Spool
from anycar.uplink.tasks import Wakeup
from anycar.wire import Channel, content_type, topic

log = logging.getLogger(__name__)
LINK_ERRORS = (aiomqtt.MqttError, OSError, ConnectionError)  # the link broke: reconnect, quietly
Handler = Callable[[Channel, bytes], Awaitable[None]]


class Link:
    def __init__(
        self,
        cfg: UplinkConfig,
        spool: Spool,
        *,
        boot: str,
        birth: Callable[[], bytes],
        will: bytes,
        on_message: Handler,
        subscribe: tuple[Channel, ...] = (Channel.COMMANDS, Channel.CAMPAIGNS),
    ) -> None:
        self.cfg = cfg
        self.spool = spool
        self.boot = boot
        self.birth = birth
        self.will = will
        self.on_message = on_message
        self.subscribe = subscribe
        self.connected = False
        self.connects = 0
        self.failures = 0
        self.last_error = ""
        self.connected_since: float | None = None
        self._backlog = (0, 0)  # (last backlog id sent, last id of the backlog)
        self.in_flight = 0
        self.refused = 0
        self.handler_errors = 0
        self.flying_ids: set[int] = set()  # spool ids awaiting PUBACK: never dropped to make room
        self._client: Client | None = None
        self._wake = Wakeup()
        spool.listeners.append(self._wake.set)

    def _type(self, payload: bytes) -> str:
        return content_type(self.cfg.format, payload[:1] == b"\x78")

    # -- the connection loop --------------------------------------------------------------------
    async def run(self) -> None:
        """Forever: connect, serve until the link breaks, wait, again. Cancel to stop."""
        while True:
            will = (topic(self.cfg.vehicle_id, Channel.STATE), self.will, self._type(self.will))
            client = make_client(self.cfg, will)
            try:
                async with client:
                    self._client = client
                    self.connected = True
                    self.connects += 1
                    self.failures = 0
                    self.connected_since = time.time()
                    self.last_error = ""
                    log.info("uplink connected to %s as %s", self.cfg.url, self.cfg.client_id)
                    await self._serve(client)
            except LINK_ERRORS as exc:
                self.last_error = str(exc) or type(exc).__name__
            except ExceptionGroup as group:  # the pump's or the listener's, from their task group
                broken, other = group.split(LINK_ERRORS)
                if other is not None:
                    raise other from None
                first = (broken or group).exceptions[0]
                self.last_error = str(first) or type(first).__name__
            finally:
                self._client = None
                self.connected = False
                self.in_flight = 0
            self.failures += 1
            delay = self.backoff(self.failures)
            log.warning("uplink to %s down (%s); retry in %.1f s", self.cfg.url, self.last_error, delay)
            await asyncio.sleep(delay)

    def backoff(self, failures: int) -> float:
        """Exponential from ``reconnect_min_s`` to ``reconnect_max_s``, times a random 0.5-1.0, so a
        fleet that lost its broker together does not come back together."""
        base = min(self.cfg.reconnect_max_s, self.cfg.reconnect_min_s * 2 ** min(failures - 1, 30))
        return base * random.uniform(0.5, 1.0)  # nosec B311 # reconnect jitter, not a secret

    async def _serve(self, client: Client) -> None:
        for channel in self.subscribe:  # before the birth: "online" means commands are heard
            await client.subscribe(topic(self.cfg.vehicle_id, channel), qos=1)
        birth = self.birth()
        await client.publish_acked(
            topic(self.cfg.vehicle_id, Channel.STATE),
            birth,
            1,
            retain=True,
            properties=self._props(birth, None),
        )
        async with asyncio.TaskGroup() as group:
            group.create_task(self._pump(client), name="uplink-pump")
            group.create_task(self._listen(client), name="uplink-listen")

    async def _listen(self, client: Client) -> None:
        async for message in client.messages:
            try:
                _, _, rest = str(message.topic.value).rpartition("/")
                channel = Channel(rest)
            except ValueError:
                continue
            payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
            try:
                await self.on_message(channel, payload)
            except Exception:  # a handler bug must not take the link down; it is logged and counted
                self.handler_errors += 1
                log.exception("uplink: handling a %s message failed", channel)
        raise ConnectionError("message stream ended")

    # -- publishing the spool -------------------------------------------------------------------
    async def _pump(self, client: Client) -> None:
        live_from = self.spool.last_id()
        next_live = live_from
        next_back = 0
        bucket = TokenBucket(self.cfg.drain_rate, max(1.0, min(self.cfg.drain_rate, self.cfg.window)))
        flying: set[asyncio.Task[None]] = set()
        window = self.cfg.window
        failed: list[BaseException] = []

        def done(task: asyncio.Task[None]) -> None:
            flying.discard(task)
            self.in_flight = len(flying)
            if not task.cancelled() and task.exception() is not None:
                failed.append(task.exception())  # type: ignore[arg-type]
            self._wake.set()

        try:
            while True:
                if failed:
                    raise failed[0]
                self._wake.clear()
                free = window - len(flying)
                batch: list[Entry] = self.spool.after(next_live, free) if free > 0 else []
                if batch:
                    next_live = batch[-1].id
                free -= len(batch)
                wait: float | None = None
                if next_back < live_from:
                    while free > 0:
                        if not bucket.take():
                            wait = 1.0 / self.cfg.drain_rate
                            break
                        more = self.spool.after(next_back, 1, until=live_from)
                        if not more:
                            next_back = live_from
                            break
                        batch.extend(more)
                        next_back = more[-1].id
                        free -= 1
                self._backlog = (next_back, live_from)
                for entry in batch:
                    task = asyncio.create_task(self._send(client, entry))
                    flying.add(task)
                    task.add_done_callback(done)
                self.in_flight = len(flying)
                if batch:
                    continue
                await self._wake.sleep(wait if wait is not None else 1.0)
        finally:
            for task in list(flying):
                task.cancel()
            if flying:
                await asyncio.gather(*flying, return_exceptions=True)

    @property
    def backlog_left(self) -> int:
        """Entries of the backlog not yet sent (counted when asked: it is a range scan)."""
        after, until = self._backlog
        if not self.connected or after >= until:
            return 0
        row = self.spool.db.execute(
            "SELECT COUNT(*) FROM spool WHERE id > ? AND id <= ?", (after, until)
        ).fetchone()
        return int(row[0])

    async def _send(self, client: Client, entry: Entry) -> None:
        expiry: float | None = None
        if entry.ttl is not None:
            age = entry.age(self.boot, self.spool.clock(), self.spool.monotonic())
            if age >= entry.ttl:
                self.spool.drop(entry, "expired")
                return
            expiry = entry.ttl - age
        self.flying_ids.add(entry.id)
        try:
            code = await client.publish_acked(
                topic(self.cfg.vehicle_id, entry.channel),
                entry.payload,
                entry.qos,
                properties=self._props(entry.payload, expiry),
            )
        finally:
            self.flying_ids.discard(entry.id)
        if code >= 0x80:
            self.refused += 1
            self.last_error = f"broker refused a {entry.channel} message (reason code 0x{code:02x})"
            self.spool.drop(entry, "refused_by_broker")
        else:
            self.spool.ack(entry)

    def _props(self, payload: bytes, expiry: float | None) -> Any:
        if self.cfg.protocol != 5:
            return None
        return publish_properties(self._type(payload), expiry)

    async def publish_now(self, channel: Channel, payload: bytes, *, retain: bool = False) -> bool:
        """Publish outside the spool (the offline state at a clean stop); False if not connected."""
        client = self._client
        if client is None:
            return False
        try:
            await asyncio.wait_for(
                client.publish_acked(
                    topic(self.cfg.vehicle_id, channel),
                    payload,
                    1,
                    retain=retain,
                    properties=self._props(payload, None),
                ),
                timeout=2.0,
            )
        except (aiomqtt.MqttError, ConnectionError, TimeoutError):
            return False
        return True
