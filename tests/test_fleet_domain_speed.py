"""domain-speed, on real SQLite and PostgreSQL: a commit whose hook runs after the derivation
pass had already read it (the ingest commits while a pass runs) is not "late": it costs a
count, not a re-derivation from the last stop, and the trips and alerts come out as in order;
a sample that really is new inside the last pass's window is still re-derived; the runner
derives a vehicle at most every ``derive_min_interval_s``."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from anycar.fleet import domain_queries as dq
from anycar.fleet.domain import DomainPipeline
from anycar.fleet.store import Accepted, Store, Stored
from fleet_support import fleet_engine
from test_fleet_late_alerts import _alerts, _deliver, _fence_events, _setup, _standing, the_drive


def _trips(engine: Engine, tid: int, wire_id: str) -> list[tuple[Any, ...]]:
    return [
        (t["start_ts"], t["end_ts"], t["open"])
        for t in dq.trip_list(engine, tid, wire_id=wire_id, limit=1000)
    ]


def _commit_unhooked(store: Store, domain: DomainPipeline, ref: Any, doc: dict[str, Any]) -> Stored:
    """Commit with the domain's hook held back: as if it ran only after the next pass began."""
    store.after_commit.remove(domain.on_commit)
    try:
        return store.commit([Accepted(ref, doc)])
    finally:
        store.after_commit.append(domain.on_commit)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_commit_the_last_pass_already_read_is_not_re_derived(kind: str, tmp_path: Path) -> None:
    with fleet_engine(kind, tmp_path) as engine:
        store, domain, (ref_ref, ref), tid = _setup(engine, 2)
        _deliver(store, domain, ref_ref, the_drive(ref_ref.wire_id).batches(per_batch=3))
        docs = the_drive(ref.wire_id).batches(per_batch=3)
        for i, doc in enumerate(docs):
            if i % 2:
                stored = _commit_unhooked(store, domain, ref, doc)
                domain.run_pending()  # reads it (the vehicle was pending from the last commit)
                domain.on_commit(stored)  # its hook, late
            else:
                store.commit([Accepted(ref, doc)])
        domain.run_pending()
        assert domain.stats.rederived == 0
        assert domain.stats.already_derived >= len(docs) // 2 - 1
        assert _standing(_alerts(engine, tid, ref.wire_id)) == _standing(
            _alerts(engine, tid, ref_ref.wire_id)
        )
        assert _fence_events(engine, tid, ref.wire_id) == _fence_events(engine, tid, ref_ref.wire_id)
        assert _trips(engine, tid, ref.wire_id) == _trips(engine, tid, ref_ref.wire_id)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_new_sample_inside_the_last_window_is_still_re_derived(kind: str, tmp_path: Path) -> None:
    with fleet_engine(kind, tmp_path) as engine:
        store, domain, (ref_ref, ref), tid = _setup(engine, 2)
        _deliver(store, domain, ref_ref, the_drive(ref_ref.wire_id).batches(per_batch=3))
        docs = the_drive(ref.wire_id).batches(per_batch=3)
        held = docs[len(docs) // 2]
        for doc in docs:
            if doc is held:
                continue
            store.commit([Accepted(ref, doc)])
        domain.run_pending()  # one pass over everything but the held batch: its window spans it
        assert domain.stats.rederived == 0
        _deliver(store, domain, ref, [held])
        assert domain.stats.rederived == 1 and domain.stats.already_derived == 0
        assert _standing(_alerts(engine, tid, ref.wire_id)) == _standing(
            _alerts(engine, tid, ref_ref.wire_id)
        )
        assert _trips(engine, tid, ref.wire_id) == _trips(engine, tid, ref_ref.wire_id)


def test_the_runner_derives_a_vehicle_at_most_every_min_interval(tmp_path: Path) -> None:
    with fleet_engine("sqlite", tmp_path) as engine:
        store, domain, (ref,), _ = _setup(engine, 1)
        domain.cfg = dataclasses.replace(domain.cfg, derive_min_interval_s=0.5)
        docs = the_drive(ref.wire_id).batches(per_batch=3)[:40]

        async def main() -> float:
            await domain.start()
            try:
                began = time.monotonic()
                for doc in docs:  # a commit every 20 ms for 0.8 s
                    await asyncio.to_thread(store.commit, [Accepted(ref, doc)])
                    await asyncio.sleep(0.02)
                while domain.status()["pending"]:
                    await asyncio.sleep(0.02)
                await asyncio.sleep(0.1)
                return time.monotonic() - began
            finally:
                await domain.stop()

        took = asyncio.run(main())
        # one pass per 0.5 s, not one per commit (a pass here takes a few ms)
        assert 2 <= domain.stats.passes <= took / 0.5 + 2
        assert domain.stats.samples > 0 and domain.stats.errors == 0
