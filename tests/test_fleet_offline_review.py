"""The offline alerts' review on late data is incremental, on real SQLite and PostgreSQL
(fleet-domain, session 6): a vehicle whose stream is stamped far behind the clock (a hub clock
behind, a replayed log) has a derivation cursor older than the offline limit, and each of its
passes used to read again the stretch of every offline alert raised since; now a pass reviews
an alert only when one of the samples it read for the first time falls between the alert's
last-heard time and its own, and such a sample still withdraws the alert."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from anycar.fleet import latealerts
from anycar.fleet.domain_tables import alerts
from anycar.fleet.store import Accepted
from fleet_domain_support import Drive
from fleet_support import fleet_engine
from test_fleet_late_alerts import _alerts, _deliver, _setup


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_an_old_cursor_reviews_an_offline_alert_only_when_new_samples_fall_under_it(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fleet_engine(kind, tmp_path) as engine:
        store, domain, (ref,), tid = _setup(engine, 1)
        now = time.time()
        heard, raised = now - 2400, now - 1200  # silent 20 min before the alert (limit 15)
        with engine.begin() as conn:
            conn.execute(
                insert(alerts).values(
                    tenant_id=tid,
                    vehicle_id=ref.id,
                    ts=raised,
                    type="offline",
                    severity="warning",
                    message="no message for 20 min (limit 15 min)",
                    data={"last_seen": heard, "after_minutes": 15},
                    raised_ts=raised,
                    late=False,
                )
            )
        reads: list[tuple[float, float]] = []
        times = latealerts._times

        def counted(conn: Any, vehicle_id: int, a: float, b: float) -> list[float]:
            reads.append((a, b))
            return times(conn, vehicle_id, a, b)

        monkeypatch.setattr(latealerts, "_times", counted)
        old = Drive(ref.wire_id, t=now - 86_400, step_s=10).leg(600, 20)  # a day behind the clock
        _deliver(store, domain, ref, old.batches(per_batch=3))
        assert domain.stats.samples > 0 and domain.stats.passes == 20
        assert reads == []  # 20 passes with an old cursor, none read the alert's stretch
        # the hub's spool of the silent stretch: samples under the alert, every 10 s
        spool = Drive(ref.wire_id, t=heard + 10, step_s=10, seq=100).leg(1180, 20)
        for doc in spool.batches(per_batch=6):
            store.commit([Accepted(ref, doc)])
        domain.run_pending()
        assert reads == [(heard, raised)]
        (gone,) = [a for a in _alerts(engine, tid, ref.wire_id) if a["type"] == "offline"]
        assert gone["withdrawn_reason"].startswith("data arrived late: the vehicle was online")
        assert domain.stats.errors == 0
