"""A provider: the one party allowed to write the signals it claimed and to serve their actuation.

CAN adapters, accessories and gRPC provider streams are all providers.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from anycar.broker.actuation import ActuationRequest
from anycar.broker.datapoint import Datapoint
from anycar.errors import AnycarError, InvalidValue, NotProvider, UnknownPath
from anycar.model.datatypes import ValueRejected

if TYPE_CHECKING:
    from anycar.broker.broker import SignalBroker
    from anycar.broker.subscription import Subscription
    from anycar.model.signal import Signal

ActuationHandler = Callable[[ActuationRequest], Awaitable[None] | None]
# a Datapoint made by tuple's own constructor, without the NamedTuple's Python-level __new__
# or _make (one Python frame less per value written); its argument is (path, value, timestamp)
_new_tuple = tuple.__new__


class Provider:
    """Handle returned by ``SignalBroker.register_provider``.

    ``on_actuate`` is called for every request to one of its actuators; it returns (or its
    awaitable finishes) to accept, and raises ``ActuationRejected(reason)`` to refuse.
    """

    def __init__(self, broker: SignalBroker, name: str, on_actuate: ActuationHandler | None) -> None:
        self.name = name
        self.on_actuate = on_actuate
        self.claimed: set[int] = set()
        self.closed = False
        self.published = 0
        self.rejected = 0
        self._broker = broker

    def claim(self, patterns: Iterable[str]) -> list[str]:
        """Claim every signal the patterns cover; all or nothing. Returns the claimed paths."""
        return self._broker._claim(self, list(patterns))

    def release(self, patterns: Iterable[str]) -> None:
        self._broker._release(self, list(patterns))

    def publish(self, path: str, value: Any, timestamp: float | None = None) -> Datapoint:
        """Write one value; raises ``UnknownPath``, ``NotProvider`` or ``InvalidValue``."""
        errors = self.publish_many(((path, value),), timestamp)
        if errors:
            raise errors[path]
        dp = self._broker.get(path)
        assert dp is not None  # nosec B101 # narrows an Optional for mypy; an invariant of this object, not a check of outside input
        return dp

    def publish_many(
        self, items: Iterable[tuple[str, Any]], timestamp: float | None = None
    ) -> dict[str, AnycarError]:
        """Write several values taken at one moment.

        Each bad entry is refused on its own and reported in the returned map; the good ones
        are stored and delivered. ``None`` as a value marks the signal unavailable.
        """
        signals = self._broker.catalog._signals
        known: list[tuple[Signal, Any]] = []
        unknown: dict[str, AnycarError] = {}
        for path, value in items:
            sig = signals.get(path)
            if sig is None:
                unknown[path] = UnknownPath(path)
            else:
                known.append((sig, value))
        errors = self.publish_signals(known, timestamp)
        if unknown:
            self.rejected += len(unknown)
            self._broker.rejected += len(unknown)
            errors.update(unknown)
        return errors

    def publish_signals(
        self, items: Iterable[tuple[Signal, Any]], timestamp: float | None = None
    ) -> dict[str, AnycarError]:
        """``publish_many`` for callers that hold the catalog's ``Signal`` already (a provider
        stream looks signals up by id): the same checks and delivery, without the path look-up.

        The hot path of every provider, per message of up to thousands of values: each value
        is checked and stored, and the values go to each subscriber in one step per run of
        signals with the same subscribers, so a subscriber's queue and wake-up are touched
        once per message rather than once per value.
        """
        if self.closed:
            raise NotProvider(f"provider {self.name!r} is closed")
        broker = self._broker
        owners = broker._owners
        values = broker._values
        subscribers = broker._subscribers
        new = _new_tuple
        ts = time.time() if timestamp is None else timestamp
        errors: dict[str, AnycarError] = {}
        if not isinstance(items, list):
            items = list(items)
        refused = 0  # not len(errors): a signal refused twice in one message is one entry
        run_subs: tuple[Subscription, ...] = ()
        run: list[Datapoint] = []
        runs: list[tuple[tuple[Subscription, ...], list[Datapoint]]] = []
        for sig, value in items:
            sid = sig.id
            if owners[sid] is not self:
                errors[sig.path] = NotProvider(
                    f"{sig.path} is provided by {_owner_name(owners[sid])}, not {self.name!r}",
                    path=sig.path,
                )
                refused += 1
                continue
            if value is not None:
                try:
                    value = sig.validate(value)
                except ValueRejected as exc:
                    errors[sig.path] = InvalidValue(sig.path, str(exc))
                    refused += 1
                    continue
            dp: Datapoint = new(Datapoint, (sig.path, value, ts))
            values[sid] = dp
            subs = subscribers[sid]
            if subs is run_subs or subs == run_subs:
                run.append(dp)
            else:
                if run and run_subs:
                    runs.append((run_subs, run))
                run_subs, run = subs, [dp]
        if run and run_subs:
            runs.append((run_subs, run))
        for subs, batch in runs:
            for sub in subs:
                sub.offer_many(batch)
        count = len(items) - refused
        self.published += count
        broker.updates += count
        if errors:
            self.rejected += len(errors)
            broker.rejected += len(errors)
        return errors

    def publish_checked(self, sids: list[int], dps: list[Datapoint], refused: int = 0) -> None:
        """Store and deliver values a caller has already checked as ``publish_signals`` checks
        them: each of ``sids`` is claimed by this provider and each ``dps[i]`` holds a value its
        signal's ``validate`` returned (or None), under the signal's path. ``refused`` counts the
        values the caller refused in those checks, as ``publish_signals`` counts its refusals.

        Why: a provider stream decodes, checks and stamps each value in its own loop over the
        request; handing ``publish_signals`` (signal, value) pairs made a second loop, a tuple
        per value and a second ownership test (docs/performance.md, session 7). Delivery is the
        same: the store, then one ``offer_many`` per run of signals with the same subscribers.
        """
        if self.closed:
            raise NotProvider(f"provider {self.name!r} is closed")
        broker = self._broker
        values = broker._values
        subscribers = broker._subscribers
        run_subs: tuple[Subscription, ...] = ()
        run: list[Datapoint] = []
        runs: list[tuple[tuple[Subscription, ...], list[Datapoint]]] = []
        for sid, dp in zip(sids, dps, strict=True):
            values[sid] = dp
            subs = subscribers[sid]
            if subs is run_subs or subs == run_subs:
                run.append(dp)
            else:
                if run and run_subs:
                    runs.append((run_subs, run))
                run_subs, run = subs, [dp]
        if run and run_subs:
            runs.append((run_subs, run))
        for subs, batch in runs:
            for sub in subs:
                sub.offer_many(batch)
        count = len(dps)
        self.published += count
        broker.updates += count
        if refused:
            self.rejected += refused
            broker.rejected += refused

    def mark_unavailable(self, paths: Iterable[str] | None = None) -> None:
        """Say that these claimed signals (default: all) have no valid value now."""
        chosen = (
            list(paths) if paths is not None else [self._broker.catalog.by_id(i).path for i in self.claimed]
        )
        self.publish_many((p, None) for p in chosen)

    def close(self) -> None:
        """Give up every claim; pending and future actuation requests see NO_PROVIDER."""
        if not self.closed:
            self._broker._unregister(self)
            self.closed = True


def _owner_name(owner: Provider | None) -> str:
    return f"provider {owner.name!r}" if owner is not None else "no provider (unclaimed)"
