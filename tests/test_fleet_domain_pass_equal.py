"""domain-pass, on real SQLite and PostgreSQL: the cheaper vehicle pass (statements built once,
the open trip and stop rewritten in place, one connection per pass) derives exactly what the
pass before it did. ``domainpass_reference_derive`` is ``anycar.fleet.derive`` as it was
before (main at the branch point, kept verbatim); hypothesis draws random drives (speeds,
ignition, SoC crossing the low limit, a warm cooler, a door, two geofences crossed), random
batching, random delivery order (late batches, a spool drained at the end) and two workers
with their own pipelines whose hooks may run after their next pass; the same schedule runs
once through the reference and once through the pass of today, each on its own vehicle, and
the trips, stops, geofence events, alerts, rule checkpoints, cursors and the passes' counts
must be equal."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.engine import Engine

import domainpass_reference_derive as reference
from anycar.fleet import derive, domain, registry
from anycar.fleet import domain_queries as dq
from anycar.fleet.domain import DomainPipeline
from anycar.fleet.domain_tables import (
    alerts,
    derive_cursors,
    geofence_events,
    rule_checkpoints,
    stops,
    trips,
)
from anycar.fleet.store import Accepted, Store, Stored
from fleet_domain_support import CARGO, DOOR, Drive
from fleet_support import fleet_engine, vin
from test_fleet_alerts import circle, square

LEG = st.tuples(
    st.sampled_from([20, 40, 60, 120, 200, 300]),  # seconds
    st.sampled_from([0.0, 2.0, 20.0, 50.0]),  # km/h
    st.sampled_from(["ON", "ON", "ON", "OFF"]),
    st.sampled_from([4.0, 11.5]),  # the cooler
    st.booleans(),  # a door open
)
OP = st.tuples(
    st.integers(0, 1),  # the worker that commits it
    st.booleans(),  # its hook runs only after that worker's next pass
    st.sampled_from([(), (), (0,), (1,), (0, 1), (1, 0)]),  # the passes after the commit
)
CASE = st.fixed_dictionaries(
    {
        "legs": st.lists(LEG, min_size=1, max_size=6),
        "soc": st.sampled_from([14.0, 16.0, 30.0]),
        "per_batch": st.integers(1, 5),
        "delays": st.lists(st.sampled_from([0, 0, 0, 0, 1, 3, 1000]), min_size=80, max_size=80),
        "ops": st.lists(OP, min_size=80, max_size=80),
    }
)
COUNTS = ("vehicles", "samples", "alerts", "geofence_events", "trips", "rederived", "late_skipped")
COUNTS += ("already_derived", "unchanged")


def _docs(wire_id: str, case: dict[str, Any]) -> list[dict[str, Any]]:
    drive = Drive(wire_id, soc=case["soc"], wh_per_km=150)
    for seconds, kmh, ignition, cargo, door in case["legs"]:
        drive.leg(seconds, kmh, ignition, **{CARGO: cargo, DOOR: door})
    return drive.batches(per_batch=case["per_batch"])[:80]


def _run(engine: Engine, wire_id: str, case: dict[str, Any], derive_vehicle: Any) -> dict[str, int]:
    """The case's schedule for one vehicle, every pass through ``derive_vehicle``."""
    patch = pytest.MonkeyPatch()
    patch.setattr(domain, "derive_vehicle", derive_vehicle)
    try:
        stores = [Store(engine), Store(engine)]
        pipes = [DomainPipeline(s) for s in stores]
        refs = [s.vehicle(wire_id) for s in stores]
        docs = _docs(wire_id, case)
        order = sorted(range(len(docs)), key=lambda i: (i + case["delays"][i], i))
        held: list[list[Stored]] = [[], []]
        for i, (w, late_hook, passes) in zip(order, case["ops"], strict=False):
            if late_hook:
                stores[w].after_commit.remove(pipes[w].on_commit)
                held[w].append(stores[w].commit([Accepted(refs[w], docs[i])]))
                stores[w].after_commit.append(pipes[w].on_commit)
            else:
                stores[w].commit([Accepted(refs[w], docs[i])])
            for p in passes:
                pipes[p].run_pending()
                for stored in held[p]:
                    pipes[p].on_commit(stored)
                held[p].clear()
        for w in (0, 1):
            for stored in held[w]:
                pipes[w].on_commit(stored)
        for _ in range(2):
            for p in pipes:
                p.run_pending()
        assert all(p.stats.errors == 0 for p in pipes)
        return {k: sum(getattr(p.stats, k) for p in pipes) for k in COUNTS}
    finally:
        patch.undo()


def _rows(engine: Engine, table: Any, vehicle_id: int, drop: tuple[str, ...]) -> list[dict[str, Any]]:
    cols = [c for c in table.c if c.name not in ("id", "vehicle_id", *drop)]
    with engine.connect() as conn:
        found = [
            dict(r._mapping) for r in conn.execute(select(*cols).where(table.c.vehicle_id == vehicle_id))
        ]
    return sorted(found, key=repr)


def _derived(engine: Engine, vehicle_id: int) -> dict[str, Any]:
    """Everything the derivation stored for the vehicle, without row ids and wall-clock times."""
    got = {
        "trips": _rows(engine, trips, vehicle_id, ()),
        "stops": _rows(engine, stops, vehicle_id, ()),
        "geofence_events": _rows(engine, geofence_events, vehicle_id, ()),
        "alerts": _rows(engine, alerts, vehicle_id, ("raised_ts", "withdrawn_ts", "cleared_ts")),
        "checkpoints": _rows(engine, rule_checkpoints, vehicle_id, ()),
        "cursor": _rows(engine, derive_cursors, vehicle_id, ("updated",)),
    }
    with engine.connect() as conn:
        a = alerts.c
        got["alert_times"] = sorted(
            (r.type, r.ts, r.withdrawn_ts is not None, r.cleared_ts is not None)
            for r in conn.execute(
                select(a.type, a.ts, a.withdrawn_ts, a.cleared_ts).where(a.vehicle_id == vehicle_id)
            )
        )
    return got


@pytest.mark.parametrize(("kind", "examples"), [("sqlite", 40), ("postgres", 15)])
def test_the_cheaper_pass_derives_what_the_reference_did(kind: str, examples: int, tmp_path: Path) -> None:
    assert derive.derive_vehicle is not reference.derive_vehicle
    with fleet_engine(kind, tmp_path) as engine:
        tenant = "acme"
        first = registry.add_vehicle(engine, vin(0), "kaiyun_pickman", tenant=tenant)
        tid = registry.tenant_id(engine, tenant)
        dq.add_geofence(engine, tid, square("school", 29.99, 30.002, speed_limit_kmh=30))
        dq.add_geofence(engine, tid, circle("depot", 30.004, 150.0))
        seen = {"n": 1, "trips": 0, "rederived": 0, "late": 0}
        assert first.vehicle

        @settings(
            max_examples=examples,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(case=CASE)
        def check(case: dict[str, Any]) -> None:
            made = []
            for _ in range(2):
                seen["n"] += 1
                made.append(registry.add_vehicle(engine, vin(seen["n"]), "kaiyun_pickman", tenant=tenant))
            old = _run(engine, made[0].vehicle, case, reference.derive_vehicle)
            new = _run(engine, made[1].vehicle, case, derive.derive_vehicle)
            assert new == old
            ids = [ref.id for m in made if (ref := Store(engine).vehicle(m.vehicle)) is not None]
            want, got = _derived(engine, ids[0]), _derived(engine, ids[1])
            assert got == want
            seen["trips"] += len(got["trips"])
            seen["rederived"] += old["rederived"]
            seen["late"] += sum(1 for a in got["alerts"] if a["late"])

        check()
        # the draws did cover what the pass does: trips, re-derivations, late alerts
        assert (seen["n"] - 1) // 2 >= examples, seen  # every example ran (a vehicle pair each)
        assert seen["trips"] > 0 and seen["rederived"] > 0 and seen["late"] > 0, seen


def test_the_reference_is_a_separate_copy() -> None:
    """The reference module is its own code (not the pass under test re-exported)."""
    assert dataclasses.is_dataclass(reference.Derived) and reference.Derived is not derive.Derived
    assert reference._write is not derive._write
