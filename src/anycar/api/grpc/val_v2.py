"""The ``kuksa.val.v2.VAL`` service over the signal broker.

Behaviour follows the KUKSA databroker where the protocol leaves room: a subscription's first
message carries every subscribed signal (without a value if it has none), unknown paths are
NOT_FOUND, missing scope is PERMISSION_DENIED, a bad or missing token UNAUTHENTICATED.
Subscriptions also accept branch paths and wildcards, which KUKSA refuses; clients that expand
them themselves work the same.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from kuksa.val.v2 import types_pb2 as t2
from kuksa.val.v2 import val_pb2 as v2
from kuksa.val.v2 import val_pb2_grpc

from anycar import __version__
from anycar.api.auth import Action, Authorizer, Grants, TokenExpired
from anycar.api.grpc.common import Access, InvalidRequest, abort, abort_actuation
from anycar.api.grpc.convert import fill_datapoint_v2, metadata_v2, value_from_v2
from anycar.api.grpc.provider_stream import ProviderStream, parse_request, serve_stream
from anycar.api.grpc.wire import SubscribeEncoder
from anycar.broker import ActuationResult, ActuationStatus, SignalBroker, Subscription, SubscriptionFilter
from anycar.broker.subscription import DEFAULT_QUEUE_SIZE
from anycar.errors import AnycarError, NotProvider
from anycar.model import Signal

SERVER_NAME = "anycar-hub"
MAX_BUFFER_SIZE = 1000  # the databroker's MAX_SUBSCRIBE_BUFFER_SIZE


def _peer(context: grpc.aio.ServicerContext) -> str:
    try:
        return str(context.peer())
    except Exception:
        return "unknown"


class ValV2Service(val_pb2_grpc.VALServicer):
    def __init__(
        self, broker: SignalBroker, authorizer: Authorizer, *, max_update_age_s: float | None = None
    ) -> None:
        self.broker = broker
        self.max_update_age_s = max_update_age_s  # a subscriber's queue bound in time (None: none)
        self.access = Access(authorizer, broker.catalog)
        self.publisher = _UnaryPublisher(broker)
        self.streams: set[ProviderStream] = set()
        self.subscriptions: set[Subscription] = set()

    # -- reading -------------------------------------------------------------------------------
    async def GetValue(self, request: v2.GetValueRequest, context: grpc.aio.ServicerContext) -> Any:
        try:
            grants = self.access.grants(context)
            sig = self.access.signal(grants, request.signal_id, Action.READ)
        except AnycarError as exc:
            await abort(context, exc)
        response = v2.GetValueResponse()
        self._fill(response.data_point, sig)
        return response

    async def GetValues(self, request: v2.GetValuesRequest, context: grpc.aio.ServicerContext) -> Any:
        try:
            grants = self.access.grants(context)
            if not request.signal_ids:
                raise InvalidRequest("GetValuesRequest has no signal_ids")
            signals = [self.access.signal(grants, s, Action.READ) for s in request.signal_ids]
        except AnycarError as exc:
            await abort(context, exc)
        response = v2.GetValuesResponse()
        for sig in signals:
            self._fill(response.data_points.add(), sig)
        return response

    def _fill(self, dp: t2.Datapoint, sig: Signal) -> None:
        current = self.broker.get(sig.path)
        if current is not None:
            fill_datapoint_v2(dp, sig, current.value, current.timestamp)

    async def ListMetadata(self, request: v2.ListMetadataRequest, context: grpc.aio.ServicerContext) -> Any:
        try:
            grants = self.access.grants(context)
            root = request.root or "**"
            allowed = grants.visible(self.broker.catalog, root, Action.READ)
        except AnycarError as exc:
            await abort(context, exc)
        return v2.ListMetadataResponse(metadata=[metadata_v2(s) for s in allowed])

    async def GetServerInfo(self, request: v2.GetServerInfoRequest, context: grpc.aio.ServicerContext) -> Any:
        try:
            self.access.grants(
                context
            )  # as v1: an unauthenticated caller learns nothing, not even the version
        except AnycarError as exc:
            await abort(context, exc)
        return v2.GetServerInfoResponse(name=SERVER_NAME, version=__version__, commit_hash="")

    # -- subscriptions -------------------------------------------------------------------------
    def _subscribe(
        self, grants: Grants, signals: list[Signal], buffer_size: int, flt: t2.Filter | None
    ) -> Subscription:
        if buffer_size < 0 or buffer_size > MAX_BUFFER_SIZE:
            raise InvalidRequest(
                f"Subscription buffer_size max allowed value is {MAX_BUFFER_SIZE} (got {buffer_size})"
            )
        period = None
        if flt is not None and flt.HasField("min_sample_interval") and flt.min_sample_interval.interval_ms:
            period = flt.min_sample_interval.interval_ms / 1000.0
        sub = self.broker.subscribe(
            [s.path for s in signals],
            filter=SubscriptionFilter(min_period_s=period) if period else None,
            queue_size=buffer_size or DEFAULT_QUEUE_SIZE,
            name=f"grpc:{grants.subject or 'anonymous'}",
            send_current=False,
            max_age_s=self.max_update_age_s,
        )
        return sub

    async def Subscribe(
        self, request: v2.SubscribeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[v2.SubscribeResponse]:
        try:
            grants = self.access.grants(context)
            if not request.signal_paths:
                raise InvalidRequest("SubscribeRequest has no signal_paths")
            signals = self.access.resolve(grants, list(request.signal_paths), Action.READ)
            sub = self._subscribe(
                grants, signals, request.buffer_size, request.filter if request.HasField("filter") else None
            )
        except AnycarError as exc:
            await abort(context, exc)
        async for message in self._while_valid(self._stream(sub, signals, by_id=False), grants, sub, context):
            yield message

    async def SubscribeById(
        self, request: v2.SubscribeByIdRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[v2.SubscribeByIdResponse]:
        try:
            grants = self.access.grants(context)
            if not request.signal_ids:
                raise InvalidRequest("SubscribeByIdRequest has no signal_ids")
            signals = [self.access.by_id(grants, i, Action.READ) for i in request.signal_ids]
            sub = self._subscribe(
                grants, signals, request.buffer_size, request.filter if request.HasField("filter") else None
            )
        except AnycarError as exc:
            await abort(context, exc)
        async for message in self._while_valid(self._stream(sub, signals, by_id=True), grants, sub, context):
            yield message

    @staticmethod
    async def _while_valid(
        stream: AsyncIterator[Any], grants: Grants, sub: Subscription, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        """End a subscription with UNAUTHENTICATED once its token expires, as VISS does."""
        async for message in stream:
            if grants.expires_at is not None and time.time() >= grants.expires_at:
                sub.close()
                await abort(context, TokenExpired("access token has expired; subscribe again with a new one"))
            yield message

    async def _stream(self, sub: Subscription, signals: list[Signal], *, by_id: bool) -> AsyncIterator[bytes]:
        """First every subscribed signal's current state, then batches as they come, each message
        as its wire bytes (``wire``: what protobuf would write, at a fraction of the cost; the
        server's serializer passes bytes through).

        The entries are a map keyed by signal, so a batch that holds one signal twice (a fast
        publisher, a slow reader) is split into several messages, oldest first.
        """
        make = v2.SubscribeByIdResponse if by_id else v2.SubscribeResponse
        self.subscriptions.add(sub)
        try:
            first = make()
            for sig in signals:
                self._fill(first.entries[sig.id if by_id else sig.path], sig)
            yield first.SerializeToString()
            encoder = SubscribeEncoder(self.broker.catalog, by_id=by_id)
            while True:
                batch = await sub.get()
                if not batch:
                    return
                for message in encoder.messages(batch):
                    yield message
        finally:
            sub.close()
            self.subscriptions.discard(sub)

    # -- actuation -----------------------------------------------------------------------------
    def _checked(self, grants: Grants, request: v2.ActuateRequest) -> tuple[Signal, Any]:
        """One actuation, checked before it goes anywhere: the signal exists, the caller may
        actuate it, it is an actuator and the value fits. Raises what the caller gets back."""
        if not request.HasField("signal_id"):
            raise InvalidRequest("No signal_id provided")
        sig = self.access.signal(grants, request.signal_id, Action.ACTUATE)
        return self.broker.check_actuation(sig.path, value_from_v2(sig, request.value))

    async def _actuate_one(
        self, grants: Grants, request: v2.ActuateRequest, context: grpc.aio.ServicerContext
    ) -> None:
        """Check one actuation, forward it and wait for the provider; a failure ends the call."""
        try:
            sig, value = self._checked(grants, request)
            result = await self.broker.actuate(sig.path, value, requester=grants.subject or None)
        except AnycarError as exc:
            await abort(context, exc)
        if not result.ok:
            await abort_actuation(context, result)

    async def Actuate(self, request: v2.ActuateRequest, context: grpc.aio.ServicerContext) -> Any:
        try:
            grants = self.access.grants(context)
        except AnycarError as exc:
            await abort(context, exc)
        await self._actuate_one(grants, request, context)
        return v2.ActuateResponse()

    async def BatchActuate(self, request: v2.BatchActuateRequest, context: grpc.aio.ServicerContext) -> Any:
        """All or nothing, as the proto says: every target is checked (exists, may be actuated
        by this caller, is an actuator, takes the value, has a provider) before any is sent."""
        try:
            grants = self.access.grants(context)
            wanted: dict[str, Any] = {}
            for item in request.actuate_requests:
                sig, value = self._checked(grants, item)
                wanted[sig.path] = value
        except AnycarError as exc:
            await abort(context, exc)
        for path in wanted:
            if not self.broker.serves_actuation(path):
                await abort_actuation(
                    context,
                    ActuationResult(
                        path,
                        ActuationStatus.NO_PROVIDER,
                        "no provider serves this actuator; nothing was forwarded",
                    ),
                )
        try:
            results = await self.broker.actuate_many(wanted, requester=grants.subject or None)
        except AnycarError as exc:
            await abort(context, exc)
        for result in results:
            if not result.ok:
                await abort_actuation(context, result)
        return v2.BatchActuateResponse()

    async def ActuateStream(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
        """Actuations one after another on one call, as the databroker serves them: each is
        checked and forwarded in turn; the first that fails ends the call with its status."""
        try:
            grants = self.access.grants(context)
        except AnycarError as exc:
            await abort(context, exc)
        async for item in request_iterator:
            if grants.expires_at is not None and time.time() >= grants.expires_at:
                await abort(
                    context, TokenExpired("access token has expired; open the stream again with a new one")
                )
            await self._actuate_one(grants, item, context)
        return v2.ActuateResponse()

    # -- providing -----------------------------------------------------------------------------
    async def PublishValue(self, request: v2.PublishValueRequest, context: grpc.aio.ServicerContext) -> Any:
        try:
            grants = self.access.grants(context)
            sig = self.access.signal(grants, request.signal_id, Action.PROVIDE)
            dp = request.data_point
            value = value_from_v2(sig, dp.value) if dp.HasField("value") else None
            stamp = dp.timestamp.seconds + dp.timestamp.nanos * 1e-9 if dp.HasField("timestamp") else None
            self.publisher.publish(sig, value, stamp)
        except AnycarError as exc:
            await abort(context, exc)
        return v2.PublishValueResponse()

    async def OpenProviderStream(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            grants = self.access.grants(context)
            stream = ProviderStream(self.broker, self.access, grants, _peer(context))
        except AnycarError as exc:
            await abort(context, exc)
        self.streams.add(stream)
        try:
            async for message in serve_stream(stream, context, request_iterator):
                yield message
        finally:
            self.streams.discard(stream)
            stream.close()

    def close(self) -> None:
        for stream in list(self.streams):
            stream.close()
        for sub in list(self.subscriptions):
            sub.close()
        self.publisher.provider.close()


def _bytes_or(serialize: Any) -> Any:
    """A response serializer that sends wire bytes as they are and serializes messages."""

    def serializer(message: Any) -> bytes:
        return message if message.__class__ is bytes else serialize(message)

    return serializer


def wire_handlers(service: ValV2Service) -> dict[str, grpc.RpcMethodHandler]:
    """The hot streams with the hub's own wire handling: ``Subscribe`` and ``SubscribeById`` with a
    serializer that takes the stream's wire bytes, ``OpenProviderStream`` parsed as
    ``lean_request``'s type; registered on the server after the generated handlers, which serve
    every other method."""
    return {
        "OpenProviderStream": grpc.stream_stream_rpc_method_handler(
            service.OpenProviderStream,
            request_deserializer=parse_request,
            response_serializer=v2.OpenProviderStreamResponse.SerializeToString,
        ),
        "Subscribe": grpc.unary_stream_rpc_method_handler(
            service.Subscribe,
            request_deserializer=v2.SubscribeRequest.FromString,
            response_serializer=_bytes_or(v2.SubscribeResponse.SerializeToString),
        ),
        "SubscribeById": grpc.unary_stream_rpc_method_handler(
            service.SubscribeById,
            request_deserializer=v2.SubscribeByIdRequest.FromString,
            response_serializer=_bytes_or(v2.SubscribeByIdResponse.SerializeToString),
        ),
    }


class _UnaryPublisher:
    """``PublishValue`` calls: a value for a signal no provider holds is written by the API's
    own provider, which claims it for that one write. A signal another provider holds (a
    provider stream, a CAN adapter, an accessory) belongs to it alone: NotProvider."""

    def __init__(self, broker: SignalBroker) -> None:
        self.broker = broker
        self.provider = broker.register_provider("grpc:PublishValue")

    def publish(self, sig: Signal, value: Any, stamp: float | None) -> None:
        owner = self.broker.provider_of(sig.path)
        if owner is not None and owner != self.provider.name:
            raise NotProvider(
                f"{sig.path} is provided by {owner!r}; PublishValue cannot write it", path=sig.path
            )
        self.provider.claim([sig.path])
        try:
            errors = self.provider.publish_many([(sig.path, value)], stamp)
        finally:
            self.provider.release([sig.path])
        if errors:
            raise errors[sig.path]
