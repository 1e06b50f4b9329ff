"""Two ingest workers on one database, each with its own domain pipeline, on real SQLite and
PostgreSQL (fleet-domain, session 6): a commit of one worker that the other worker's passes
already read is a count, not a re-derivation, even when the other worker ran two passes before
this one's (the cursor keeps the union of its last two read windows); a pass that finds nothing
after the cursor writes nothing; a sample that really is new inside those windows still
re-derives; and the trips and alerts come out as in order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from anycar.fleet.domain import DomainPipeline
from anycar.fleet.domain_tables import derive_cursors
from anycar.fleet.store import Accepted, Store
from fleet_support import fleet_engine
from test_fleet_domain_speed import _trips
from test_fleet_late_alerts import _alerts, _deliver, _fence_events, _setup, _standing, the_drive


def _cursor(engine: Any, vehicle_id: int) -> tuple[float, float]:
    with engine.connect() as conn:
        row = conn.execute(
            select(derive_cursors.c.until_ts, derive_cursors.c.updated).where(
                derive_cursors.c.vehicle_id == vehicle_id
            )
        ).one()
    return float(row.until_ts), float(row.updated)


def _two_workers(engine: Any) -> tuple[Any, Any, Any, Any, int]:
    """Workers A and B (a store and a domain pipeline each) and two vehicles: the reference,
    delivered in order through A and derived, and the one the test sends through both."""
    store_a, domain_a, (ref_ref, ref), tid = _setup(engine, 2)
    store_b = Store(engine)
    _deliver(store_a, domain_a, ref_ref, the_drive(ref_ref.wire_id).batches(per_batch=3))
    return (store_a, domain_a), (store_b, DomainPipeline(store_b)), ref_ref, ref, tid


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_commit_two_passes_of_the_other_worker_read_is_not_re_derived(kind: str, tmp_path: Path) -> None:
    with fleet_engine(kind, tmp_path) as engine:
        (store_a, domain_a), (store_b, domain_b), ref_ref, ref, tid = _two_workers(engine)
        docs = the_drive(ref.wire_id).batches(per_batch=3)
        for i in range(0, len(docs) - 2, 3):
            store_a.commit([Accepted(ref, docs[i])])  # A's commit; A's pass comes later
            store_b.commit([Accepted(ref, docs[i + 1])])
            domain_b.run_pending()  # reads A's batch and its own
            store_b.commit([Accepted(ref, docs[i + 2])])
            domain_b.run_pending()  # a second pass of B before A's
            domain_a.run_pending()  # A's commit is behind the cursor, read two windows ago
        for doc in docs[len(docs) - len(docs) % 3 :]:
            store_b.commit([Accepted(ref, doc)])
        domain_b.run_pending()
        domain_a.run_pending()
        both = [domain_a.stats, domain_b.stats]
        assert sum(s.rederived for s in both) == 0
        assert domain_a.stats.already_derived >= len(docs) // 3 - 1
        assert sum(s.errors for s in both) == 0
        assert _standing(_alerts(engine, tid, ref.wire_id)) == _standing(
            _alerts(engine, tid, ref_ref.wire_id)
        )
        assert _fence_events(engine, tid, ref.wire_id) == _fence_events(engine, tid, ref_ref.wire_id)
        assert _trips(engine, tid, ref.wire_id) == _trips(engine, tid, ref_ref.wire_id)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_pass_with_nothing_new_writes_nothing_and_a_new_sample_still_re_derives(
    kind: str, tmp_path: Path
) -> None:
    with fleet_engine(kind, tmp_path) as engine:
        (store_a, domain_a), (store_b, domain_b), ref_ref, ref, tid = _two_workers(engine)
        docs = the_drive(ref.wire_id).batches(per_batch=3)
        held = docs[len(docs) // 2]
        rest = [d for d in docs if d is not held]
        for doc in rest[:-2]:
            store_b.commit([Accepted(ref, doc)])
        store_a.commit([Accepted(ref, rest[-2])])
        domain_b.run_pending()  # B derives everything, A's last commit included
        store_b.commit([Accepted(ref, rest[-1])])
        domain_b.run_pending()
        before = _cursor(engine, ref.id)
        domain_a.run_pending()  # its commit was read by B: a count, then nothing after the cursor
        assert domain_a.stats.already_derived == 1 and domain_a.stats.unchanged == 1
        assert _cursor(engine, ref.id) == before  # not even the cursor was rewritten
        # the held batch is in the middle of the stream, before both windows: re-derived
        _deliver(store_a, domain_a, ref, [held])
        assert domain_a.stats.rederived == 1
        assert _standing(_alerts(engine, tid, ref.wire_id)) == _standing(
            _alerts(engine, tid, ref_ref.wire_id)
        )
        assert _trips(engine, tid, ref.wire_id) == _trips(engine, tid, ref_ref.wire_id)
        # rows added inside the windows (the last batch sent again under a new seq) are not
        # mistaken for rows already read
        late = the_drive(ref.wire_id)
        late.seq = 500
        again = late.batches(per_batch=3)[-1]
        store_b.commit([Accepted(ref, again)])  # same times as the last batch: rows added
        domain_b.run_pending()
        assert domain_b.stats.rederived == 1
