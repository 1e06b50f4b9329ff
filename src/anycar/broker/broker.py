"""The signal broker: current values, providers, actuation and subscriptions over one catalog.

It runs on one asyncio event loop and is not thread-safe; code on other threads hands work to
it with ``loop.call_soon_threadsafe``. Every write is checked against the catalog, a slow
subscriber only loses its own oldest updates, and an actuation always ends in an outcome.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from anycar.broker.actuation import (
    ActuationRejected,
    ActuationRequest,
    ActuationResult,
    ActuationStatus,
)
from anycar.broker.datapoint import Datapoint
from anycar.broker.filters import SubscriptionFilter
from anycar.broker.guard import WriteGuard
from anycar.broker.provider import ActuationHandler, Provider
from anycar.broker.subscription import DEFAULT_QUEUE_SIZE, Subscription
from anycar.errors import (
    AlreadyClaimed,
    AnycarError,
    InvalidValue,
    UnknownPath,
    WrongSignalType,
)
from anycar.model import paths
from anycar.model.catalog import Catalog
from anycar.model.datatypes import ValueRejected
from anycar.model.signal import NodeType, Signal

DEFAULT_ACTUATION_TIMEOUT_S = 2.0
_EMPTY: tuple[Subscription, ...] = ()


class SignalBroker:
    def __init__(
        self,
        catalog: Catalog | None = None,
        *,
        actuation_timeout: float = DEFAULT_ACTUATION_TIMEOUT_S,
    ) -> None:
        self.catalog = catalog if catalog is not None else Catalog.load_default()
        self.actuation_timeout = actuation_timeout
        n = len(self.catalog)
        self._values: list[Datapoint | None] = [None] * n
        self._owners: list[Provider | None] = [None] * n
        self._subscribers: list[tuple[Subscription, ...]] = [_EMPTY] * n
        self._subscriber_sets: dict[tuple[Subscription, ...], tuple[Subscription, ...]] = {_EMPTY: _EMPTY}
        self._subscriptions: set[Subscription] = set()
        self._providers: dict[str, Provider] = {}
        self.updates = 0
        self.rejected = 0
        self.actuations: dict[ActuationStatus, int] = dict.fromkeys(ActuationStatus, 0)
        self.guard = WriteGuard()  # safety-critical branches, set by the policy
        self.catalog.add_listener(self._on_catalog_change)

    # -- catalog growth ---------------------------------------------------------------------
    def _on_catalog_change(self, added: list[Signal], changed: list[Signal]) -> None:
        grow = len(self.catalog) - len(self._values)
        if grow > 0:
            self._values.extend([None] * grow)
            self._owners.extend([None] * grow)
            self._subscribers.extend([_EMPTY] * grow)
        for sub in self._subscriptions:
            for sig in added:
                if any(paths.matches(p, sig.path) for p in sub.patterns if p not in sub.unknown):
                    self._attach(sub, sig.id)

    # -- reading ----------------------------------------------------------------------------
    def get(self, path: str) -> Datapoint | None:
        """The current value, or ``None`` if the signal never had one."""
        return self._values[self.catalog.get(path).id]

    def get_many(self, patterns: Iterable[str]) -> dict[str, Datapoint | None]:
        out: dict[str, Datapoint | None] = {}
        for pattern in patterns:
            for sig in self.catalog.resolve(pattern):
                out[sig.path] = self._values[sig.id]
        return out

    def metadata(self, pattern: str) -> list[Signal]:
        return self.catalog.resolve(pattern)

    def provider_of(self, path: str) -> str | None:
        owner = self._owners[self.catalog.get(path).id]
        return owner.name if owner is not None else None

    # -- providers --------------------------------------------------------------------------
    def register_provider(
        self, name: str, claims: Iterable[str] = (), *, on_actuate: ActuationHandler | None = None
    ) -> Provider:
        """A new provider, claiming ``claims`` (patterns) at once; names are unique."""
        if name in self._providers:
            raise AlreadyClaimed(f"a provider named {name!r} is already registered")
        provider = Provider(self, name, on_actuate)
        claim_list = list(claims)
        if claim_list:
            self._claim(provider, claim_list)
        self._providers[name] = provider
        return provider

    def providers(self) -> list[Provider]:
        return list(self._providers.values())

    def _claim(self, provider: Provider, patterns: list[str]) -> list[str]:
        chosen: list[Signal] = []
        for pattern in patterns:
            chosen.extend(self.catalog.resolve(pattern))
        for sig in chosen:
            self.guard.check(provider.name, sig.path, "provide")
        for sig in chosen:
            owner = self._owners[sig.id]
            if owner is not None and owner is not provider:
                raise AlreadyClaimed(
                    f"{sig.path} is already claimed by provider {owner.name!r}", path=sig.path
                )
        for sig in chosen:
            self._owners[sig.id] = provider
            provider.claimed.add(sig.id)
        return [s.path for s in chosen]

    def _release(self, provider: Provider, patterns: list[str]) -> None:
        for pattern in patterns:
            for sig in self.catalog.resolve(pattern):
                if self._owners[sig.id] is provider:
                    self._owners[sig.id] = None
                    provider.claimed.discard(sig.id)

    def _unregister(self, provider: Provider) -> None:
        for sid in provider.claimed:
            if self._owners[sid] is provider:
                self._owners[sid] = None
        provider.claimed.clear()
        if self._providers.get(provider.name) is provider:
            del self._providers[provider.name]

    # -- actuation --------------------------------------------------------------------------
    def check_actuation(self, path: str, value: Any) -> tuple[Signal, Any]:
        """Validate a request before it goes anywhere; raises on a bad path, type or value."""
        sig = self.catalog.get(path)
        if sig.type is not NodeType.ACTUATOR:
            raise WrongSignalType(f"{path} is a {sig.type}, only actuators can be set", path=path)
        try:
            return sig, sig.validate(value)
        except ValueRejected as exc:
            raise InvalidValue(path, str(exc)) from None

    def serves_actuation(self, path: str) -> bool:
        """Whether a provider would take an actuation of ``path`` now: an all-or-nothing batch
        asks this of every target before it forwards any."""
        return self._serving(self._owners[self.catalog.get(path).id])

    @staticmethod
    def _serving(owner: Provider | None) -> bool:
        return owner is not None and not owner.closed and owner.on_actuate is not None

    async def actuate(
        self, path: str, value: Any, *, requester: str | None = None, timeout: float | None = None
    ) -> ActuationResult:
        """Ask the actuator's provider to take ``value``; always returns an outcome.

        Raises only for requests that are wrong in themselves (unknown path, not an actuator,
        invalid value) and for a safety-critical actuator asked by an accessory (``guard``).
        """
        sig, value = self.check_actuation(path, value)
        self.guard.check(requester, sig.path, "set")
        return await self._forward(sig, value, requester, timeout)

    async def actuate_many(
        self,
        requests: Mapping[str, Any],
        *,
        requester: str | None = None,
        timeout: float | None = None,
    ) -> list[ActuationResult]:
        """Check every request first (one bad one refuses the batch), then forward them all."""
        checked = [self.check_actuation(p, v) for p, v in requests.items()]
        for sig, _ in checked:
            self.guard.check(requester, sig.path, "set")
        return list(await asyncio.gather(*(self._forward(s, v, requester, timeout) for s, v in checked)))

    async def _forward(
        self, sig: Signal, value: Any, requester: str | None, timeout: float | None
    ) -> ActuationResult:
        owner = self._owners[sig.id]
        if owner is None or not self._serving(owner) or owner.on_actuate is None:
            return self._count(
                ActuationResult(sig.path, ActuationStatus.NO_PROVIDER, "no provider serves this actuator")
            )
        request = ActuationRequest(sig.path, value, requester)
        limit = self.actuation_timeout if timeout is None else timeout
        try:
            outcome = owner.on_actuate(request)
            if inspect.isawaitable(outcome):
                await asyncio.wait_for(outcome, limit)
        except ActuationRejected as exc:
            return self._count(ActuationResult(sig.path, ActuationStatus.REJECTED, exc.reason))
        except TimeoutError:
            return self._count(
                ActuationResult(
                    sig.path,
                    ActuationStatus.TIMED_OUT,
                    f"provider {owner.name!r} did not answer within {limit:g} s",
                )
            )
        except (ConnectionError, asyncio.CancelledError) as exc:
            if owner.closed or isinstance(exc, ConnectionError):
                return self._count(
                    ActuationResult(
                        sig.path, ActuationStatus.NO_PROVIDER, f"provider {owner.name!r} went away"
                    )
                )
            raise
        except Exception as exc:  # a provider's bug must not reach the requester as a crash
            return self._count(ActuationResult(sig.path, ActuationStatus.REJECTED, f"provider error: {exc}"))
        return self._count(ActuationResult(sig.path, ActuationStatus.ACCEPTED))

    def _count(self, result: ActuationResult) -> ActuationResult:
        self.actuations[result.status] += 1
        return result

    # -- subscriptions ----------------------------------------------------------------------
    def subscribe(
        self,
        patterns: Iterable[str],
        *,
        filter: SubscriptionFilter | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        name: str = "",
        send_current: bool = True,
        max_age_s: float | None = None,
    ) -> Subscription:
        """Subscribe to every signal the patterns cover; current values come first.

        ``max_age_s``: updates that waited longer than that are dropped and counted
        (``Subscription.expired``); None keeps every update until the size bound drops it.

        Patterns that match nothing are listed in ``sub.unknown``; only if none matches does
        this raise ``UnknownPath``.
        """
        pattern_list = list(patterns)
        sub = Subscription(
            pattern_list,
            name=name,
            filter=filter,
            queue_size=queue_size,
            on_close=self._detach_all,
            max_age_s=max_age_s,
        )
        matched: list[Signal] = []
        for pattern in pattern_list:
            try:
                matched.extend(self.catalog.resolve(pattern))
            except AnycarError as exc:
                sub.unknown[pattern] = exc
        if not matched:
            first = next(iter(sub.unknown.values()), None)
            raise first if first is not None else UnknownPath("", "no paths given")
        self._subscriptions.add(sub)
        for sig in matched:
            if sig.id not in sub.signal_ids:
                self._attach(sub, sig.id)
                if send_current and (dp := self._values[sig.id]) is not None:
                    sub.offer(dp)
        return sub

    def _attach(self, sub: Subscription, sid: int) -> None:
        sub.signal_ids.add(sid)
        self._subscribers[sid] = self._shared((*self._subscribers[sid], sub))

    def _detach_all(self, sub: Subscription) -> None:
        for sid in sub.signal_ids:
            self._subscribers[sid] = self._shared(tuple(s for s in self._subscribers[sid] if s is not sub))
        self._subscriptions.discard(sub)
        # only the sets in use stay: a closed subscription is not kept alive by the table
        self._subscriber_sets = {subs: subs for subs in self._subscribers}

    def _shared(self, subs: tuple[Subscription, ...]) -> tuple[Subscription, ...]:
        """One tuple object per distinct subscriber set, so that ``publish_signals`` finds
        signals with the same subscribers by identity (``is``) rather than comparing tuples."""
        return self._subscriber_sets.setdefault(subs, subs)

    def subscriptions(self) -> list[Subscription]:
        return list(self._subscriptions)

    def stats(self) -> dict[str, Any]:
        """Counters an operator looks at: what moved, what was refused, what was dropped."""
        return {
            "signals": len(self.catalog),
            "with_value": sum(1 for v in self._values if v is not None),
            "updates": self.updates,
            "rejected": self.rejected,
            "providers": {
                p.name: {
                    "claimed": len(p.claimed),
                    "published": p.published,
                    "rejected": p.rejected,
                }
                for p in self._providers.values()
            },
            "subscriptions": [s.stats() for s in self._subscriptions],
            "dropped": sum(s.dropped for s in self._subscriptions),
            "expired": sum(s.expired for s in self._subscriptions),
            "actuations": {str(k): v for k, v in self.actuations.items()},
        }
