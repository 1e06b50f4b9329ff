"""The fleet side, as far as the bench and the tests need it: subscribe to the uplink topics,
decode every message with the wire's schemas, drop duplicates by (vehicle, boot, seq).

It speaks only ``anycar.wire`` and MQTT, as the fleet cloud's ingest will.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from anycar.wire import Deduplicator, decode, parse_topic


class WireSubscriber:
    """``async with WireSubscriber(port) as fleet``: ready once subscribed. ``persistent`` keeps
    a session at the broker, so nothing is missed while it reconnects; ``keep`` keeps every
    decoded message (else only counts)."""

    def __init__(
        self,
        port: int = 1883,
        vehicle: str = "+",
        *,
        persistent: bool = False,
        keep: bool = True,
        **client: Any,
    ) -> None:
        self.port = port
        self.vehicle = vehicle
        self.keep = keep
        self.identifier = f"fleet-{uuid.uuid4().hex[:8]}"
        if persistent:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 600
            client.update(clean_start=False, properties=props)
        self.client_args = client
        self.dedup = Deduplicator()
        self.messages: list[dict[str, Any]] = []
        self.seen: dict[tuple[str, str], set[int]] = {}
        self.unique = 0
        self.values = 0
        self.bad: list[str] = []
        self.latency: dict[str, list[float]] = {}
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> WireSubscriber:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self.connected.wait(), 10)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._task is not None  # nosec B101 # narrows an Optional for mypy; an invariant of this object, not a check of outside input
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(
                    "127.0.0.1",
                    self.port,
                    identifier=self.identifier,
                    protocol=aiomqtt.ProtocolVersion.V5,
                    max_queued_incoming_messages=0,
                    **self.client_args,
                ) as client:
                    await client.subscribe(f"anycar/v1/{self.vehicle}/#", qos=1)
                    self.connected.set()
                    async for message in client.messages:
                        payload = message.payload if isinstance(message.payload, bytes) else b""
                        self._take(str(message.topic.value), payload)
            except aiomqtt.MqttError:
                await asyncio.sleep(0.2)

    def _take(self, topic: str, payload: bytes) -> None:
        try:
            if not parse_topic(topic)[1].uplink:
                return  # what the fleet itself sent down
            doc = decode(payload)
        except ValueError as exc:
            self.bad.append(str(exc))
            return
        if doc["seq"] != 0:
            if not self.dedup.first_time(doc["vehicle"], doc["boot"], doc["seq"]):
                return
            self.seen.setdefault((doc["vehicle"], doc["boot"]), set()).add(doc["seq"])
            self.unique += 1
            if doc["kind"] == "telemetry":
                self.values += len(doc["values"])
                self.latency.setdefault(doc["campaign"], []).append(time.time() - doc["ts"])
        if self.keep:
            self.messages.append(doc)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["kind"] == kind]
