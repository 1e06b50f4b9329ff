"""The part of ``kuksa.val.v1.VAL`` that kuksa-client still calls.

kuksa-client 0.6 reads values, metadata and datatypes, sets actuator targets and checks the
server through v1 even when it publishes and subscribes through v2, so the hub serves:
GetServerInfo, Get (current value, target value, metadata), Set (value, actuator target) and
Subscribe (current values, and metadata: ``subscribe_metadata``). Per-entry failures come back as HTTP-like codes in ``errors``, as
the KUKSA databroker does; a bad or missing token is UNAUTHENTICATED.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from kuksa.val.v1 import types_pb2 as t1
from kuksa.val.v1 import val_pb2 as v1
from kuksa.val.v1 import val_pb2_grpc

from anycar import __version__
from anycar.api.auth import Action, TokenError
from anycar.api.grpc.common import Access, InvalidRequest, abort
from anycar.api.grpc.convert import datapoint_v1, metadata_v1, value_from_v1
from anycar.api.grpc.metadata_watch import MetadataWatches
from anycar.api.grpc.val_v2 import SERVER_NAME, ValV2Service
from anycar.broker import ActuationStatus, Datapoint, SignalBroker, Subscription
from anycar.errors import AnycarError, TooManySignals
from anycar.model import NodeType, Signal, paths

_ACTUATION_CODE = {
    ActuationStatus.NO_PROVIDER: (503, "unavailable"),
    ActuationStatus.REJECTED: (400, "rejected"),
    ActuationStatus.TIMED_OUT: (504, "timeout"),
}
_METADATA_FIELDS = {
    t1.FIELD_METADATA,
    t1.FIELD_METADATA_DATA_TYPE,
    t1.FIELD_METADATA_DESCRIPTION,
    t1.FIELD_METADATA_ENTRY_TYPE,
    t1.FIELD_METADATA_COMMENT,
    t1.FIELD_METADATA_DEPRECATION,
    t1.FIELD_METADATA_UNIT,
    t1.FIELD_METADATA_VALUE_RESTRICTION,
    t1.FIELD_METADATA_ACTUATOR,
    t1.FIELD_METADATA_SENSOR,
    t1.FIELD_METADATA_ATTRIBUTE,
}


def _entry_error(path: str, exc: AnycarError) -> t1.DataEntryError:
    return t1.DataEntryError(path=path, error=t1.Error(code=exc.code, reason=exc.reason, message=str(exc)))


class ValV1Service(val_pb2_grpc.VALServicer):
    def __init__(self, broker: SignalBroker, v2: ValV2Service) -> None:
        self.broker = broker
        self.access: Access = v2.access
        self.v2 = v2
        self.targets: dict[str, tuple[Any, float]] = {}
        self.watches = MetadataWatches(broker.catalog)

    async def GetServerInfo(self, request: v1.GetServerInfoRequest, context: grpc.aio.ServicerContext) -> Any:
        try:
            self.access.grants(context)
        except TokenError as exc:
            await abort(context, exc)
        return v1.GetServerInfoResponse(name=SERVER_NAME, version=__version__)

    async def Get(self, request: v1.GetRequest, context: grpc.aio.ServicerContext) -> Any:
        try:
            grants = self.access.grants(context)
        except TokenError as exc:
            await abort(context, exc)
        response = v1.GetResponse()
        budget = paths.Budget()
        for entry in request.entries:
            try:
                budget.pattern(scan=entry.path not in self.broker.catalog)
                signals = grants.resolve(self.broker.catalog, entry.path, Action.READ)
                budget.take(len(signals))
            except TooManySignals as exc:
                await abort(context, exc)
            except AnycarError as exc:
                response.errors.append(_entry_error(entry.path, exc))
                continue
            fields = set(entry.fields)
            for sig in signals:
                response.entries.append(self._entry(sig, entry.view, fields))
        if response.errors:
            first = response.errors[0].error
            response.error.CopyFrom(t1.Error(code=first.code, reason=first.reason, message=first.message))
        return response

    def _entry(self, sig: Signal, view: int, fields: set[int]) -> t1.DataEntry:
        out = t1.DataEntry(path=sig.path)
        if view in (t1.VIEW_CURRENT_VALUE, t1.VIEW_ALL) or t1.FIELD_VALUE in fields:
            current = self.broker.get(sig.path)
            if current is not None:
                out.value.CopyFrom(datapoint_v1(sig, current.value, current.timestamp))
        if view in (t1.VIEW_TARGET_VALUE, t1.VIEW_ALL) or t1.FIELD_ACTUATOR_TARGET in fields:
            target = self.targets.get(sig.path)
            if target is not None:
                out.actuator_target.CopyFrom(datapoint_v1(sig, target[0], target[1]))
        if view in (t1.VIEW_METADATA, t1.VIEW_ALL) or fields & _METADATA_FIELDS:
            out.metadata.CopyFrom(metadata_v1(sig))
        return out

    async def Set(self, request: v1.SetRequest, context: grpc.aio.ServicerContext) -> Any:
        try:
            grants = self.access.grants(context)
        except TokenError as exc:
            await abort(context, exc)
        response = v1.SetResponse()
        for update in request.updates:
            path = update.entry.path
            fields = set(update.fields)
            try:
                needed = Action.ACTUATE if t1.FIELD_ACTUATOR_TARGET in fields else Action.PROVIDE
                sig = grants.signal(self.broker.catalog, path, needed)
                if t1.FIELD_ACTUATOR_TARGET in fields:
                    value = value_from_v1(sig, update.entry.actuator_target)
                    result = await self.broker.actuate(path, value, requester=grants.subject or None)
                    if not result.ok:
                        code, reason = _ACTUATION_CODE[result.status]
                        response.errors.append(
                            t1.DataEntryError(
                                path=path, error=t1.Error(code=code, reason=reason, message=result.reason)
                            )
                        )
                        continue
                    self.targets[path] = (sig.validate(value), time.time())
                if t1.FIELD_VALUE in fields:
                    grants.check(Action.PROVIDE, path)
                    value = value_from_v1(sig, update.entry.value)
                    self.v2.publisher.publish(sig, value, None)
                if fields & _METADATA_FIELDS:
                    raise AnycarError(f"{path}: metadata cannot be changed through the API; use an overlay")
            except AnycarError as exc:
                response.errors.append(_entry_error(path, exc))
        if response.errors:
            first = response.errors[0].error
            response.error.CopyFrom(t1.Error(code=first.code, reason=first.reason, message=first.message))
        return response

    async def Subscribe(
        self, request: v1.SubscribeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[v1.SubscribeResponse]:
        """Current values, metadata (kuksa-client's ``subscribe_metadata``), or both."""
        try:
            grants = self.access.grants(context)
            value_patterns: list[str] = []
            meta_patterns: list[str] = []
            for entry in request.entries:
                wants_value, wants_metadata = _subscribed(entry)
                if wants_value:
                    value_patterns.append(entry.path)
                if wants_metadata:
                    meta_patterns.append(entry.path)
            if not value_patterns and not meta_patterns:
                raise InvalidRequest("SubscribeRequest has no entries")
            meta_signals = self.access.resolve(grants, meta_patterns, Action.READ)
            sub = None
            if value_patterns:
                signals = self.access.resolve(grants, value_patterns, Action.READ)
                sub = self.broker.subscribe([s.path for s in signals], name=f"grpc-v1:{grants.subject}")
        except AnycarError as exc:
            await abort(context, exc)
        if sub is not None and not meta_patterns:
            try:
                async for batch in sub:
                    yield self._values(batch)
            finally:
                sub.close()
            return
        async for response in self._with_metadata(sub, meta_patterns, meta_signals):
            yield response

    def _values(self, batch: list[Datapoint]) -> v1.SubscribeResponse:
        find = self.broker.catalog.find
        response = v1.SubscribeResponse()
        for dp in batch:
            sig = find(dp.path)
            if sig is None or sig.type is NodeType.BRANCH:
                continue
            update = response.updates.add()
            update.entry.path = dp.path
            update.entry.value.CopyFrom(datapoint_v1(sig, dp.value, dp.timestamp))
            update.fields.append(t1.FIELD_VALUE)
        return response

    @staticmethod
    def _metadata(signals: list[Signal]) -> v1.SubscribeResponse:
        response = v1.SubscribeResponse()
        for sig in signals:
            update = response.updates.add()
            update.entry.path = sig.path
            update.entry.metadata.CopyFrom(metadata_v1(sig))
            update.fields.append(t1.FIELD_METADATA)
        return response

    async def _with_metadata(
        self, sub: Subscription | None, patterns: list[str], signals: list[Signal]
    ) -> AsyncIterator[v1.SubscribeResponse]:
        """The metadata first, then metadata changes and value updates as they come, in one
        stream. Each source waits while the stream is full, so neither grows without bound."""
        watch = self.watches.open(patterns, signals)
        out: asyncio.Queue[v1.SubscribeResponse | None] = asyncio.Queue(16)

        async def values(source: Subscription) -> None:
            async for batch in source:
                await out.put(self._values(batch))
            await out.put(None)

        async def metadata() -> None:
            while changed := await watch.next():
                await out.put(self._metadata(changed))
            await out.put(None)

        tasks = [asyncio.create_task(metadata())]
        if sub is not None:
            tasks.append(asyncio.create_task(values(sub)))
        try:
            yield self._metadata(signals)
            while (response := await out.get()) is not None:
                yield response
        finally:
            watch.close()
            if sub is not None:
                sub.close()
            for task in tasks:
                task.cancel()


def _subscribed(entry: v1.SubscribeEntry) -> tuple[bool, bool]:
    """(current value wanted, metadata wanted) for one ``SubscribeEntry``."""
    fields = set(entry.fields)
    if entry.view == t1.VIEW_METADATA or (fields and fields <= _METADATA_FIELDS):
        return False, True
    if entry.view == t1.VIEW_ALL:
        return True, True
    if entry.view in (t1.VIEW_CURRENT_VALUE, t1.VIEW_UNSPECIFIED) and fields <= {
        t1.FIELD_VALUE,
        t1.FIELD_PATH,
    }:
        return True, False
    raise InvalidRequest(
        f"{entry.path}: only current values and metadata can be subscribed through v1; "
        "target values reach providers through kuksa.val.v2 OpenProviderStream"
    )
