"""Webhooks: a tenant's URLs that get its alerts and geofence events, signed, retried, bounded.

Each delivery is a POST of the JSON body with ``X-Anycar-Signature: sha256=HEX`` (HMAC-SHA256 of
the exact body bytes with the webhook's secret, as GitHub signs its hooks) and
``X-Anycar-Delivery``. ``submit`` only puts into a bounded queue (full: the oldest delivery is
dropped and counted), so a slow or failing receiver never blocks the ingest or the derivation.
A few sender tasks post with a timeout and retry a network error, a 429 or a 5xx with doubling
backoff; any other answer is final. Redirects are not followed.

SSRF: only ``http``/``https`` URLs without credentials; link-local, multicast, unspecified and
reserved addresses (169.254.169.254, the cloud metadata service, among them) are refused. A
literal address is checked at registration; before each post the host name is resolved once,
every address it resolves to is checked (one refused address refuses the delivery), and the
connection goes to a checked address (``PinnedTransport`` on ``PinnedBackend``, public httpx and
httpcore interfaces only: the HTTP client never resolves a name
itself, and takes no proxy from the environment), with the URL's own name in ``Host`` and as the
TLS server name. So a name that answers with a public address at the check and with
127.0.0.1 or 169.254.169.254 at the connect (DNS rebinding) gets nothing past the check. Private
and loopback addresses are allowed (a receiver on the operator's own network is the common case).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import ssl
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine

from anycar.fleet.domain_tables import webhooks

log = logging.getLogger("anycar.fleet.webhooks")
KINDS = (
    "alert",
    "alert_withdrawn",  # fleet-domain: an alert late data showed false (sent to "alert" hooks too)
    "geofence",
    # delivery-exec: the customer's notifications
    "delivery_eta",
    "delivery_arriving",
    "delivery_delivered",
    "delivery_failed",
)
ALSO = {"alert_withdrawn": ("alert",)}  # a hook for alerts hears of their withdrawal
MAX_PER_TENANT = 20
SIGNATURE = "X-Anycar-Signature"


class WebhookError(ValueError):
    """A webhook that cannot be registered; the message names the field."""


def check_url(url: Any) -> str:
    """The URL if a webhook may post to it, else ``WebhookError``."""
    if not isinstance(url, str) or not 0 < len(url) <= 2048:
        raise WebhookError("url: a string of 1-2048 characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookError(f"url: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise WebhookError(f"url: scheme {parts.scheme[:16]!r} refused (http or https only)")
    if not parts.hostname:
        raise WebhookError("url: no host")
    if parts.username is not None or parts.password is not None:
        raise WebhookError("url: credentials in the URL refused (the body is signed instead)")
    if port == 0:
        raise WebhookError("url: port 0")
    try:
        ip = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return url  # a name: its addresses are checked before each post (``resolve_checked``)
    check_address(ip)
    return url


def check_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    """``WebhookError`` if a webhook may not connect to ``ip`` (an IPv4-mapped IPv6 address is
    judged as the IPv4 address it carries: ``::ffff:169.254.169.254`` is the metadata service)."""
    judged = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else ip
    if judged.is_link_local or judged.is_multicast or judged.is_unspecified or judged.is_reserved:
        shown = f"{ip} (= {judged})" if judged is not ip else str(ip)
        raise WebhookError(f"url: address {shown} refused (link-local, multicast, unspecified or reserved)")


# A resolver: (host, port) -> every address the name has (the system's getaddrinfo by default).
Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def resolve_checked(resolve: Resolver, host: str, port: int) -> list[str]:
    """Resolve ``host`` once and check every address; the addresses, or ``WebhookError``."""
    try:
        found = await resolve(host, port)
    except OSError as exc:
        raise WebhookError(f"url: host {host[:64]!r} does not resolve ({exc})") from None
    if not found:
        raise WebhookError(f"url: host {host[:64]!r} has no address")
    addresses = []
    for text in found:
        ip = ipaddress.ip_address(text.split("%", 1)[0])  # a scope id (fe80::1%eth0) is link-local anyway
        check_address(ip)
        addresses.append(str(ip))
    return addresses


# The checked addresses of the host of the delivery being posted, for ``PinnedBackend``.
_PINNED: contextvars.ContextVar[tuple[str, list[str]] | None] = contextvars.ContextVar(
    "anycar_webhook_pinned", default=None
)


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend that connects only to the addresses ``_deliver`` checked for
    this host (never resolving the name again); TLS and ``Host`` still use the name."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        pinned = _PINNED.get()
        if pinned is None or pinned[0] != host.lower():
            raise httpcore.ConnectError(f"webhooks: {host[:64]} was not checked before the connect")
        error: Exception | None = None
        for address in pinned[1]:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error or httpcore.ConnectError(f"webhooks: no address for {host[:64]}")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


# httpcore's errors as httpx raises them (subclasses first), so callers catch ``httpx.HTTPError``.
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
)


@contextlib.contextmanager
def _as_httpx(request: httpx.Request) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for core, public in _ERRORS:
            if isinstance(exc, core):
                raise public(str(exc), request=request) from exc
        raise


class _Body(httpx.AsyncByteStream):
    """A response body read from httpcore's stream, its errors as httpx's."""

    def __init__(self, stream: Any, request: httpx.Request) -> None:
        self._stream, self._request = stream, request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx(self._request):
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        if hasattr(self._stream, "aclose"):
            await self._stream.aclose()


class PinnedTransport(httpx.AsyncBaseTransport):
    """An httpx transport (the public ``AsyncBaseTransport`` interface) over an httpcore
    connection pool on ``PinnedBackend``: every connection goes to an address ``_deliver``
    checked. No proxy (a proxy would resolve the name itself); httpx's own pool limits."""

    def __init__(self, verify: ssl.SSLContext | bool = True) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=100,  # httpx's own defaults, as the client had them
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=PinnedBackend(),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _as_httpx(request):
            answer = await self._pool.handle_async_request(core)
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_Body(answer.stream, request),
            extensions=answer.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


def pinned_transport(verify: ssl.SSLContext | bool = True) -> PinnedTransport:
    """The webhooks' transport: connects only to the checked addresses of each delivery."""
    return PinnedTransport(verify)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def add(engine: Engine, tenant_id: int, url: Any, events: Any = None) -> dict[str, Any]:
    """Register a webhook; the answer carries its secret (shown once)."""
    url = check_url(url)
    kinds = list(KINDS) if events is None else events
    if not isinstance(kinds, list) or not kinds or not all(k in KINDS for k in kinds):
        raise WebhookError(f"events: a non-empty list of {', '.join(KINDS)}")
    secret = secrets.token_urlsafe(32)
    with engine.begin() as conn:
        count = len(conn.execute(select(webhooks.c.id).where(webhooks.c.tenant_id == tenant_id)).all())
        if count >= MAX_PER_TENANT:
            raise WebhookError(f"webhooks: at most {MAX_PER_TENANT} per tenant")
        key = conn.execute(
            insert(webhooks)
            .values(
                tenant_id=tenant_id,
                url=url,
                secret=secret,
                events=sorted(set(kinds)),
                created=time.time(),
                delivered=0,
                failed=0,
            )
            .returning(webhooks.c.id)
        ).scalar_one()
    return {"id": int(key), "url": url, "events": sorted(set(kinds)), "secret": secret}


def listing(engine: Engine, tenant_id: int) -> list[dict[str, Any]]:
    w = webhooks.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(w.id, w.url, w.events, w.created, w.delivered, w.failed, w.last_status, w.last_ts)
            .where(w.tenant_id == tenant_id)
            .order_by(w.id)
        )
        return [dict(r._mapping) for r in rows]


def remove(engine: Engine, tenant_id: int, webhook_id: int) -> bool:
    with engine.begin() as conn:
        done = conn.execute(
            delete(webhooks).where(webhooks.c.tenant_id == tenant_id, webhooks.c.id == webhook_id)
        ).rowcount
    return bool(done)


@dataclass(slots=True)
class Delivery:
    webhook_id: int
    url: str
    secret: str
    body: bytes
    id: str


@dataclass
class WebhookStats:
    submitted: int = 0
    delivered: int = 0
    failed: int = 0
    retries: int = 0
    dropped: int = 0
    last_error: str = ""


class WebhookSender:
    """Posts deliveries (a fleet component: ``start()``/``stop()``)."""

    name = "webhooks"

    def __init__(
        self,
        engine: Engine,
        *,
        queue_max: int = 1000,
        attempts: int = 5,
        backoff_s: float = 0.5,
        timeout_s: float = 5.0,
        senders: int = 4,
        cache_s: float = 5.0,
        resolve: Resolver = system_resolve,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        """``resolve`` and ``verify``: the name lookup and the TLS trust (the system's by default)."""
        self.engine = engine
        self.queue_max = queue_max
        self.attempts, self.backoff_s, self.timeout_s = attempts, backoff_s, timeout_s
        self.senders = senders
        self.cache_s = cache_s
        self.resolve, self.verify = resolve, verify
        self.stats = WebhookStats()
        self._queue: asyncio.Queue[Delivery] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._hooks: dict[int, tuple[float, list[Any]]] = {}
        self._lock = threading.Lock()
        self._client: httpx.AsyncClient | None = None

    def _tenant_hooks(self, tenant_id: int) -> list[Any]:
        now = time.monotonic()
        with self._lock:
            hit = self._hooks.get(tenant_id)
        if hit is not None and now - hit[0] < self.cache_s:
            return hit[1]
        w = webhooks.c
        with self.engine.connect() as conn:
            rows = list(conn.execute(select(w.id, w.url, w.secret, w.events).where(w.tenant_id == tenant_id)))
        with self._lock:
            self._hooks[tenant_id] = (now, rows)
        return rows

    def forget(self, tenant_id: int) -> None:
        with self._lock:
            self._hooks.pop(tenant_id, None)

    def submit(self, tenant_id: int, kind: str, item: dict[str, Any], delivery_id: str | None = None) -> None:
        """Queue ``item`` for every webhook of the tenant that wants ``kind``; never waits.
        ``delivery_id`` (an outbox row's) makes ``X-Anycar-Delivery`` stable, ``ID.WEBHOOK``, so a
        receiver can drop a repeat; without it each submit gets a fresh one."""
        wanted = {kind, *ALSO.get(kind, ())}
        hooks = [h for h in self._tenant_hooks(tenant_id) if wanted & set(h.events or [])]
        if not hooks:
            return
        payload = {
            "type": kind,
            "sent": time.time(),
            **{k: v for k, v in item.items() if k not in ("tenant_id", "vehicle_id")},
        }
        body = json.dumps(payload, default=str, separators=(",", ":")).encode()
        for h in hooks:
            d = Delivery(
                h.id, h.url, h.secret, body, f"{delivery_id}.{h.id}" if delivery_id else uuid.uuid4().hex
            )
            self.stats.submitted += 1
            loop = self._loop
            if loop is None:
                self.stats.dropped += 1
                continue
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._put, d)

    def _put(self, d: Delivery) -> None:
        if self._queue is None:
            return
        if self._queue.full():
            self._queue.get_nowait()  # the oldest goes: a dead receiver cannot fill the memory
            self.stats.dropped += 1
        self._queue.put_nowait(d)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue(self.queue_max)
        self._client = httpx.AsyncClient(
            timeout=self.timeout_s,
            follow_redirects=False,
            trust_env=False,
            transport=pinned_transport(self.verify),
        )
        self._tasks = [asyncio.create_task(self._sender(), name=f"webhook-{i}") for i in range(self.senders)]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks = []
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        self._loop = None

    async def _sender(self) -> None:
        if self._queue is None:
            raise RuntimeError("webhooks: start() first")
        while True:
            d = await self._queue.get()
            try:
                status = await self._deliver(d)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never let one delivery kill the sender
                status = f"error: {type(exc).__name__}: {str(exc)[:200]}"
                log.exception("webhook %s: delivery failed", d.webhook_id)
            ok = status.startswith("2")
            if ok:
                self.stats.delivered += 1
            else:
                self.stats.failed += 1
                self.stats.last_error = f"webhook {d.webhook_id}: {status}"
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._record, d.webhook_id, ok, status)

    async def _deliver(self, d: Delivery) -> str:
        if self._client is None:
            raise RuntimeError("webhooks: not started")
        try:
            check_url(d.url)
            url = httpx.URL(d.url)
            host = url.raw_host.decode("ascii").lower()
            addresses = await resolve_checked(
                self.resolve, host, url.port or (443 if url.scheme == "https" else 80)
            )
        except WebhookError as exc:
            return f"refused: {exc}"
        _PINNED.set((host, addresses))  # this task's posts connect only to these
        headers = {
            "Content-Type": "application/json",
            SIGNATURE: sign(d.secret, d.body),
            "X-Anycar-Delivery": d.id,
            "User-Agent": "anycar-fleet-webhook",
        }
        delay = self.backoff_s
        status = ""
        for attempt in range(self.attempts):
            try:
                response = await self._client.post(d.url, content=d.body, headers=headers)
                status = f"{response.status_code}"
                if response.status_code < 300 or (response.status_code < 500 and response.status_code != 429):
                    return status
            except httpx.HTTPError as exc:
                status = f"error: {type(exc).__name__}: {str(exc)[:160]}"
            if attempt + 1 < self.attempts:
                self.stats.retries += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)
        return status

    def _record(self, webhook_id: int, ok: bool, status: str) -> None:
        w = webhooks.c
        with self.engine.begin() as conn:
            conn.execute(
                update(webhooks)
                .where(w.id == webhook_id)
                .values(
                    delivered=w.delivered + (1 if ok else 0),
                    failed=w.failed + (0 if ok else 1),
                    last_status=status[:256],
                    last_ts=time.time(),
                )
            )

    def status(self) -> dict[str, Any]:
        return {"queued": self._queue.qsize() if self._queue else 0, **vars(self.stats)}
