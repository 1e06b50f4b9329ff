"""Metadata subscriptions (kuksa-client's ``subscribe_metadata``, a v1 ``Subscribe`` with the
metadata view): the subscriber learns its signals' metadata at once, then again whenever an
overlay adds a signal its patterns cover or changes one it holds.

One catalog listener serves every watch. A watch keeps the newest version of each changed
signal until its reader takes them, so a reader that falls behind costs at most one entry per
signal and never slows the overlay that caused the change.
"""

from __future__ import annotations

import asyncio

from anycar.model import Catalog, Signal, paths


class MetadataWatch:
    def __init__(self, owner: MetadataWatches, patterns: list[str], signals: list[Signal]) -> None:
        self._owner = owner
        self.patterns = patterns
        self.ids = {s.id for s in signals}
        self._pending: dict[int, Signal] = {}
        self._wake = asyncio.Event()
        self.closed = False

    def offer(self, added: list[Signal], changed: list[Signal]) -> None:
        for sig in changed:
            if sig.id in self.ids:
                self._pending[sig.id] = sig
        for sig in added:
            if any(paths.matches(p, sig.path) for p in self.patterns):
                self.ids.add(sig.id)
                self._pending[sig.id] = sig
        if self._pending:
            self._wake.set()

    async def next(self) -> list[Signal]:
        """The signals whose metadata changed since the last call (waits for at least one);
        an empty list once the watch is closed."""
        while not self._pending and not self.closed:
            self._wake.clear()
            await self._wake.wait()
        batch = list(self._pending.values())
        self._pending.clear()
        return batch

    def close(self) -> None:
        self.closed = True
        self._wake.set()
        self._owner.watches.discard(self)


class MetadataWatches:
    def __init__(self, catalog: Catalog) -> None:
        self.watches: set[MetadataWatch] = set()
        catalog.add_listener(self._on_change)

    def open(self, patterns: list[str], signals: list[Signal]) -> MetadataWatch:
        watch = MetadataWatch(self, patterns, signals)
        self.watches.add(watch)
        return watch

    def _on_change(self, added: list[Signal], changed: list[Signal]) -> None:
        for watch in list(self.watches):
            watch.offer(added, changed)

    def close(self) -> None:
        for watch in list(self.watches):
            watch.close()
