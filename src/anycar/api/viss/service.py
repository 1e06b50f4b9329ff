"""VISS v2 semantics over the broker, independent of the transport (WebSocket or HTTP).

``VissService`` answers single requests; ``VissSession`` is one client connection with its
subscriptions, its rate limit and its way to send. Values travel as text (``"42.5"``,
``"true"``; arrays as lists of text), as VISS and the KUKSA databroker send them; a set also
takes JSON numbers and booleans.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from itertools import chain, repeat
from typing import Any

from anycar.api.auth import Action, Authorizer, Grants
from anycar.api.viss.curvelog import CurveLog
from anycar.api.viss.errors import VissError, from_actuation, from_anycar
from anycar.api.viss.filters import FILTERS_SERVED, SERVER_CAPABILITIES, Query, build_query
from anycar.api.viss.history import HistoryRecorder
from anycar.api.viss.messages import Request, error_response, iso, now_iso, parse_request, peek
from anycar.broker import Datapoint, SignalBroker, Subscription
from anycar.errors import AnycarError
from anycar.model import Catalog, Signal, paths
from anycar.model.datatypes import ValueRejected, element_type, is_array, is_numeric, parse_text, to_text
from anycar.ratelimit import TokenBucket

log = logging.getLogger(__name__)
# a message to send: an object, or one already encoded as JSON text (notifications)
Send = Callable[[dict[str, Any] | str], Awaitable[None]]
# the transports of server_capabilities: HTTP and WebSocket, over TLS when a certificate is set
TRANSPORTS_SERVED = ("https", "wss")


@dataclass(frozen=True)
class VissLimits:
    """What one connection may ask for; beyond it the spec's error comes back."""

    max_message_bytes: int = 65_536
    requests_per_s: float = 1_000.0
    burst: int = 2_000
    max_subscriptions: int = 256
    max_signals_per_request: int = 2_000
    queue_size: int = 10_000
    max_pending_sets: int = 64
    history_per_signal: int = 100  # values kept per signal for the history filter; 0: none
    # a subscriber's update that waited longer than this is dropped and counted (VISS and
    # kuksa.val.v2 subscriptions alike); 0: no time bound, only queue_size
    max_update_age_ms: int = 2_000

    @property
    def max_update_age_s(self) -> float | None:
        return self.max_update_age_ms / 1000 if self.max_update_age_ms else None


def wire_value(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [to_text(v) for v in value]
    return to_text(value)


def value_from_wire(sig: Signal, value: Any) -> Any:
    """Text (or JSON) from a set request -> the Python value the broker validates."""
    try:
        if isinstance(value, str):
            return parse_text(sig.datatype, value)
        if isinstance(value, list) and is_array(sig.datatype):
            base = element_type(sig.datatype)
            return [parse_text(base, v) if isinstance(v, str) and base != "string" else v for v in value]
    except ValueRejected as exc:
        raise VissError("invalid_value", f"{sig.path}: {exc}") from None
    return value


def data_object(path: str, dps: list[Datapoint]) -> dict[str, Any]:
    if len(dps) == 1:
        dp = dps[0]
        return {"path": path, "dp": {"value": wire_value(dp.value), "ts": iso(dp.timestamp)}}
    return {"path": path, "dp": [{"value": wire_value(d.value), "ts": iso(d.timestamp)} for d in dps]}


def data_field(batch: list[Datapoint]) -> Any:
    """One object for one signal, a list for several; repeated updates of a signal become a dp list.

    One pass over the batch: it runs for every notification of every subscriber.
    """
    objects: list[dict[str, Any]] = []
    seen: dict[str, dict[str, Any]] = {}
    for dp in batch:
        value = dp.value
        point = {"value": None if value is None else wire_value(value), "ts": iso(dp.timestamp)}
        obj = seen.get(dp.path)
        if obj is None:
            obj = seen[dp.path] = {"path": dp.path, "dp": point}
            objects.append(obj)
        elif isinstance(obj["dp"], list):
            obj["dp"].append(point)
        else:
            obj["dp"] = [obj["dp"], point]
    return objects[0] if len(objects) == 1 else objects


_OBJECT_HEAD: dict[str, str] = {}  # path -> '{"path":"...","dp":' (paths come from the catalog)


def _value_json(value: Any) -> str:
    """``wire_value(value)`` as JSON text: numbers and booleans need no escaping, text does."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return '"true"' if value else '"false"'
    if isinstance(value, (int, float)):
        return f'"{value}"'
    return json.dumps(wire_value(value), separators=(",", ":"))


def _head(path: str) -> str:
    head = _OBJECT_HEAD.get(path)
    if head is None:
        head = _OBJECT_HEAD[path] = '{"path":' + json.dumps(path) + ',"dp":'
    return head


def notification_text(sid: str, batch: list[Datapoint]) -> str:
    """A subscription notification as JSON text: what ``json.dumps`` of ``data_field(batch)``
    in its envelope gives, built directly, since it runs for every update every subscriber
    gets. A path's JSON head is encoded once; the timestamp text once per run of equal
    timestamps (the values of one provider message share theirs); numbers, the usual value,
    skip the general encoder. A batch in which no signal repeats (the usual one: a provider
    message) is one object per update, each built as one string; one that repeats a signal
    groups its updates into a ``dp`` list."""
    if not batch:
        return _envelope(sid, "[]")
    paths, values, stamps = zip(
        *batch, strict=True
    )  # C loops over the batch: the usual case needs no Python per value
    unique = set(paths)
    if len(unique) < len(paths):
        return _grouped_notification_text(sid, batch)
    if stamps.count(stamps[0]) == len(stamps) and _NUMBERS.issuperset(map(type, values)):
        return _numbers_notification_text(sid, unique, paths, values, stamps[0])
    heads = _OBJECT_HEAD
    last_ts: float | None = None
    tail = ""
    objects = []
    for path, value, ts in batch:  # one unpack of each Datapoint instead of three attribute reads
        if ts != last_ts:
            last_ts = ts
            tail = ',"ts":"' + iso(ts) + '"}}'
        head = heads.get(path) or _head(path)
        kind = type(value)
        if kind is float or kind is int:
            objects.append(f'{head}{{"value":"{value}"{tail}')
        else:
            objects.append(head + '{"value":' + _value_json(value) + tail)
    return _envelope(sid, objects[0] if len(objects) == 1 else "[" + ",".join(objects) + "]")


_NUMBERS = frozenset((float, int))  # exact types: a bool is an int, but is sent as "true"
_VALUE_HEAD: dict[str, str] = {}  # path -> '{"path":"...","dp":{"value":"'


def _numbers_notification_text(
    sid: str, unique: set[str], paths: tuple[str, ...], values: tuple[Any, ...], ts: float
) -> str:
    """``notification_text`` of the usual provider message: one timestamp, no signal repeated,
    every value an ``int`` or ``float`` (its text is ``str(value)``, what the f-string gives).
    The pieces are interleaved and joined by C loops (``zip``, ``map``, one ``join``), with no
    Python step per value."""
    value_heads = _VALUE_HEAD
    for path in unique.difference(value_heads):
        value_heads[path] = _head(path) + '{"value":"'
    end = '"' + ',"ts":"' + iso(ts) + '"}}'
    pieces = ['{"action":"subscription","subscriptionId":', json.dumps(sid), ',"data":']
    many = len(paths) > 1
    if many:
        pieces.append("[")
    pieces += chain.from_iterable(
        zip(map(value_heads.__getitem__, paths), map(str, values), repeat(end + ","))
    )
    pieces[-1] = end + ("]" if many else "") + ',"ts":"' + now_iso() + '"}'
    return "".join(pieces)


def _grouped_notification_text(sid: str, batch: list[Datapoint]) -> str:
    groups: dict[str, list[str]] = {}
    last_ts: float | None = None
    tail = ""
    for path, value, ts in batch:
        if ts != last_ts:
            last_ts = ts
            tail = ',"ts":"' + iso(ts) + '"}'
        kind = type(value)
        if kind is float or kind is int:
            point = f'{{"value":"{value}"{tail}'
        else:
            point = '{"value":' + _value_json(value) + tail
        points = groups.get(path)
        if points is None:
            groups[path] = [point]
        else:
            points.append(point)
    objects = [
        _head(path) + (points[0] if len(points) == 1 else "[" + ",".join(points) + "]") + "}"
        for path, points in groups.items()
    ]
    return _envelope(sid, objects[0] if len(objects) == 1 else "[" + ",".join(objects) + "]")


def _envelope(sid: str, data: str) -> str:
    return (
        '{"action":"subscription","subscriptionId":'
        + json.dumps(sid)
        + ',"data":'
        + data
        + ',"ts":"'
        + now_iso()
        + '"}'
    )


class VissService:
    def __init__(
        self, broker: SignalBroker, authorizer: Authorizer, limits: VissLimits | None = None
    ) -> None:
        self.broker = broker
        self.authorizer = authorizer
        self.limits = limits or VissLimits()
        self.sessions: set[VissSession] = set()
        self._ids = itertools.count(1)
        self.history: HistoryRecorder | None = None

    def start_history(self) -> None:
        """Record recent values (needs a running event loop); off when the limit is 0."""
        if self.limits.history_per_signal > 0 and self.history is None:
            self.history = HistoryRecorder(self.broker, self.limits.history_per_signal)
            self.history.start()

    def next_subscription_id(self) -> str:
        return str(next(self._ids))

    def grants(self, token: str | None) -> Grants:
        return self.authorizer.grants(token)

    def resolve(self, grants: Grants, query: Query, action: Action) -> list[Signal]:
        budget = paths.Budget(signals=self.limits.max_signals_per_request)
        signals = grants.resolve_all(self.broker.catalog, query.patterns, action, budget)
        return signals

    # -- get / set (any transport) -------------------------------------------------------------
    def get(self, req: Request, default_token: str | None = None) -> dict[str, Any]:
        try:
            grants = self.grants(req.authorization or default_token)
            query = build_query(req.path, req.filters, "get")
            if query.dynamic == SERVER_CAPABILITIES:
                return self._capabilities(req)
            signals = self.resolve(grants, query, Action.READ)
        except AnycarError as exc:
            raise from_anycar(exc) from None
        if query.metadata:
            return {
                "action": "get",
                "requestId": req.request_id,
                "metadata": metadata_of(self.broker.catalog, req.path, signals, query.metadata_keys),
                "ts": now_iso(),
            }
        if query.history_s is not None:
            return self._history(req, signals, query.history_s)
        if len(signals) == 1:
            dp = self.broker.get(signals[0].path)
            if dp is None:
                raise VissError("unavailable_data", f"{signals[0].path} has no value yet")
            data: Any = data_object(dp.path, [dp])
        else:
            data = []
            for sig in signals:
                dp = self.broker.get(sig.path)
                data.append(
                    data_object(sig.path, [dp])
                    if dp is not None
                    else {"path": sig.path, "dp": {"value": None, "ts": now_iso()}}
                )
        return {"action": "get", "requestId": req.request_id, "data": data, "ts": now_iso()}

    def _capabilities(self, req: Request) -> dict[str, Any]:
        """dynamic-metadata ``server_capabilities``: no scope is asked for (the spec applies no
        access control to it), but the caller is authenticated first, as for every request."""
        return {
            "action": "get",
            "requestId": req.request_id,
            "metadata": {"filter": list(FILTERS_SERVED), "transport_protocol": list(TRANSPORTS_SERVED)},
            "ts": now_iso(),
        }

    def _history(self, req: Request, signals: list[Signal], period_s: float) -> dict[str, Any]:
        """Recorded values of the period, oldest first; the current value is not history
        (VISS v2 Core: "from current time, excluding the current value, and backwards")."""
        if self.history is None:
            raise VissError(
                "unavailable_data", "this hub records no history (limits.history_per_signal is 0)"
            )
        start = time.time() - period_s
        objects = []
        for sig in signals:
            dps = self.history.since(sig.path, start)
            current = self.broker.get(sig.path)
            if dps and current is not None and dps[-1] == current:
                dps.pop()
            if dps:
                objects.append(
                    {
                        "path": sig.path,
                        "dp": [{"value": wire_value(d.value), "ts": iso(d.timestamp)} for d in dps],
                    }
                )
        if not objects:
            raise VissError(
                "unavailable_data", f"no values recorded in the last {period_s:g} s before the current one"
            )
        data: Any = objects[0] if len(objects) == 1 else objects
        return {"action": "get", "requestId": req.request_id, "data": data, "ts": now_iso()}

    async def set(self, req: Request, default_token: str | None = None) -> dict[str, Any]:
        try:
            grants = self.grants(req.authorization or default_token)
            sig = grants.signal(self.broker.catalog, req.path, Action.ACTUATE)
            value = value_from_wire(sig, req.value)
            result = await self.broker.actuate(sig.path, value, requester=grants.subject or None)
        except AnycarError as exc:
            raise from_anycar(exc, setting=True) from None
        if not result.ok:
            raise from_actuation(result)
        return {"action": "set", "requestId": req.request_id, "ts": now_iso()}

    def close(self) -> None:
        for session in list(self.sessions):
            session.close()
        if self.history is not None and self.history._sub is not None:
            self.history._sub.close()


def metadata_of(
    catalog: Catalog, path: str, signals: list[Signal], keys: tuple[str, ...] = ()
) -> dict[str, Any]:
    """static-metadata: the node asked for, keyed by its own name, holding the given signals
    (``{"FuelSystem": {"type": "branch", ..., "children": {...}}}``); ``keys`` keeps only those
    metadata keys (``type`` and ``children`` always stay, so the tree can be walked)."""
    node = path.rsplit(".", 1)[-1]
    leaf = catalog.find(path)
    if leaf is not None:
        return {node: _selected(leaf.metadata(), keys)}
    root = _branch_metadata(catalog, path, keys)
    for sig in signals:
        if not sig.path.startswith(path + "."):
            continue
        level = root
        parts = sig.path[len(path) + 1 :].split(".")
        prefix = path
        for name in parts[:-1]:
            prefix = f"{prefix}.{name}"
            children = level.setdefault("children", {})
            if name not in children:
                children[name] = _branch_metadata(catalog, prefix, keys)
            level = children[name]
        level.setdefault("children", {})[parts[-1]] = _selected(sig.metadata(), keys)
    return {node: root}


def _branch_metadata(catalog: Catalog, path: str, keys: tuple[str, ...]) -> dict[str, Any]:
    branch = catalog.branch(path)
    out: dict[str, Any] = {"type": "branch", "description": branch.description if branch else ""}
    if branch is not None and branch.comment:
        out["comment"] = branch.comment
    return _selected(out, keys)


def _selected(metadata: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    if not keys:
        return metadata
    return {k: v for k, v in metadata.items() if k in keys or k == "type"}


class VissSession:
    """One client (a WebSocket connection): requests in, responses and notifications out."""

    def __init__(
        self, service: VissService, send: Send, *, default_token: str | None = None, peer: str = ""
    ) -> None:
        self.service = service
        self.send = send
        self.default_token = default_token
        self.peer = peer
        self.limit = TokenBucket(service.limits.requests_per_s, service.limits.burst)
        self.subscriptions: dict[str, tuple[Subscription | None, asyncio.Task[None]]] = {}
        self.pending_sets: set[asyncio.Task[None]] = set()
        self.requests = 0
        self.errors = 0
        service.sessions.add(self)

    async def handle(self, text: str | bytes) -> None:
        """Serve one message; every failure becomes an error response, never an exception."""
        self.requests += 1
        action: str | None = None
        request_id: str | None = None
        try:
            if not self.limit.take():
                action, request_id = (
                    peek(text) if len(text) <= self.service.limits.max_message_bytes else (None, None)
                )
                raise VissError(
                    "too_many_requests", f"more than {self.service.limits.requests_per_s:g} requests/s"
                )
            try:
                req = parse_request(text, self.service.limits.max_message_bytes)
            except VissError:
                if len(text) <= self.service.limits.max_message_bytes:
                    action, request_id = peek(text)
                raise
            action, request_id = req.action, req.request_id
            if req.action == "get":
                await self.send(self.service.get(req, self.default_token))
            elif req.action == "set":
                self._start_set(req)
            elif req.action == "subscribe":
                await self._subscribe(req)
            else:
                await self._unsubscribe(req)
        except VissError as err:
            self.errors += 1
            await self.send(error_response(err, action, request_id))
        except Exception as exc:  # a bug must not end the connection or reach other clients
            log.exception("VISS request from %s failed", self.peer)
            self.errors += 1
            await self.send(
                error_response(VissError("internal_server_error", str(exc)[:200]), action, request_id)
            )

    def _start_set(self, req: Request) -> None:
        if len(self.pending_sets) >= self.service.limits.max_pending_sets:
            raise VissError(
                "too_many_requests", f"more than {self.service.limits.max_pending_sets} sets in flight"
            )

        async def run() -> None:
            try:
                response = await self.service.set(req, self.default_token)
            except VissError as err:
                self.errors += 1
                response = error_response(err, "set", req.request_id)
            with contextlib.suppress(Exception):
                await self.send(response)

        task = asyncio.create_task(run())
        self.pending_sets.add(task)
        task.add_done_callback(self.pending_sets.discard)

    async def _subscribe(self, req: Request) -> None:
        if len(self.subscriptions) >= self.service.limits.max_subscriptions:
            raise VissError(
                "too_many_requests", f"more than {self.service.limits.max_subscriptions} subscriptions"
            )
        service = self.service
        try:
            grants = service.grants(req.authorization or self.default_token)
            query = build_query(req.path, req.filters, "subscribe")
            signals = service.resolve(grants, query, Action.READ)
            if query.curvelog is not None:
                flat = [s.path for s in signals if not is_numeric(s.datatype) or is_array(s.datatype)]
                if flat:
                    raise VissError("invalid_data", f"curvelog needs numeric signals; {flat[0]} is not")
            sub = None
            if query.period_s is None:
                sub = service.broker.subscribe(
                    [s.path for s in signals],
                    filter=query.subscription_filter(),
                    queue_size=service.limits.queue_size,
                    name=f"viss:{grants.subject or 'anonymous'}@{self.peer}",
                    max_age_s=service.limits.max_update_age_s,
                )
        except AnycarError as exc:
            raise from_anycar(exc) from None
        sid = service.next_subscription_id()
        try:
            await self.send(
                {"action": "subscribe", "subscriptionId": sid, "requestId": req.request_id, "ts": now_iso()}
            )
        except BaseException:
            if sub is not None:  # the client went away before it learned of its subscription
                sub.close()
            raise
        if sub is not None:
            curve = CurveLog(*query.curvelog) if query.curvelog is not None else None
            task = asyncio.create_task(self._forward(sid, sub, grants, curve))
        else:
            assert query.period_s is not None  # nosec B101 # narrows an Optional for mypy; an invariant of this object, not a check of outside input
            task = asyncio.create_task(self._periodic(sid, signals, query.period_s, grants))
        self.subscriptions[sid] = (sub, task)

    async def _forward(
        self, sid: str, sub: Subscription, grants: Grants, curve: CurveLog | None = None
    ) -> None:
        try:
            while True:
                batch = await sub.get()
                if not batch:
                    return
                if curve is not None:
                    batch = [kept for dp in batch for kept in curve.add(dp)]
                    if not batch:
                        continue
                if self._expired(grants):
                    await self._end(sid, VissError("expired_token", "the subscription's token expired"))
                    return
                await self._notify(sid, batch)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.debug("VISS subscription %s to %s ended", sid, self.peer, exc_info=True)
        finally:
            sub.close()

    async def _periodic(self, sid: str, signals: list[Signal], period: float, grants: Grants) -> None:
        get = self.service.broker.get
        try:
            while True:
                await asyncio.sleep(period)
                if self._expired(grants):
                    await self._end(sid, VissError("expired_token", "the subscription's token expired"))
                    return
                batch = [dp for dp in (get(s.path) for s in signals) if dp is not None]
                if batch:
                    await self._notify(sid, batch)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.debug("VISS periodic subscription %s to %s ended", sid, self.peer, exc_info=True)

    async def _notify(self, sid: str, batch: list[Datapoint]) -> None:
        await self.send(notification_text(sid, batch))

    @staticmethod
    def _expired(grants: Grants) -> bool:
        return grants.expires_at is not None and time.time() >= grants.expires_at

    async def _end(self, sid: str, error: VissError) -> None:
        entry = self.subscriptions.pop(sid, None)
        if entry is not None and entry[0] is not None:
            entry[0].close()
        await self.send(
            {"action": "subscription", "subscriptionId": sid, "error": error.to_json(), "ts": now_iso()}
        )

    async def _unsubscribe(self, req: Request) -> None:
        entry = self.subscriptions.pop(req.subscription_id, None)
        if entry is None:
            # the 2024 table has no reason of its own for this: the spec's example answers invalid_data
            raise VissError(
                "invalid_data", f"no subscription {req.subscription_id[:40]!r} on this connection"
            )
        sub, task = entry
        if sub is not None:
            sub.close()
        task.cancel()
        await self.send(
            {
                "action": "unsubscribe",
                "subscriptionId": req.subscription_id,
                "requestId": req.request_id,
                "ts": now_iso(),
            }
        )

    def close(self) -> None:
        for sub, task in self.subscriptions.values():
            if sub is not None:
                sub.close()
            task.cancel()
        self.subscriptions.clear()
        for task in self.pending_sets:
            task.cancel()
        self.service.sessions.discard(self)
