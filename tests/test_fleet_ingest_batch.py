"""A worker's batch is sized for its database (sqlite-batch): a SQLite worker that has fallen
behind catches up in commits of up to 2,000 messages (its one writer then pays a commit's fixed
costs per 2,000, not per 500), a PostgreSQL worker keeps 500. Through a real Mosquitto of the
test's own, configured as docs/deployment.md says (``max_inflight_messages 4000``), with 6,000
messages queued in the worker's persistent session while it was away."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from anycar.bench.fleet import register
from anycar.bench.fleet_procs import publish
from anycar.fleet.ingest import IngestWorker
from anycar.fleet.store import Store
from fleet_support import eventually, fleet_engine
from uplink_support import Mosquitto


@pytest.mark.parametrize(("kind", "batch"), [("sqlite", 2000), ("postgres", 500)])
async def test_a_worker_behind_catches_up_in_batches_sized_for_its_database(
    kind: str, batch: int, tmp_path: Path
) -> None:
    broker = Mosquitto(tmp_path, extra="max_inflight_messages 4000\nmax_queued_messages 100000").start()
    try:
        with fleet_engine(kind, tmp_path) as engine:
            prefix = f"K{uuid.uuid4().hex[:6]}-"
            register(engine, prefix, 100)
            wid = f"batch-{uuid.uuid4().hex[:8]}"

            def worker() -> IngestWorker:  # a plain persistent subscription: it queues while away
                return IngestWorker(Store(engine), port=broker.port, worker_id=wid, group="", session_s=600)

            away = worker()
            await away.start()
            await away.stop()
            sent = await asyncio.to_thread(publish, broker.port, 100, 3000.0, 2.0, prefix)
            assert sent["acked"] == sent["published"] >= 5000
            back = worker()
            assert back.batch_max == batch
            await back.start()
            try:
                await eventually(lambda: back.stats.stored >= sent["published"], 120, "the backlog stored")
            finally:
                await back.stop()
            assert back.stats.stored == sent["published"] and back.stats.duplicates == 0
            mean = back.stats.received / back.stats.batches
            if kind == "sqlite":
                assert mean > 1000, back.stats  # 500 before: the old default fails here
            else:
                assert mean <= 500, back.stats
    finally:
        broker.stop()
