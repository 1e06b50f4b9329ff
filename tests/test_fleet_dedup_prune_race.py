"""A resend that meets the dedup prune mid-way is still refused (PostgreSQL, READ COMMITTED).

The prune deletes the keys under a boot's new floor. A commit whose INSERT meets a key the prune
is deleting waits for it, and once the prune commits the INSERT goes in; if the same statement's
snapshot still showed the old floor, the resend was stored a second time. Seen once in CI as a
`stored_once` failure of the cluster test (a worker killed and restarted under load: its
maintenance pruned while the broker redelivered). The commit now takes the prune's lock shared
first, so its dedup statement starts after the prune and sees the new floor."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import text

from anycar.fleet import db, retention
from anycar.fleet.store import _first_time_pg
from fleet_support import fleet_engine


def test_a_resend_racing_the_prune_is_refused(tmp_path: Path) -> None:
    with fleet_engine("postgres", tmp_path) as engine:
        key = ("veh-1", "0123456789abcdef", 7)
        with engine.begin() as conn:
            conn.execute(
                db.received.insert(), [{"vehicle": key[0], "boot": key[1], "seq": s} for s in range(1, 8)]
            )
            conn.execute(
                db.received_floor.insert().values(vehicle=key[0], boot=key[1], floor=0, updated=time.time())
            )
        found: list[set[tuple[str, str, int]]] = []

        def resend() -> None:
            with engine.begin() as conn:
                found.append(_first_time_pg(conn, [key]))

        with engine.begin() as prune:  # what prune_received does, held open
            retention.hold_dedup(prune, shared=False)
            prune.execute(text("UPDATE received_floor SET floor = 7"))
            prune.execute(text("DELETE FROM received WHERE seq <= 7"))
            late = threading.Thread(target=resend)
            late.start()
            time.sleep(1.0)  # the resend is now waiting (on the lock; before the fix, on the key)
            assert late.is_alive()
        late.join(30)
        assert found == [set()], "the resend was taken as new: it would be stored twice"
