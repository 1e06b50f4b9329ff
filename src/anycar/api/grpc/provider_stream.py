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
import math
import struct
import time
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from google.protobuf.unknown_fields import UnknownFieldSet
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
from anycar.broker import ActuationRejected, ActuationRequest, Datapoint, Provider, SignalBroker
from anycar.errors import AnycarError, InvalidValue, WrongSignalType
from anycar.model import NodeType, Signal
from anycar.model.datatypes import FLOAT32_MAX, FLOAT_TYPES, INTEGER_RANGES, ValueRejected

_counter = itertools.count(1)
_CLOSED = object()
METHOD = "/kuksa.val.v2.VAL/OpenProviderStream"
_WHICH_ONEOF = t2.Value.WhichOneof
_SLOW = object()  # a datapoint the quick ways did not read
# a Datapoint made by tuple's own constructor (as the broker makes them): (path, value, timestamp)
_new_tuple = tuple.__new__
# per signal, what the publish loop needs of it, the quick ways' part first: (0 for a float value
# field and 1 for a double's, None: neither; the range of values of the Value field's own Python
# type that ``validate`` returns unchanged, ``lo <= value <= hi``, empty (inf, -inf) for a float or
# double without one, None for other types without one; the path; the Value field a cached value
# field must have, "" for an array: never; (the signal, its validate, the Value field, is an array))
_Spec = tuple[int | None, Any, Any, str, str, tuple[Signal, Any, str, bool]]
_FLOAT_HEAD = b"\x12\x06\x8d\x01"  # Datapoint.value (field 2, 6 bytes): Value.float (17, fixed32)
_DOUBLE_HEAD = b"\x12\x0a\x91\x01"  # Datapoint.value (10 bytes): Value.double (18, fixed64)
_UNPACKERS: dict[int, list[Any]] = {}


def _whole_unpackers(cut: int) -> list[Any]:
    """For a timestamp field of ``cut`` bytes: a float's and a double's whole datapoint in the
    usual form as one struct each, giving (the timestamp field and value head, the value) and
    refusing any other length. Bounded: a timestamp field is re-serialized, at most ~24 bytes."""
    found = _UNPACKERS.get(cut)
    if found is None:
        found = _UNPACKERS[cut] = [
            struct.Struct(f"<{cut + 4}sf").unpack,
            struct.Struct(f"<{cut + 4}sd").unpack,
        ]
    return found


_NO_RANGE = (None, None)


def accepted_range(sig: Signal) -> tuple[Any, Any]:
    """(lo, hi) such that a value of the Python type the signal's Value field decodes to (a float
    for float and double, an int for the integer types) with ``lo <= value <= hi`` is one the
    signal's ``validate`` returns as it is; ``(None, None)`` where no such shortcut holds (lists of
    allowed values, arrays, booleans, strings): ``validate`` then runs. The same bounds as
    ``model.datatypes``' validators (a test checks the two agree); NaN fails the comparison."""
    datatype = sig.datatype
    if sig.allowed:
        return _NO_RANGE
    if datatype in FLOAT_TYPES:
        limit = FLOAT32_MAX if datatype == "float" else math.inf
        return (
            -limit if sig.min is None else float(sig.min),
            limit if sig.max is None else float(sig.max),
        )
    if datatype in INTEGER_RANGES:
        lo, hi = INTEGER_RANGES[datatype]
        if sig.min is not None:
            lo = max(lo, math.ceil(sig.min))
        if sig.max is not None:
            hi = min(hi, math.floor(sig.max))
        return lo, hi
    return _NO_RANGE


def _spec_of(sig: Signal) -> _Spec:
    field, array, _, _ = DECODE_SPEC[sig.datatype]
    kind = None if array else {"float": 0, "double": 1}.get(field)
    lo, hi = accepted_range(sig)
    if kind is not None and lo is None:
        lo, hi = math.inf, -math.inf  # no value is inside: validate decides each
    return kind, lo, hi, sig.path, "" if array else field, (sig, sig.validate, field, array)


def _stamp(key: tuple[int, int]) -> float:
    """A datapoint's (seconds, nanos) as the broker's time; no timestamp is the time of receipt."""
    seconds, nanos = key
    return seconds + nanos * 1e-9 if seconds or nanos else time.time()


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
    with the real type's error for bytes that are not a message (the text clients saw before).

    A datapoint the lean type keeps as bytes is parsed later, when it is read; one it drops never
    is: a map entry with an unknown field goes to the message's unknown fields (protobuf keeps
    maps free of them). The real type parses that entry's datapoint too, so a request with unknown
    fields there is checked whole by the real type (and refused with its own error if the dropped
    datapoint was corrupt); one C call for every other request. (Not covered: of two entries with
    one key only the last is read, so a corrupt first one is not refused; finding repeats costs a
    re-serialization, 4 % of a 100-value message. docs/performance.md, session 7.)"""
    try:
        request = OpenProviderStreamRequest.FromString(raw)
    except DecodeError:
        v2.OpenProviderStreamRequest.FromString(raw)  # raises the real type's error
        raise
    if len(UnknownFieldSet(request.publish_values_request)):
        v2.OpenProviderStreamRequest.FromString(raw)  # raises the real type's error, if any
    return request


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
        # the publish loop's per-signal specs (_spec_of), dropped when an overlay may have changed one
        self._specs: dict[int, _Spec] = {}
        self._generation = access.catalog.generation

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
        with it): each datapoint's timestamp and value are bytes, compared and decoded here. Each
        value is checked as ``Provider.publish_signals`` checks it (claimed by this stream, the
        signal's ``validate``) and stamped in this one loop; the values of each moment are then
        stored and delivered together (``Provider.publish_checked``), moment by moment in the
        order they first appeared, and only once the whole request has parsed.
        """
        errors: dict[int, t2.Error] = {}
        # values taken at one moment are written together; a request mixing moments is split:
        # (seconds, nanos) -> (signal ids, Datapoints, the moment as the broker's time)
        groups: dict[tuple[int, int], tuple[list[int], list[Datapoint], float]] = {}
        catalog = self.access.catalog
        signals = catalog._by_id  # the catalog's id index; it only ever grows
        known_ids = len(signals)
        grants = self.grants
        check = not grants.open
        provider = self.provider
        claimed = provider.claimed
        if self._generation != catalog.generation:  # an overlay may have changed a datatype
            self._generation = catalog.generation
            self._specs.clear()
        specs = self._specs
        # the timestamp field (bytes) datapoints of this message start with, and the group of its
        # moment; None until a datapoint in the usual form was read the slow way
        prefix: bytes | None = None
        cut = 0
        sids: list[int] = []
        dps: list[Datapoint] = []
        stamp = 0.0
        refused = 0  # values that failed their signal's check: counted as publish_signals counts
        unpackers = _whole_unpackers(0)
        starts = [b"", b""]  # no form known yet: the quick way never matches (a start is >= 4 bytes)
        seen = seen_values
        new = _new_tuple
        points = request.data_points
        try:
            for sid in points:  # .items() of a protobuf map is a Python-level view: slower
                raw = points[sid]  # the Datapoint's bytes
                try:
                    try:
                        spec = specs[sid]
                    except KeyError:
                        if sid < 0 or sid >= known_ids:  # int32 on the wire: a negative id is no index
                            raise self.access.by_id_error(grants, sid, Action.PROVIDE) from None
                        spec = specs[sid] = _spec_of(signals[sid])
                    kind, lo, hi, path, cached_field, slow = spec
                    if sid not in claimed:
                        grants.check(Action.PROVIDE, path)
                        provider.claim([path])
                    elif check:
                        grants.check(Action.PROVIDE, path)
                    value = _SLOW
                    if kind is not None:
                        # a float or double: in this message's usual form the whole datapoint is
                        # its timestamp field, the value field's head and 4 or 8 bytes: one C call
                        try:
                            start, value = unpackers[kind](raw)
                        except struct.error:
                            start = None
                        if start != starts[kind]:
                            value = _SLOW
                        elif lo <= value <= hi:  # validate would return it as it is
                            sids.append(sid)
                            dps.append(new(Datapoint, (path, value, stamp)))
                            continue
                    elif raw[:cut] == prefix:  # this message's timestamp field, then the value field
                        known = seen.get(raw[cut:])
                        if known is not None and known[0] == cached_field:
                            value = known[1]
                            if lo is not None and lo <= value <= hi:  # an int: as above
                                sids.append(sid)
                                dps.append(new(Datapoint, (path, value, stamp)))
                                continue
                    sig, validate, field, array = slow
                    other = None  # another form's datapoint: its own moment's group
                    if value is _SLOW:
                        dp, key, learned = read_datapoint(raw)
                        message_value = dp.value
                        which = _WHICH_ONEOF(message_value, "typed_value")
                        if which == field and not array:
                            value = getattr(message_value, which)
                        else:
                            value = value_from_v2(sig, message_value)
                        group = groups.get(key)
                        if group is None:
                            group = groups[key] = ([], [], _stamp(key))
                        if learned is not None:
                            prefix, cut = learned, len(learned)
                            sids, dps, stamp = group
                            unpackers = _whole_unpackers(cut)
                            starts = [prefix + _FLOAT_HEAD, prefix + _DOUBLE_HEAD]
                        else:  # another form: its own moment's group, this datapoint alone
                            other = group
                except AnycarError as exc:
                    errors[sid] = error_v2(exc)
                    parse_datapoint(raw)  # a refused datapoint that does not parse still refuses the request
                    continue
                if value is not None:
                    try:
                        value = validate(value)
                    except ValueRejected as exc:
                        errors[sid] = error_v2(InvalidValue(path, str(exc)))
                        refused += 1
                        continue
                if other is None:
                    sids.append(sid)
                    dps.append(new(Datapoint, (path, value, stamp)))
                else:
                    other[0].append(sid)
                    other[1].append(new(Datapoint, (path, value, other[2])))
        except CorruptRequest:
            raise InvalidRequest(_strict_error(request)) from None
        for group_sids, group_dps, _ in groups.values():
            provider.publish_checked(group_sids, group_dps, refused)
            refused = 0  # counted once
        if refused:  # every value refused: nothing to store, the refusals still count
            provider.publish_checked([], [], refused)
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
