"""A batch's prefetch refreshes a vehicle entry a little before it is too old, so the judge a
moment later never finds it expired and reads it alone on the event loop; a fresh entry is left
alone (one query a batch at most, not one a vehicle)."""

from __future__ import annotations

import time
from pathlib import Path

from anycar.fleet import registry
from anycar.fleet.store import CACHE_S, PREFETCH_EARLY_S, Store
from fleet_support import fleet_engine, vin


def test_prefetch_refreshes_an_entry_about_to_turn_old_and_leaves_a_fresh_one(tmp_path: Path) -> None:
    with fleet_engine("sqlite", tmp_path) as engine:
        ids = [registry.add_vehicle(engine, vin(i), "kaiyun_pickman", tenant="acme").vehicle for i in (1, 2)]
        store = Store(engine)
        store.prefetch(ids)
        now = time.monotonic()
        nearly_old = now - (CACHE_S - PREFETCH_EARLY_S / 2)  # still trusted, but not for long
        fresh = now - PREFETCH_EARLY_S / 2
        store._vehicles[ids[0]] = (nearly_old, store._vehicles[ids[0]][1])
        store._vehicles[ids[1]] = (fresh, store._vehicles[ids[1]][1])
        store.prefetch(ids)
        assert store._vehicles[ids[0]][0] > nearly_old + 1  # refreshed by the prefetch
        assert store._vehicles[ids[1]][0] == fresh  # left as it was
        ref = store.vehicle(ids[0])
        assert ref is not None and ref.wire_id == ids[0]
