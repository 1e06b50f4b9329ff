"""One ``OpenProviderStream``: a remote provider, mapped onto a broker ``Provider``.

- ``ProvideActuationRequest`` claims actuators (naming a sensor or attribute ends the stream
  with INVALID_ARGUMENT, as the databroker does); ``ProvideSignalRequest`` claims signals to
  publish. Publishing an unclaimed signal claims it on the way.
- ``PublishValuesRequest`` writes values; a ``PublishValuesResponse`` comes back only when
  some of them were refused, naming each one (as the KUKSA databroker does).
- An actuation request for a claimed actuator goes out as ``BatchActuateStreamRequest``; the
  requester waits for the provider's ``BatchActuateStreamResponse`` (error code OK accepts,
  anything else rejects with the provider's message). A provider that half-closed its side
  cannot answer, so delivery counts as acceptance for it.
- When the stream ends, the provider is closed: its claims are released and every pending
  request resolves as "no provider".
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import struct
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from kuksa.val.v2 import types_pb2 as t2
from kuksa.val.v2 import val_pb2 as v2

from anycar.api.auth import Action, Grants
from anycar.api.grpc.common import Access, InvalidRequest, error_v2, status_of
from anycar.api.grpc.convert import value_from_v2, value_to_v2
from anycar.api.grpc.lean_request import (
    DECODE_SPEC,
    CorruptRequest,
    OpenProviderStreamRequest,
    parse_datapoint,
    read_datapoint,
    seen_values,
)
from anycar.api.grpc.wire import varint
from anycar.broker import ActuationRejected, ActuationRequest, Provider, SignalBroker
from anycar.errors import AnycarError, WrongSignalType
from anycar.model import NodeType, Signal

_counter = itertools.count(1)
_CLOSED = object()
METHOD = "/kuksa.val.v2.VAL/OpenProviderStream"
_WHICH_ONEOF = t2.Value.WhichOneof
_SLOW = object()  # a datapoint the quick ways did not read


def _strict_error(request: Any) -> str:
    """What the strict decoding of the whole message says of it (the same text as before)."""
    inner = request.SerializeToString()
    try:  # publish_values_request is field 2 of OpenProviderStreamRequest
        v2.OpenProviderStreamRequest.FromString(b"\x12" + varint(len(inner)) + inner)
    except DecodeError as exc:
        return f"{METHOD}: the request is not a valid message: {exc}"
    return f"{METHOD}: the request is not a valid message"  # not reached: a corrupt part fails the whole


def parse_request(raw: bytes) -> Any:
    """The server's deserializer for provider streams: ``lean_request.OpenProviderStreamRequest``,
    with the real type's error for bytes that are not a message (the text clients saw before)."""
    try:
        return OpenProviderStreamRequest.FromString(raw)
    except DecodeError:
        v2.OpenProviderStreamRequest.FromString(raw)  # raises the real type's error
        raise


class ProviderStream:
    def __init__(
        self,
        broker: SignalBroker,
        access: Access,
        grants: Grants,
        peer: str,
        *,
        outgoing_limit: int = 10_000,
    ) -> None:
        self.broker = broker
        self.access = access
        self.grants = grants
        self.name = f"grpc:{grants.subject or 'anonymous'}@{peer}#{next(_counter)}"
        self.provider: Provider = broker.register_provider(self.name, on_actuate=self._on_actuate)
        self.outgoing: asyncio.Queue[Any] = asyncio.Queue(outgoing_limit)
        self.pending: dict[int, list[asyncio.Future[t2.Error]]] = {}
        self.read_open = True
        self.closed = False
        self.error: AnycarError | None = None

    # -- requests from the provider -----------------------------------------------------------
    async def handle(self, request: Any) -> None:
        """One request (a ``lean_request.OpenProviderStreamRequest``: the real one's fields)."""
        which = request.WhichOneof("action")
        if which == "publish_values_request":
            self._publish(request.publish_values_request)
        elif which == "batch_actuate_stream_response":
            self._answer(request.batch_actuate_stream_response)
        elif which == "provide_actuation_request":
            actuators = [
                self.access.signal(self.grants, s, Action.PROVIDE)
                for s in request.provide_actuation_request.actuator_identifiers
            ]
            for sig in actuators:
                if sig.type is not NodeType.ACTUATOR:
                    # the databroker's WrongType: INVALID_ARGUMENT, and the stream ends
                    raise WrongSignalType(
                        f"{sig.path} is a {sig.type}: only actuators can be provided for actuation",
                        path=sig.path,
                    )
            self._claim(actuators)
            await self.outgoing.put(
                v2.OpenProviderStreamResponse(provide_actuation_response=v2.ProvideActuationResponse())
            )
        elif which == "provide_signal_request":
            ids = list(request.provide_signal_request.signals_sample_intervals.keys())
            self._claim([self.access.by_id(self.grants, i, Action.PROVIDE) for i in ids])
            await self.outgoing.put(
                v2.OpenProviderStreamResponse(provide_signal_response=v2.ProvideSignalResponse())
            )
        elif which in ("update_filter_response", "get_provider_value_response", "provider_error_indication"):
            pass  # accepted and ignored: the hub does not ask providers for filters or values
        else:
            raise AnycarError("empty OpenProviderStreamRequest: no action set")

    def _claim(self, signals: list[Any]) -> None:
        for sig in signals:
            self.grants.check(Action.PROVIDE, sig.path)
        self.provider.claim([s.path for s in signals])

    def _publish(self, request: Any) -> None:
        """The hot path of every provider: keep per-value work to look-ups and one conversion.

        ``request`` is a ``lean_request.PublishValuesRequest`` (the server parses provider streams
        with it): each datapoint's timestamp and value are bytes, compared and decoded here.
        """
        errors: dict[int, t2.Error] = {}
        # values taken at one moment are written together; a request mixing moments is split
        groups: dict[tuple[int, int], list[tuple[Signal, Any]]] = {}
        signals = self.access.catalog._by_id  # the catalog's id index; it only ever grows
        known_ids = len(signals)
        grants = self.grants
        check = not grants.open
        claimed = self.provider.claimed
        # the timestamp field (bytes) datapoints of this message start with, and the group of its
        # moment; None until a datapoint in the usual form was read the slow way
        prefix: bytes | None = None
        cut = 0
        items: list[tuple[Signal, Any]] = []
        spec = DECODE_SPEC
        seen = seen_values
        points = request.data_points
        try:
            for sid in points:  # .items() of a protobuf map is a Python-level view: slower
                raw = points[sid]  # the Datapoint's bytes
                try:
                    if sid < 0 or sid >= known_ids:  # int32 on the wire: a negative id is no index
                        raise self.access.by_id_error(grants, sid, Action.PROVIDE)
                    sig = signals[sid]
                    if sid not in claimed:
                        grants.check(Action.PROVIDE, sig.path)
                        self.provider.claim([sig.path])
                    elif check:
                        grants.check(Action.PROVIDE, sig.path)
                    field, array, unpack, head = spec[sig.datatype]
                    value = _SLOW
                    if raw[:cut] == prefix:  # this message's timestamp field, then the value field
                        if unpack is not None:  # a float or double: one C call for its one canonical form
                            try:
                                got, value = unpack(raw[cut:])
                            except struct.error:
                                got = None
                            if got != head:
                                value = _SLOW
                        else:
                            known = seen.get(raw[cut:])
                            if known is not None and known[0] == field and not array:
                                value = known[1]
                    if value is _SLOW:
                        dp, key, learned = read_datapoint(raw)
                        message_value = dp.value
                        which = _WHICH_ONEOF(message_value, "typed_value")
                        if which == field and not array:
                            value = getattr(message_value, which)
                        else:
                            value = value_from_v2(sig, message_value)
                        if learned is not None:
                            prefix, cut = learned, len(learned)
                            items = groups.setdefault(key, [])
                        else:
                            groups.setdefault(key, []).append((sig, value))
                            continue
                except AnycarError as exc:
                    errors[sid] = error_v2(exc)
                    parse_datapoint(raw)  # a refused datapoint that does not parse still refuses the request
                    continue
                items.append((sig, value))
        except CorruptRequest:
            raise InvalidRequest(_strict_error(request)) from None
        for (seconds, nanos), batch in groups.items():
            stamp = seconds + nanos * 1e-9 if seconds or nanos else None
            refused = self.provider.publish_signals(batch, stamp)
            for path, refusal in refused.items():
                errors[self.access.catalog.get(path).id] = error_v2(refusal)
        if errors:
            response = v2.OpenProviderStreamResponse(
                publish_values_response=v2.PublishValuesResponse(request_id=request.request_id, status=errors)
            )
            # a provider that never reads its stream loses error reports, nothing else
            with contextlib.suppress(asyncio.QueueFull):
                self.outgoing.put_nowait(response)

    def _answer(self, response: v2.BatchActuateStreamResponse) -> None:
        try:
            sig = self.access.signal(self.grants, response.signal_id, Action.PROVIDE)
        except AnycarError:
            return
        waiters = self.pending.get(sig.id)
        if waiters:
            fut = waiters.pop(0)
            if not waiters:
                del self.pending[sig.id]
            if not fut.done():
                fut.set_result(response.error)

    # -- requests to the provider -------------------------------------------------------------
    async def _on_actuate(self, request: ActuationRequest) -> None:
        if self.closed:
            raise ConnectionError("provider stream closed")
        sig = self.broker.catalog.get(request.path)
        message = v2.OpenProviderStreamResponse(
            batch_actuate_stream_request=v2.BatchActuateStreamRequest(
                actuate_requests=[
                    v2.ActuateRequest(signal_id=t2.SignalID(id=sig.id), value=value_to_v2(sig, request.value))
                ]
            )
        )
        if not self.read_open:
            await self.outgoing.put(message)
            return
        fut: asyncio.Future[t2.Error] = asyncio.get_running_loop().create_future()
        self.pending.setdefault(sig.id, []).append(fut)
        try:
            await self.outgoing.put(message)
            error = await fut
        finally:
            waiters = self.pending.get(sig.id)
            if waiters and fut in waiters:
                waiters.remove(fut)
                if not waiters:
                    del self.pending[sig.id]
        if error.code not in (t2.ERROR_CODE_OK, t2.ERROR_CODE_UNSPECIFIED) or (
            error.code == t2.ERROR_CODE_UNSPECIFIED and error.message
        ):
            raise ActuationRejected(error.message or t2.ErrorCode.Name(error.code))

    # -- life cycle -----------------------------------------------------------------------------
    def half_closed(self) -> None:
        """The provider will send nothing more: waiting requests are taken as delivered.

        A cancelled call also ends the request side first; the short delay lets the end of
        the call close the stream before anything is taken as delivered.
        """
        self.read_open = False
        asyncio.get_running_loop().call_later(0.05, self._deliver_pending)

    def _deliver_pending(self) -> None:
        if self.closed:
            return
        ok = t2.Error(code=t2.ERROR_CODE_OK)
        for waiters in self.pending.values():
            for fut in waiters:
                if not fut.done():
                    fut.set_result(ok)
        self.pending.clear()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.provider.close()
        for waiters in self.pending.values():
            for fut in waiters:
                if not fut.done():
                    fut.set_exception(ConnectionError("provider stream closed"))
        self.pending.clear()
        with contextlib.suppress(asyncio.QueueFull):
            self.outgoing.put_nowait(_CLOSED)


async def serve_stream(stream: ProviderStream, context: grpc.aio.ServicerContext, requests: Any) -> Any:
    """Drive one provider stream: read requests in a task, yield responses until the end.

    A request that is wrong in itself (unknown signal, claim held by another provider, no
    scope) ends the stream with the matching status, as KUKSA does.
    """

    async def reader() -> None:
        try:
            async for request in requests:
                await stream.handle(request)
                # let the subscribers this request woke send their updates before the next
                # read is set up: on an idle hub that read's set-up otherwise comes first
                await asyncio.sleep(0)
            if context.cancelled() or context.done():
                stream.close()
            else:
                stream.half_closed()
        except AnycarError as exc:
            stream.error = exc
            stream.close()
        except Exception:
            stream.close()
            raise

    context.add_done_callback(lambda _: stream.close())
    task = asyncio.create_task(reader())
    try:
        while True:
            item = await stream.outgoing.get()
            if item is _CLOSED:
                break
            yield item
    finally:
        stream.close()
        task.cancel()
    if stream.error is not None:
        await context.abort(status_of(stream.error), str(stream.error))
