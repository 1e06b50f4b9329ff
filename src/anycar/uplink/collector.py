"""Running one campaign on the broker: watch its signals, sample them periodically or when its
condition fires, keep a ring of recent values for "N seconds before", apply the dead-bands,
and hand batches to the uplink.

Sample times are the hub's wall clock (what the fleet shows); scheduling uses the event loop's
monotonic clock, so a wall-clock jump neither floods nor stalls a campaign.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from anycar.broker import SignalBroker
from anycar.broker.datapoint import Datapoint
from anycar.broker.subscription import Subscription
from anycar.errors import AnycarError
from anycar.model import paths
from anycar.model.signal import Signal
from anycar.uplink.campaigns import Campaign, Periodic, Triggered
from anycar.uplink.tasks import Wakeup, supervised
from anycar.wire import Sample

log = logging.getLogger(__name__)
Emit = Callable[[Campaign, list[Sample], "float | None"], None]


def passes_deadband(deadband: float | None, last: Any, value: Any, *, seen: bool) -> bool:
    """Send ``value`` again? Always without a dead-band or a previous value; numbers after
    moving at least ``deadband``; everything else when it changed."""
    if deadband is None or not seen:
        return True
    numeric = (
        isinstance(value, (int, float))
        and isinstance(last, (int, float))
        and not isinstance(value, bool)
        and not isinstance(last, bool)
    )
    if numeric and deadband > 0:
        return bool(abs(value - last) >= deadband)
    return bool(value != last)


class CampaignRunner:
    def __init__(
        self, campaign: Campaign, broker: SignalBroker, emit: Emit, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.campaign = campaign
        self.broker = broker
        self.emit = emit
        self.clock = clock
        self.latest: dict[str, Any] = {}
        self.deadband: dict[str, float | None] = {}
        self.sent: dict[str, Any] = {}
        self.pending: list[Sample] = []
        self.first_pending: float | None = None  # loop time
        self.samples = 0
        self.triggers = 0
        self.crashes: dict[str, int] = {}
        self._subs: list[Subscription] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._replan = Wakeup()
        scheme = campaign.scheme
        self._ring: deque[Sample] = deque()
        self._before = scheme.before_s if isinstance(scheme, Triggered) else 0.0
        self._after_until: float | None = None  # loop time until which updates are collected
        self._trigger_ts: float | None = None
        self._last_trigger: float | None = None
        self._was_true: bool | None = None
        self._fast: bool = False
        self._watched = set(
            scheme.condition.paths
            if isinstance(scheme, Triggered)
            else (scheme.fast_when.paths if scheme.fast_when else [])
        )

    # -- life cycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        self.attach(self.broker.catalog.match(s.pattern) for s in self.campaign.signals)
        extra = [p for p in self._watched if p not in self.deadband]
        if extra:  # condition signals that are not collected are still watched
            self._subscribe(extra)
        self._tasks.append(
            asyncio.create_task(
                supervised(self._run, f"campaign {self.campaign.key}", self.crashes, 0.5),
                name=f"campaign-{self.campaign.id}",
            )
        )

    def attach(self, groups: Iterable[list[Signal]]) -> None:
        """Watch these signals too (at start, and when accessories add signals to the catalog)."""
        fresh: list[str] = []
        for group in groups:
            for sig in group:
                if sig.path not in self.deadband:
                    self.deadband[sig.path] = self._deadband_of(sig.path)
                    fresh.append(sig.path)
        if fresh:
            self._subscribe(fresh)

    def wants(self, path: str) -> bool:
        return path not in self.deadband and any(
            paths.matches(s.pattern, path) for s in self.campaign.signals
        )

    def _deadband_of(self, path: str) -> float | None:
        for spec in self.campaign.signals:
            if paths.matches(spec.pattern, path):
                return spec.deadband
        return None

    def _subscribe(self, names: list[str]) -> None:
        try:
            sub = self.broker.subscribe(names, name=f"uplink:{self.campaign.id}")
        except AnycarError as exc:
            log.warning("campaign %s: cannot watch %s: %s", self.campaign.key, names, exc)
            return
        self._subs.append(sub)
        self.on_values(sub.drain())
        reader = supervised(
            lambda: self._read(sub), f"campaign {self.campaign.key} reader", self.crashes, 0.5
        )
        self._tasks.append(asyncio.create_task(reader, name=f"campaign-{self.campaign.id}-read"))

    async def _read(self, sub: Subscription) -> None:
        async for batch in sub:
            self.on_values(batch)

    async def stop(self) -> None:
        for sub in self._subs:
            sub.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._subs = []
        self.flush()

    # -- values in -------------------------------------------------------------------------------
    def on_values(self, batch: Iterable[Datapoint]) -> None:
        scheme = self.campaign.scheme
        now = self.clock()
        touched = False
        for dp in batch:
            if dp.value is None:
                continue
            self.latest[dp.path] = dp.value
            touched = touched or dp.path in self._watched
            if dp.path not in self.deadband:
                continue
            sample = (dp.path, dp.timestamp, dp.value)
            if self._after_until is not None:
                self._add([sample])
            elif self._before:
                self._ring.append(sample)
        if self._before:
            horizon = now - self._before
            while self._ring and self._ring[0][1] < horizon:
                self._ring.popleft()
        if not touched:
            return
        if isinstance(scheme, Triggered):
            self._check_trigger(scheme, now)
        elif scheme.fast_when is not None:
            fast = scheme.fast_when.evaluate(self.latest) is True
            if fast != self._fast:
                self._fast = fast
                self._replan.set()

    def _check_trigger(self, scheme: Triggered, now: float) -> None:
        result = scheme.condition.evaluate(self.latest) is True
        edge = result and not self._was_true
        self._was_true = result
        if not (edge if scheme.rising_edge else result):
            return
        loop_now = asyncio.get_running_loop().time()
        if self._last_trigger is not None and loop_now - self._last_trigger < scheme.min_interval_s:
            return
        if self._after_until is not None:  # still collecting after the previous trigger
            return
        self._last_trigger = loop_now
        self.triggers += 1
        self._trigger_ts = now
        window = list(self._ring)
        self._ring.clear()
        have = {p for p, _, _ in window}
        window += [(p, now, v) for p, v in self.latest.items() if p in self.deadband and p not in have]
        self._add(window)
        if scheme.after_s > 0:
            self._after_until = loop_now + scheme.after_s
            self._replan.set()
        else:
            self.flush()

    # -- sampling and batching --------------------------------------------------------------------
    def tick(self, *, full: bool = False) -> None:
        """One periodic sample of every watched signal that passes its dead-band."""
        now = self.clock()
        rows = []
        for path, band in self.deadband.items():
            if path not in self.latest:
                continue
            value = self.latest[path]
            if full or passes_deadband(band, self.sent.get(path), value, seen=path in self.sent):
                rows.append((path, now, value))
                self.sent[path] = value
        self._add(rows)

    def _add(self, rows: list[Sample]) -> None:
        if not rows:
            return
        if not self.pending:
            self.first_pending = asyncio.get_running_loop().time()
        self.pending.extend(rows)
        self.samples += len(rows)
        if len(self.pending) >= self.campaign.max_values:
            self.flush()
        else:
            self._replan.set()

    def flush(self) -> None:
        if not self.pending:
            return
        rows, self.pending, self.first_pending = self.pending, [], None
        trigger = self._trigger_ts if isinstance(self.campaign.scheme, Triggered) else None
        self.emit(self.campaign, rows, trigger)

    async def _run(self) -> None:
        scheme = self.campaign.scheme
        loop = asyncio.get_running_loop()
        ticked: float | None = None
        next_full = loop.time()
        while True:
            now = loop.time()
            deadlines: list[float] = []
            if isinstance(scheme, Periodic):
                period = scheme.fast_period_s if (self._fast and scheme.fast_period_s) else scheme.period_s
                next_tick = now if ticked is None else ticked + period  # a shorter period applies at once
                if now >= next_tick:
                    full = scheme.full_every_s is not None and now >= next_full
                    self.tick(full=full)
                    if full and scheme.full_every_s is not None:
                        next_full = now + scheme.full_every_s
                    ticked, next_tick = now, now + period
                deadlines.append(next_tick)
            elif self._after_until is not None:
                if now >= self._after_until:
                    self._after_until = None
                    self.flush()
                else:
                    deadlines.append(self._after_until)
            if self.first_pending is not None:
                due = self.first_pending + self.campaign.max_delay_s
                if now < due:
                    deadlines.append(due)
                elif self._after_until is None:  # a trigger's window is sent whole, when it closes
                    self.flush()
            self._replan.clear()
            timeout = max(0.0, min(deadlines) - loop.time()) if deadlines else None
            await self._replan.sleep(timeout)

    def stats(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign.key,
            "signals": len(self.deadband),
            "samples": self.samples,
            "triggers": self.triggers,
            "pending": len(self.pending),
            "crashes": sum(self.crashes.values()),
        }
