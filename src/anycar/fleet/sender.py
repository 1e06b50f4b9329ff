"""The command sender (a fleet component): pending commands out of the database, signed with the
fleet's key and published to ``anycar/v1/{vehicle}/commands`` at QoS 1.

It polls (every ``poll_s``, or at once when ``wake()`` is called by the API in the same process),
so commands made by another process (the CLI, another API process) go out too. A command is
claimed (``pending`` -> ``sent``, with its expiry) in one UPDATE before it is published, so two
senders never both send it; should two ever do, the hub answers the second as ``duplicate`` and
the first answer stands. A rollout's commands go only while it runs and at most
``max_in_flight`` at a time. Sent commands past their expiry without an answer become
``expired`` (and count as failures of their rollout).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import aiomqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine

from anycar.fleet import commands as cmds
from anycar.fleet import db, ota
from anycar.fleet.tasks import stop_task
from anycar.wire import Channel, encode, signature, topic
from anycar.wire import messages as msg

log = logging.getLogger("anycar.fleet.sender")
C = db.commands.c
V = db.vehicles.c
RO = db.rollouts.c
BATCH = 200


@dataclass(frozen=True, slots=True)
class Due:
    id: int
    command_id: str
    vehicle: str
    action: str
    body: Any
    ttl_s: float


def due(engine: Engine, now: float, batch: int = BATCH) -> list[Due]:
    """Claim what may go now (pending, its rollout running and under its in-flight cap)."""
    with engine.begin() as conn:
        rollouts = conn.execute(select(RO.id, RO.max_in_flight).where(RO.state == "running")).all()
        cap = {r.id: r.max_in_flight for r in rollouts}
        flying = Counter(
            {
                int(rid): int(n)
                for rid, n in conn.execute(
                    select(C.rollout_id, func.count())
                    .where(C.status == cmds.SENT, C.rollout_id.is_not(None), C.answered.is_(None))
                    .group_by(C.rollout_id)
                )
            }
        )
        rows = conn.execute(
            select(C.id, C.command_id, C.action, C.body, C.ttl_s, C.rollout_id, V.wire_id)
            .join(db.vehicles, V.id == C.vehicle_id)
            .where(C.status == cmds.PENDING, V.revoked.is_(False))
            .order_by(C.created, C.id)
            .limit(batch * 5)
        ).all()
        out: list[Due] = []
        for r in rows:
            if r.rollout_id is not None:
                if r.rollout_id not in cap or flying[r.rollout_id] >= cap[r.rollout_id]:
                    continue  # paused, aborted or at its cap
                flying[r.rollout_id] += 1
            claimed = conn.execute(
                update(db.commands)
                .where(C.id == r.id, C.status == cmds.PENDING)
                .values(status=cmds.SENT, sent=now, expires=now + r.ttl_s)
            ).rowcount
            if claimed:
                out.append(Due(r.id, r.command_id, r.wire_id, r.action, r.body, r.ttl_s))
            if len(out) >= batch:
                break
    return out


def release(engine: Engine, ids: list[int]) -> None:
    """Claimed but not published (the broker went away): back to pending, to go next time."""
    with engine.begin() as conn:
        conn.execute(
            update(db.commands)
            .where(C.id.in_(ids), C.status == cmds.SENT)
            .values(status=cmds.PENDING, sent=None, expires=None)
        )


def expire(engine: Engine, now: float) -> None:
    with engine.begin() as conn:
        for rollout in cmds.expire_overdue(conn, now):
            ota.settle(conn, rollout)


def payload(key: Ed25519PrivateKey, item: Due, now: float) -> tuple[Channel, bytes]:
    """Where it goes and the signed bytes: a command, or a campaign on its own channel."""
    if item.action == cmds.CAMPAIGN:
        campaign = msg.campaign(item.vehicle, item.body, ts=now)
        return Channel.CAMPAIGNS, encode(signature.sign(campaign, key), "cbor", compress=True)
    doc = msg.command_of(
        item.vehicle, item.command_id, item.action, item.body, ts=now, expires=now + item.ttl_s
    )
    return Channel.COMMANDS, encode(signature.sign(doc, key), "cbor", compress=True)


class CommandSender:
    name = "commands"

    def __init__(
        self,
        engine: Engine,
        key: Ed25519PrivateKey,
        *,
        host: str = "127.0.0.1",
        port: int = 1883,
        username: str | None = None,
        password: str | None = None,
        client_id: str | None = None,
        poll_s: float = 0.25,
    ) -> None:
        self.engine, self.key = engine, key
        self.host, self.port = host, port
        self.username, self.password = username, password
        self.client_id = client_id or f"anycar-commands-{uuid.uuid4().hex[:8]}"
        self.poll_s = poll_s
        self.connected = asyncio.Event()
        self.sent = 0
        self.last_error = ""
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def start(self, timeout: float = 15.0) -> None:
        self._task = asyncio.create_task(self._supervise(), name="fleet-command-sender")
        waiter = asyncio.ensure_future(self.connected.wait())
        done, _ = await asyncio.wait(
            [self._task, waiter], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        waiter.cancel()
        if self._task in done:
            self._task.result()
        if not self.connected.is_set():
            raise ConnectionError(
                f"command sender: no broker at {self.host}:{self.port} within {timeout:.0f} s"
            )

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None

    async def _supervise(self) -> None:
        delay = 0.2
        while True:
            try:
                await self._session()
            except aiomqtt.MqttError as exc:
                self.last_error = f"broker: {exc}"
                log.warning("command sender: broker: %s; reconnecting", exc)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database down, a bug: logged, counted, retried
                self.last_error = f"{type(exc).__name__}: {str(exc)[:200]}"
                log.exception("command sender failed; restarting it")
            self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _session(self) -> None:
        async with aiomqtt.Client(
            self.host,
            self.port,
            username=self.username,
            password=self.password,
            identifier=self.client_id,
            protocol=aiomqtt.ProtocolVersion.V5,
        ) as client:
            self.connected.set()
            while True:
                now = time.time()
                await asyncio.to_thread(expire, self.engine, now)
                batch = await asyncio.to_thread(due, self.engine, now)
                for i, item in enumerate(batch):
                    props = Properties(PacketTypes.PUBLISH)
                    props.MessageExpiryInterval = max(1, int(item.ttl_s))
                    downlink, data = payload(self.key, item, now)
                    try:
                        await client.publish(topic(item.vehicle, downlink), data, qos=1, properties=props)
                    except aiomqtt.MqttError:
                        await asyncio.to_thread(release, self.engine, [d.id for d in batch[i:]])
                        raise
                    self.sent += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_s)
                self._wake.clear()

    def status(self) -> dict[str, Any]:
        return {"connected": self.connected.is_set(), "sent": self.sent, "last_error": self.last_error}
