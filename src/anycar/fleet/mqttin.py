"""The ingest's own MQTT 5 subscriber: just what a worker needs, at a few microseconds a message.

Why not paho (through aiomqtt) here: a profile of a bench worker (py-spy, ingest-speed) put ~40 %
of its CPU in paho's receive path: every PUBLISH builds an ``MQTTMessage`` with an
``MQTTMessageInfo`` and its ``threading.Condition``, parses its MQTT 5 properties into a
``Properties`` object byte by byte, and aiomqtt wraps it once more and queues it. The worker needs
none of it: it reads topic, payload, QoS and packet id, and sends the PUBACKs of a batch after the
commit. This client is an ``asyncio.Protocol`` that cuts PUBLISH packets out of the socket's
bytes in place (properties skipped by their length) and writes a batch's PUBACKs in one write.

It speaks the subset the worker uses, per MQTT 5.0 (OASIS): CONNECT with a stable client id,
clean start off, Session Expiry Interval and Receive Maximum (so the broker holds at most one
batch unacknowledged); SUBSCRIBE at QoS 1; PUBLISH in at QoS 0/1; PUBACK, PINGREQ, DISCONNECT
out. Everything else the broker sends ends the connection with a ``MqttError`` that says what
(the worker reconnects). The rest of the project (sender, tests, hubs) stays on aiomqtt.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import struct
import time
from typing import NamedTuple

from anycar.mqtt5 import MqttError, mqtt_string, properties, read_varint, varint

KEEPALIVE_S = 60
CONNECT_TIMEOUT_S = 10.0
PAUSE_ABOVE = 20_000  # messages waiting in the inbox: stop reading the socket until they drain
REASONS = {  # the CONNACK / SUBACK / DISCONNECT reason codes an operator may meet
    0x80: "unspecified error",
    0x81: "malformed packet",
    0x82: "protocol error",
    0x84: "unsupported protocol version",
    0x85: "client identifier not valid",
    0x86: "bad user name or password",
    0x87: "not authorized",
    0x88: "server unavailable",
    0x89: "server busy",
    0x8A: "banned",
    0x8B: "server shutting down",
    0x8E: "session taken over",
    0x8F: "topic filter invalid",
    0x93: "receive maximum exceeded",
    0x97: "quota exceeded",
    0x9F: "connection rate exceeded",
}


class Inbound(NamedTuple):
    topic: str
    payload: bytes
    qos: int
    mid: int  # 0 at QoS 0


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + varint(len(body)) + body


def connect_packet(
    client_id: str,
    *,
    username: str | None,
    password: str | None,
    keepalive: int,
    session_s: int,
    receive_maximum: int,
) -> bytes:
    """CONNECT (MQTT 5): clean start off, the session kept ``session_s`` after a disconnect."""
    flags = (0x80 if username is not None else 0) | (0x40 if password is not None else 0)
    props = b"\x11" + struct.pack("!I", session_s) + b"\x21" + struct.pack("!H", receive_maximum)
    body = b"\x00\x04MQTT\x05" + bytes([flags]) + struct.pack("!H", keepalive)
    body += varint(len(props)) + props + mqtt_string(client_id)
    if username is not None:
        body += mqtt_string(username)
    if password is not None:
        body += mqtt_string(password.encode())
    return _packet(0x10, body)


def subscribe_packet(mid: int, filters: list[str], qos: int = 1) -> bytes:
    body = struct.pack("!H", mid) + b"\x00" + b"".join(mqtt_string(f) + bytes([qos]) for f in filters)
    return _packet(0x82, body)


def puback_packets(mids: list[int]) -> bytes:
    """The PUBACKs of a batch in one buffer (reason 0, success, may be left out: 2 bytes each)."""
    return b"".join(b"\x40\x02" + m.to_bytes(2, "big") for m in mids)


def _reason(code: int, props: dict[int, object]) -> str:
    why = REASONS.get(code, f"reason 0x{code:02x}")
    said = props.get(0x1F)
    return f"{why} ({said})" if said else why


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _Protocol(asyncio.Protocol):
    def __init__(self, client: MqttIn) -> None:
        self.c = client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.c._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.c._received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.c._lost(MqttError(f"connection lost: {exc}" if exc else "the broker closed the connection"))


class MqttIn:
    """One MQTT 5 connection that receives; ``messages()`` takes what arrived, ``ack`` answers it."""

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        *,
        username: str | None = None,
        password: str | None = None,
        session_s: int = 86_400,
        receive_maximum: int = 500,
        keepalive: int = KEEPALIVE_S,
    ) -> None:
        self.host, self.port, self.client_id = host, port, client_id
        self.username, self.password = username, password
        self.session_s, self.receive_maximum, self.keepalive = session_s, receive_maximum, keepalive
        self.session_present = False
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._inbox: collections.deque[Inbound] = collections.deque()
        # the one waiter (``wait``) and how many messages it waits for: the socket's side wakes it
        # only then, or when the connection is lost (ingest-judge: a wake-up a read, ~16 messages,
        # with a task and a timer each in ``asyncio.wait_for``, was more than cutting their packets)
        self._waiter: asyncio.Future[None] | None = None
        self._want = 1
        self._control: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()  # CONNACK, SUBACK
        self._error: MqttError | None = None
        self._closed = asyncio.Event()
        self._paused = False
        self._last_rx = time.monotonic()
        self._pinger: asyncio.Task[None] | None = None
        self._mid = 0
        self.reads = 0  # socket reads handed over, and the PUBLISH packets cut out of them
        self.packets = 0

    # ---- the socket's side ------------------------------------------------------------------
    def _received(self, data: bytes) -> None:
        self._last_rx = time.monotonic()
        self.reads += 1
        buf = self._buf
        buf += data
        pos, size, inbox, got = 0, len(buf), self._inbox, 0
        view = memoryview(buf)  # slices of it copy once (a bytearray slice copies, bytes() again)
        new = tuple.__new__  # Inbound(...) runs a Python-level __new__; this is the same tuple
        try:
            while size - pos >= 2:
                first = buf[pos]
                b = buf[pos + 1]  # the remaining length: one or two bytes in nearly every packet
                if b < 0x80:
                    length, start = b, pos + 2
                elif size - pos >= 3 and buf[pos + 2] < 0x80:
                    length, start = (b & 0x7F) | (buf[pos + 2] << 7), pos + 3
                else:
                    head = read_varint(buf, pos + 1)
                    if head is None:
                        break
                    length, start = head
                end = start + length
                if end > size:
                    break
                kind = first >> 4
                if kind == 3:  # PUBLISH
                    n = (buf[start] << 8) | buf[start + 1]
                    at = start + 2 + n
                    if at > end:
                        raise MqttError("malformed PUBLISH from the broker: its topic runs past it")
                    topic = str(view[start + 2 : at], "utf-8")
                    qos = (first >> 1) & 3
                    mid = 0
                    if qos:
                        if qos > 1:
                            raise MqttError("the broker sent QoS 2; the ingest subscribes at QoS 1")
                        mid = (buf[at] << 8) | buf[at + 1]
                        at += 2
                    if buf[at] < 0x80:  # the properties' length, one byte in nearly every message
                        at += 1 + buf[at]
                    else:
                        plen = read_varint(buf, at)
                        if plen is None:
                            raise MqttError("malformed PUBLISH from the broker")
                        at = plen[1] + plen[0]
                    if at > end:
                        raise MqttError("malformed PUBLISH from the broker: its properties run past it")
                    inbox.append(new(Inbound, (topic, bytes(view[at:end]), qos, mid)))
                    got += 1
                elif kind in (2, 9):  # CONNACK, SUBACK
                    self._control.put_nowait((kind, bytes(view[start:end])))
                elif kind == 13:  # PINGRESP
                    pass
                elif kind == 14:  # DISCONNECT from the server, with its reason
                    body = bytes(view[start:end])
                    code = body[0] if body else 0
                    raise MqttError(f"the broker disconnected: {_reason(code, properties(body, 1)[0])}")
                else:
                    raise MqttError(f"unexpected packet type {kind} from the broker")
                pos = end
        except (MqttError, UnicodeDecodeError, IndexError) as exc:
            err = exc if isinstance(exc, MqttError) else MqttError(f"malformed packet from the broker: {exc}")
            self._lost(err)
            if self._transport is not None:
                self._transport.abort()
            return
        finally:
            view.release()
            del buf[:pos]
        if got:
            self.packets += got
            waiter = self._waiter
            if waiter is not None and len(inbox) >= self._want and not waiter.done():
                waiter.set_result(None)
            if len(inbox) > PAUSE_ABOVE and self._transport is not None and not self._paused:
                self._transport.pause_reading()
                self._paused = True

    def _lost(self, err: MqttError) -> None:
        if self._error is None:
            self._error = err
        self._closed.set()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._control.put_nowait((0, b""))

    # ---- the worker's side ------------------------------------------------------------------
    async def connect(self, timeout: float = CONNECT_TIMEOUT_S) -> None:
        """Open the connection and wait for the CONNACK; raises ``MqttError`` if refused."""
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: _Protocol(self), self.host, self.port), timeout
            )
        except (OSError, TimeoutError) as exc:
            raise MqttError(f"cannot reach {self.host}:{self.port}: {exc or 'timed out'}") from None
        self._send(
            connect_packet(
                self.client_id,
                username=self.username,
                password=self.password,
                keepalive=self.keepalive,
                session_s=self.session_s,
                receive_maximum=max(1, min(self.receive_maximum, 65535)),
            )
        )
        _, body = await self._answer(2, timeout)
        props = properties(body, 2)[0] if len(body) > 2 else {}
        if len(body) < 2 or body[1] >= 0x80:
            self.close()
            raise MqttError(
                f"the broker refused the connection: {_reason(body[1] if len(body) > 1 else 0x80, props)}"
            )
        self.session_present = bool(body[0] & 1)
        keepalive = props.get(0x13)  # Server Keep Alive: the broker's choice wins
        if isinstance(keepalive, int):
            self.keepalive = keepalive
        if self.keepalive:
            self._pinger = asyncio.create_task(self._ping(), name=f"mqtt-ping-{self.client_id}")

    async def subscribe(
        self, filters: list[str], qos: int = 1, timeout: float = CONNECT_TIMEOUT_S
    ) -> list[int]:
        """Subscribe (one SUBSCRIBE); the granted QoS or failure code of each filter."""
        self._mid = self._mid % 65535 + 1
        self._send(subscribe_packet(self._mid, filters, qos))
        _, body = await self._answer(9, timeout)
        pos = properties(body, 2)[1]
        return list(body[pos:])

    async def _answer(self, kind: int, timeout: float) -> tuple[int, bytes]:
        try:
            got, body = await asyncio.wait_for(self._control.get(), timeout)
        except TimeoutError:
            self.close()
            raise MqttError(f"no answer from the broker within {timeout:.0f} s") from None
        if got == 0 and self._error is not None:  # lost; an answer that came before still counts
            raise self._error
        if got != kind:
            raise MqttError(f"the broker sent packet type {got} where {kind} was due")
        return got, body

    async def wait(self, timeout: float | None = None, *, want: int = 1) -> bool:
        """Wait until ``want`` messages are in, or ``timeout`` passed: True if any message is in.
        Raises when the connection is gone and nothing is left to take. One waiter at a time (the
        worker's batch loop); the socket's side wakes it once, not at every read."""
        inbox = self._inbox
        if len(inbox) < want and self._error is None and (timeout is None or timeout > 0):
            loop = asyncio.get_running_loop()
            waiter = loop.create_future()
            timer = None if timeout is None else loop.call_later(timeout, _wake, waiter)
            self._waiter, self._want = waiter, max(1, want)
            try:
                await waiter
            finally:
                self._waiter, self._want = None, 1
                if timer is not None:
                    timer.cancel()
        if not inbox and self._error is not None:
            raise self._error
        return bool(inbox)

    def waiting(self) -> int:
        """Messages in, not yet taken (a method, not ``__len__``: a client with none is not false)."""
        return len(self._inbox)

    def take(self, n: int) -> list[Inbound]:
        """Up to ``n`` of the messages that arrived, oldest first."""
        inbox = self._inbox
        if n >= len(inbox):
            out = list(inbox)
            inbox.clear()
        else:
            pop = inbox.popleft
            out = [pop() for _ in range(n)]
        if self._paused and len(inbox) < PAUSE_ABOVE // 2 and self._transport is not None:
            self._transport.resume_reading()
            self._paused = False
        return out

    def ack(self, mids: list[int]) -> None:
        """PUBACK every QoS 1 message of a committed batch, in one write."""
        if mids:
            self._send(puback_packets(mids))

    def _send(self, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        if self._transport is None or self._transport.is_closing():
            raise MqttError("not connected")
        self._transport.write(data)

    async def _ping(self) -> None:
        """PINGREQ every half keep-alive; a broker silent for 1.5 keep-alives is gone."""
        every = max(0.5, self.keepalive / 2)
        while not self._closed.is_set():
            await asyncio.sleep(every)
            if time.monotonic() - self._last_rx > 1.5 * self.keepalive:
                self._lost(MqttError(f"no packet from the broker for {1.5 * self.keepalive:.0f} s"))
                if self._transport is not None:
                    self._transport.abort()
                return
            with contextlib.suppress(MqttError):
                self._send(b"\xc0\x00")

    def close(self) -> None:
        """DISCONNECT (normal: the session stays at the broker) and close the socket."""
        if self._pinger is not None:
            self._pinger.cancel()
            self._pinger = None
        if self._transport is not None and not self._transport.is_closing():
            with contextlib.suppress(Exception):
                self._transport.write(b"\xe0\x00")
            self._transport.close()
        self._lost(MqttError("closed"))
