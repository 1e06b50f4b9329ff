"""The accessory SDK: an accessory in about twenty lines.

    lamp = Accessory("lamp.yaml", serial="L-0001", signing_key=vendor_key)

    @lamp.on("IsLightOn")
    async def switch(value):
        gpio.write(LAMP_PIN, value)          # the real hardware

    @lamp.every(5.0)
    async def report():
        await lamp.publish(Temperature=read_sensor())

    asyncio.run(lamp.run("ws://127.0.0.1:8765"))

The SDK speaks the protocol of docs/accessory-protocol.md: it answers the hub's challenge with
the (signed) manifest and a proof of its pairing code, keeps the token it gets when commissioned
(in ``credentials`` if given), sends heartbeats, runs command handlers and echoes the accepted
actuator value, and hands restrictions and power decisions to callbacks. A firmware update from
the hub (``update`` + ``update_chunk``) is collected within its declared size, its SHA-256 and
version checked (a downgrade or a bad hash is refused), then handed to the ``on_update``
callback; the new version is reported back and said in every later hello::

    @lamp.on_update
    async def flash(image: bytes, version: str) -> None:
        bootloader.write(image)              # raise Refused("why") to refuse
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import inspect
import json
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from ssl import SSLContext
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from anycar.accessories import protocol
from anycar.accessories.errors import ProtocolError
from anycar.accessories.manifest import read_manifest_data
from anycar.accessories.signing import sign_manifest
from anycar.wire.errors import WireError
from anycar.wire.firmware import newer

log = logging.getLogger(__name__)
Handler = Callable[[Any], Awaitable[Any] | Any]


class Refused(Exception):
    """Raise from a command handler to refuse the command; the reason reaches the requester."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class HubError(Exception):
    """The hub answered a request with an error."""

    def __init__(self, msg: dict[str, Any]) -> None:
        super().__init__(f"{msg.get('reason')}: {msg.get('message')}")
        self.code = msg.get("code")
        self.reason = msg.get("reason")
        self.field = msg.get("field")
        self.message = msg.get("message", "")


class AccessoryRefused(HubError):
    """The hub refused this accessory (``run`` raises it): ``reason`` is the hub's reason word,
    ``message`` its explanation. Subclasses name the common cases."""


class UntrustedKey(AccessoryRefused):
    """The hub does not accept who the accessory says it is: its manifest's key is not in the
    trust registry or was revoked, or it cannot prove the token it was commissioned with."""


class InvalidManifest(AccessoryRefused):
    """The hub found the manifest invalid; ``field`` names where."""


class WrongPairingCode(AccessoryRefused):
    """The owner entered a code that is not this accessory's pairing code."""


class LockedOut(AccessoryRefused):
    """Too many wrong pairing codes: the hub refuses pairing for a while."""


class NoFreeMount(AccessoryRefused):
    """No mount of a type this accessory fits is free, or its power budget is used up."""


REFUSALS: dict[str, type[AccessoryRefused]] = {
    "attestation_failed": UntrustedKey,
    "invalid_manifest": InvalidManifest,
    "pairing_failed": WrongPairingCode,
    "locked_out": LockedOut,
    "fit_refused": NoFreeMount,
}


class Accessory:
    def __init__(
        self,
        manifest: dict[str, Any] | str | Path,
        *,
        serial: str,
        pairing_code: str | None = None,
        signing_key: Ed25519PrivateKey | None = None,
        credentials: str | Path | None = None,
        echo: bool = True,
        ssl: SSLContext | None = None,
        firmware: str | None = None,
        max_update_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        if isinstance(manifest, (str, Path)):
            path = Path(manifest)
            manifest = read_manifest_data(path.read_text(encoding="utf-8"), str(path))
        self.manifest: dict[str, Any] = (
            sign_manifest(manifest, signing_key) if signing_key else dict(manifest)
        )
        self.serial = serial
        # the firmware it runs now (the signed manifest says what it shipped with)
        self.firmware = firmware or str(self.manifest.get("firmware_version", ""))
        self.max_update_bytes = max_update_bytes
        self.updates: list[dict[str, Any]] = []  # each update's outcome, newest last
        self._on_update: Callable[[bytes, str], Any] | None = None
        self._update: dict[str, Any] | None = None  # the one being received
        self.pairing_code = pairing_code or f"{secrets.randbelow(10**8):08d}"
        self.credentials = Path(credentials) if credentials is not None else None
        self.echo = echo
        self.ssl = ssl  # for wss:// hubs: trust the hub's certificate (or CA) here
        self.token: str | None = None
        self.instance: str | None = None
        self.paths: dict[str, str] = {}
        self.state = "disconnected"  # disconnected, awaiting_commissioning, running, refused, removed
        self.driving_state = "unknown"
        self.restrictions: list[str] = []
        self.max_string_length: int | None = None
        self.power = "on"
        self.power_reason = ""
        self.values: dict[str, Any] = {}
        self.errors: list[dict[str, Any]] = []
        self.commands: list[tuple[str, Any]] = []
        self.running = asyncio.Event()
        self.awaiting = asyncio.Event()
        self._handlers: dict[str, Handler] = {}
        self._periodic: list[tuple[float, Callable[[], Awaitable[Any]]]] = []
        self._on_running: list[Callable[[], Awaitable[Any]]] = []
        self._on_restrictions: list[Callable[[list[str], str], Any]] = []
        self._on_power: list[Callable[[str, str], Any]] = []
        self._on_subscription: dict[str, Callable[[list[dict[str, Any]]], Any]] = {}
        self._ws: ClientConnection | None = None
        self._requests: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._next = 0
        self._heartbeat_s = 2.0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.refusal: AccessoryRefused | None = None
        if self.credentials is not None and self.credentials.exists():
            saved = json.loads(self.credentials.read_text(encoding="utf-8"))
            self.token, self.instance = saved.get("token"), saved.get("instance")

    # -- declaring behaviour ----------------------------------------------------------------
    def on(self, name: str) -> Callable[[Handler], Handler]:
        """Register the handler for commands to signal ``name`` (a local name from the manifest)."""

        def deco(fn: Handler) -> Handler:
            self._handlers[name] = fn
            return fn

        return deco

    def every(self, seconds: float) -> Callable[[Callable[[], Awaitable[Any]]], Callable[[], Awaitable[Any]]]:
        """Run ``fn`` every ``seconds`` while running (sensors publish from here)."""

        def deco(fn: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
            self._periodic.append((seconds, fn))
            return fn

        return deco

    def on_running(self, fn: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
        """Run ``fn`` each time the accessory starts running (after commissioning or reconnecting)."""
        self._on_running.append(fn)
        return fn

    def on_restrictions(self, fn: Callable[[list[str], str], Any]) -> Callable[[list[str], str], Any]:
        self._on_restrictions.append(fn)
        return fn

    def on_update(self, fn: Callable[[bytes, str], Any]) -> Callable[[bytes, str], Any]:
        """Register who applies a firmware image (``fn(image, version)``; raise ``Refused``)."""
        self._on_update = fn
        return fn

    def on_power(self, fn: Callable[[str, str], Any]) -> Callable[[str, str], Any]:
        self._on_power.append(fn)
        return fn

    # -- talking to the hub -----------------------------------------------------------------
    async def publish(self, values: dict[str, Any] | None = None, /, **kw: Any) -> None:
        """Send values by local name; fire-and-forget (errors arrive in ``self.errors``)."""
        data = {**(values or {}), **kw}
        self.values.update(data)
        await self._send({"type": "publish", "values": data})

    async def publish_checked(self, values: dict[str, Any] | None = None, /, **kw: Any) -> dict[str, Any]:
        """Like ``publish`` but waits for the hub's answer; raises ``HubError`` if refused."""
        data = {**(values or {}), **kw}
        self.values.update(data)
        return await self._request({"type": "publish", "values": data})

    async def actuate(self, path: str, value: Any) -> dict[str, Any]:
        """Ask the hub to set another actuator (needs Operate and a grant naming it)."""
        return await self._request({"type": "actuate", "path": path, "value": value})

    async def subscribe(self, paths: list[str], callback: Callable[[list[dict[str, Any]]], Any]) -> None:
        msg_id = self._new_id()
        self._on_subscription[msg_id] = callback
        await self._request({"type": "subscribe", "paths": paths}, msg_id=msg_id)

    async def send_raw(self, text: str) -> None:
        """Send a frame as is (for tests and protocol experiments)."""
        assert self._ws is not None  # nosec B101 # narrows an Optional for mypy; an invariant of this object, not a check of outside input
        await self._ws.send(text)

    def _new_id(self) -> str:
        self._next += 1
        return f"a{self._next}"

    async def _send(self, msg: dict[str, Any]) -> None:
        if self._ws is None:
            raise ConnectionError("not connected to a hub")
        await self._ws.send(protocol.encode(msg))

    async def _request(
        self, msg: dict[str, Any], msg_id: str | None = None, timeout: float = 5.0
    ) -> dict[str, Any]:
        rid = msg_id or self._new_id()
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._requests[rid] = fut
        try:
            await self._send({**msg, "id": rid})
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._requests.pop(rid, None)

    # -- running ----------------------------------------------------------------------------
    async def run(self, url: str, *, reconnect: bool = True, retry_s: float = 1.0) -> None:
        """Stay connected to the hub at ``url`` until ``stop()``; reconnect after drops.

        Raises ``AccessoryRefused`` (``UntrustedKey``, ``WrongPairingCode``, ``LockedOut``,
        ``NoFreeMount``, ``InvalidManifest``) with the hub's reason when the hub refuses it:
        retrying would only be refused again, so the maker should see why at once.
        """
        self._stop.clear()
        self.refusal = None
        while not self._stop.is_set():
            try:
                await self._session(url)
            except (OSError, ConnectionClosed, InvalidHandshake, ProtocolError) as exc:
                log.info("accessory %s: connection ended: %s", self.serial, exc)
            finally:
                self._ws = None
                self.running.clear()
                self.awaiting.clear()
                if self.state in ("running", "awaiting_commissioning"):
                    self.state = "disconnected"
            if self.refusal is not None:
                raise self.refusal
            if not reconnect or self.state in ("refused", "removed"):
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), retry_s)

    def start(self, url: str, **kw: Any) -> asyncio.Task[None]:
        """``run`` in a background task."""
        self._task = asyncio.create_task(self.run(url, **kw), name=f"accessory-{self.serial}")
        return self._task

    async def stop(self) -> None:
        self._stop.set()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, AccessoryRefused):  # kept in .refusal
                await self._task

    async def drop(self) -> None:
        """Cut the connection abruptly (no close handshake), as a failing device would."""
        if self._ws is not None:
            self._ws.transport.abort()

    @contextlib.asynccontextmanager
    async def connected(self, url: str) -> AsyncIterator[Accessory]:
        self.start(url)
        try:
            yield self
        finally:
            await self.stop()

    async def _session(self, url: str) -> None:
        extra: dict[str, Any] = {"ssl": self.ssl} if url.startswith("wss:") and self.ssl is not None else {}
        async with connect(
            url, max_size=protocol.MAX_MESSAGE_BYTES, compression=None, proxy=None, **extra
        ) as ws:
            self._ws = ws
            challenge = protocol.parse_message(await ws.recv(), protocol.TO_ACCESSORY)
            nonce = challenge["nonce"]
            hello: dict[str, Any] = {
                "type": "hello",
                "protocol": protocol.PROTOCOL_VERSION,
                "manifest": self.manifest,
                "serial": self.serial,
                "pairing_proof": protocol.pairing_proof(self.pairing_code, nonce, self.serial),
            }
            if self.token:
                hello["auth"] = protocol.auth_proof(self.token, nonce)
            if self.firmware:
                hello["firmware"] = self.firmware
            await ws.send(protocol.encode(hello))
            tasks = [asyncio.create_task(self._heartbeats())]
            try:
                async for raw in ws:
                    try:
                        msg = protocol.parse_message(raw, protocol.TO_ACCESSORY)
                    except ProtocolError as exc:
                        log.warning("accessory %s: bad message from hub: %s", self.serial, exc)
                        continue
                    await self._dispatch(msg, tasks)
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
                for fut in self._requests.values():
                    if not fut.done():
                        fut.set_exception(ConnectionError("connection to the hub ended"))

    async def _dispatch(self, msg: dict[str, Any], tasks: list[asyncio.Task[Any]]) -> None:
        kind = msg["type"]
        if kind == "welcome":
            self._heartbeat_s = float(msg["heartbeat_interval_s"])
            self.state = msg["state"]
            if self.state == "running":
                self.instance = msg.get("instance")
                self.paths = dict(msg.get("paths") or {})
                self._start_periodic(tasks)
                self.running.set()
            else:
                log.info(
                    "accessory %s is waiting to be paired: its pairing code is %s",
                    self.serial,
                    self.pairing_code,
                )
                self.awaiting.set()
        elif kind == "commissioned":
            self.token, self.instance, self.paths = msg["token"], msg["instance"], dict(msg["paths"])
            if self.credentials is not None:
                self.credentials.write_text(json.dumps({"token": self.token, "instance": self.instance}))
            self.state = "running"
            self.awaiting.clear()
            self._start_periodic(tasks)
            self.running.set()
        elif kind == "command":
            tasks.append(asyncio.create_task(self._command(msg)))
        elif kind == "restrictions":
            self.driving_state = msg["driving_state"]
            self.restrictions = list(msg["restrictions"])
            self.max_string_length = msg.get("max_string_length")
            for on_r in self._on_restrictions:
                await _maybe_await(on_r(self.restrictions, self.driving_state))
        elif kind == "power":
            self.power, self.power_reason = msg["state"], msg.get("reason", "")
            for on_p in self._on_power:
                await _maybe_await(on_p(self.power, self.power_reason))
        elif kind == "values":
            callback = self._on_subscription.get(str(msg["id"]))
            if callback is not None:
                await _maybe_await(callback(msg["values"]))
        elif kind in ("result", "error"):
            fut = self._requests.get(str(msg.get("id"))) if "id" in msg else None
            if fut is not None and not fut.done():
                if kind == "result":
                    fut.set_result(msg)
                else:
                    fut.set_exception(HubError(msg))
            elif kind == "error":
                self.errors.append(msg)
                del self.errors[:-100]
                refusal = REFUSALS.get(str(msg.get("reason")))
                if refusal is not None and self.state != "running":
                    self.state = "refused"
                    self.refusal = refusal(msg)
                    if self._ws is not None:
                        await self._ws.close()
                elif msg.get("reason") == "bad_message" and self.state not in (
                    "running",
                    "awaiting_commissioning",
                ):
                    self.state = "refused"
        elif kind == "update":
            await self._begin_update(msg)
        elif kind == "update_chunk":
            await self._update_chunk(msg)
        elif kind == "removed":
            self.state = "removed"
            self.token = None
            if self.credentials is not None:
                self.credentials.unlink(missing_ok=True)

    async def _command(self, msg: dict[str, Any]) -> None:
        name, value = msg["name"], msg["value"]
        self.commands.append((name, value))
        handler = self._handlers.get(name)
        try:
            if handler is not None:
                await _maybe_await(handler(value))
        except Refused as exc:
            await self._send({"type": "command_result", "id": msg["id"], "ok": False, "reason": exc.reason})
            return
        except Exception as exc:
            await self._send(
                {"type": "command_result", "id": msg["id"], "ok": False, "reason": f"accessory error: {exc}"}
            )
            return
        await self._send({"type": "command_result", "id": msg["id"], "ok": True})
        if self.echo:
            await self.publish({name: value})

    async def _update_answer(self, update_id: str, ok: bool, reason: str = "") -> None:
        self._update = None
        self.updates.append({"id": update_id, "ok": ok, "version": self.firmware, "reason": reason})
        del self.updates[:-20]
        answer: dict[str, Any] = {
            "type": "update_result",
            "id": update_id,
            "ok": ok,
            "version": self.firmware,
        }
        if reason:
            answer["reason"] = reason[:500]
        await self._send(answer)

    async def _begin_update(self, msg: dict[str, Any]) -> None:
        uid, version = str(msg["id"]), str(msg["version"])
        try:
            is_newer = newer(version, self.firmware) if self.firmware else True
        except WireError:
            is_newer = True  # our own version is not semver: let the vendor's callback decide
        if self._on_update is None:
            await self._update_answer(uid, False, "this accessory cannot be updated (no on_update)")
        elif not is_newer:
            await self._update_answer(
                uid, False, f"downgrade refused: runs {self.firmware}, offered {version}"
            )
        elif int(msg["size"]) > self.max_update_bytes:
            await self._update_answer(uid, False, f"{msg['size']} bytes is more than {self.max_update_bytes}")
        else:
            self._update = {**msg, "id": uid, "parts": [], "got": 0}

    async def _update_chunk(self, msg: dict[str, Any]) -> None:
        upd = self._update
        if upd is None or str(msg["id"]) != upd["id"]:
            return  # refused already, or not ours
        try:
            part = base64.b64decode(msg["data"], validate=True)
        except (binascii.Error, ValueError):
            await self._update_answer(upd["id"], False, f"chunk {msg['index']} is not base64")
            return
        if msg["index"] != len(upd["parts"]) or upd["got"] + len(part) > upd["size"]:
            await self._update_answer(upd["id"], False, f"chunk {msg['index']} out of order or past the size")
            return
        upd["parts"].append(part)
        upd["got"] += len(part)
        if upd["got"] < upd["size"]:
            return
        image = b"".join(upd["parts"])
        if hashlib.sha256(image).hexdigest() != upd["sha256"]:
            await self._update_answer(upd["id"], False, "bad hash: the image is not what the hub announced")
            return
        try:
            await _maybe_await(self._on_update(image, upd["version"]))  # type: ignore[misc]
        except Refused as exc:
            await self._update_answer(upd["id"], False, exc.reason)
            return
        except Exception as exc:
            await self._update_answer(upd["id"], False, f"accessory error: {exc}")
            return
        self.firmware = upd["version"]
        await self._update_answer(upd["id"], True)

    async def _heartbeats(self) -> None:
        while True:
            if self.state not in ("running", "awaiting_commissioning"):
                await asyncio.sleep(0.05)  # the hub's interval comes with its welcome
                continue
            await asyncio.sleep(self._heartbeat_s)
            await self._send({"type": "heartbeat"})

    def _start_periodic(self, tasks: list[asyncio.Task[Any]]) -> None:
        for fn in self._on_running:
            tasks.append(asyncio.create_task(_maybe_await(fn())))
        for seconds, fn in self._periodic:
            tasks.append(asyncio.create_task(self._repeat(seconds, fn)))

    async def _repeat(self, seconds: float, fn: Callable[[], Awaitable[Any]]) -> None:
        """Run ``fn`` every ``seconds``; the link to the hub going away (closed cleanly or not,
        even in the middle of a publish) ends it with one line, not a traceback: the session
        starts it again on the next welcome. Any other failure is the maker's bug: logged with
        its traceback, and the next round still runs."""
        name = getattr(fn, "__name__", "periodic")
        while True:
            try:
                await fn()
            except (ConnectionError, ConnectionClosed) as exc:
                log.info(
                    "accessory %s: %s stopped: the connection to the hub ended (%s)", self.serial, name, exc
                )
                return
            except Exception:
                log.exception("accessory %s: periodic task %s failed", self.serial, name)
            await asyncio.sleep(seconds)


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value
