"""The product's report reads distance, fixes and max speed from the daily rollup
(``position_days``): on the same data it gives the numbers the trips give and the numbers the
query over raw positions gives, per vehicle and day, on real SQLite and PostgreSQL, with some
batches arriving late (the rollup's recompute path); and where the two definitions part (a
parked tracker's GPS drift, which trips leave out) the report says both."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from anycar.fleet import daily, registry, reports
from anycar.fleet.domain import DomainPipeline
from anycar.fleet.domain_tables import stops, trips
from anycar.fleet.store import Accepted, Store
from fleet_domain_support import M_PER_DEG, T0, Drive
from fleet_support import fleet_engine, vin


def _seed(engine) -> tuple[int, dict[str, int]]:
    store = Store(engine)
    domain = DomainPipeline(store)
    plans = {
        "PM-A": [(T0 + 8 * 3600, [(300, 0), (600, 36), (300, 0), (300, 54), (300, 0)])],
        "PM-B": [
            (T0 + 9 * 3600, [(300, 0), (1200, 30), (300, 0)]),
            (T0 + 86_400 + 9 * 3600, [(300, 0), (600, 30), (300, 0), (900, 45), (300, 0)]),
        ],
        "PM-C": [(T0 + 86_400 + 6 * 3600, [(120, 0), (1500, 25), (600, 0)])],
    }
    ids = {}
    rng = random.Random(3)  # nosec B311
    for i, (wire, days) in enumerate(plans.items()):
        creds = registry.add_vehicle(engine, vin(i + 1), "kaiyun_pickman", tenant="acme", wire_id=wire)
        ref = store.vehicle(creds.vehicle)
        assert ref is not None
        ids[wire] = ref.id
        for start, legs in days:
            drive = Drive(creds.vehicle, t=start, boot=f"{int(start):016x}", lon=120.0 + i / 100)
            for seconds, kmh in legs:
                drive.leg(seconds, kmh)
            docs = drive.batches(per_batch=20)
            for j in range(0, len(docs) - 1, 5):  # every fifth pair of batches swapped: late data
                if rng.random() < 0.5:
                    docs[j], docs[j + 1] = docs[j + 1], docs[j]
            for doc in docs:
                store.commit([Accepted(ref, doc)])
                domain.run_pending()
    return registry.tenant_id(engine, "acme"), ids


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_the_report_from_the_rollup_gives_the_trips_and_the_positions_numbers(
    kind: str, tmp_path: Path
) -> None:
    with fleet_engine(kind, tmp_path) as engine:
        tid, ids = _seed(engine)
        compared = 0
        for day in ("2026-12-01", "2026-12-02"):
            p = reports.period(day=day)
            report = {r["vehicle"]: r for r in reports.fleet_report(engine, tid, p)["vehicles"]}
            with engine.connect() as conn:
                raw = {
                    r.vehicle_id: r
                    for r in conn.execute(text(daily.FROM_POSITIONS), {"a": p["start"], "b": p["end"]})
                }
                by_trips = {
                    r.vehicle_id: r
                    for r in conn.execute(
                        select(
                            trips.c.vehicle_id,
                            func.sum(trips.c.distance_m).label("m"),
                            func.max(trips.c.max_speed).label("v"),
                        )
                        .where(trips.c.start_ts >= p["start"], trips.c.start_ts < p["end"])
                        .group_by(trips.c.vehicle_id)
                    )
                }
            for wire, vid in ids.items():
                row = report[wire]
                if vid not in raw:
                    assert (row["distance_km"], row["fixes"], row["max_speed_kmh"], row["trips"]) == (
                        0.0,
                        0,
                        None,
                        0,
                    )
                    continue
                compared += 1
                assert row["fixes"] == raw[vid].fixes
                assert row["distance_km"] == round(raw[vid].km, 3)
                assert row["max_speed_kmh"] == raw[vid].max_speed
                # the trips' figures: the same drive, the same numbers
                assert row["distance_km"] == pytest.approx(by_trips[vid].m / 1000, abs=0.0015)
                assert row["distance_km"] == row["trip_distance_km"]
                assert row["max_speed_kmh"] == by_trips[vid].v
        assert compared == 4
        # stops, summed in SQL, against the stored rows (PM-B's Dec 2 begins inside the stop it
        # was in since Dec 1; the one open at the end runs until now, clipped to the day)
        with engine.connect() as conn:
            rows = conn.execute(select(stops.c.vehicle_id, stops.c.start_ts, stops.c.end_ts)).all()
        for day in ("2026-12-01", "2026-12-02"):
            p = reports.period(day=day)
            now = time.time()
            report = {r["vehicle"]: r for r in reports.fleet_report(engine, tid, p)["vehicles"]}
            for wire, vid in ids.items():
                mine = [
                    r
                    for r in rows
                    if r.vehicle_id == vid
                    and r.start_ts < p["end"]
                    and (r.end_ts is None or r.end_ts > p["start"])
                ]
                began = sum(1 for r in mine if r.start_ts >= p["start"])
                stopped = sum(
                    max(
                        0.0,
                        min(r.end_ts if r.end_ts is not None else now, p["end"])
                        - max(r.start_ts, p["start"]),
                    )
                    for r in mine
                )
                assert report[wire]["stops"] == began, (day, wire)
                assert report[wire]["stop_s"] == pytest.approx(round(stopped), abs=2), (day, wire)
        spanning = [
            r for r in rows if r.vehicle_id == ids["PM-B"] and r.start_ts < T0 + 86_400 < (r.end_ts or 1e12)
        ]
        assert spanning  # the case is in the data
        week = reports.fleet_report(engine, tid, reports.period(week="2026-W49"))
        b = next(r for r in week["vehicles"] if r["vehicle"] == "PM-B")
        assert b["distance_km"] == pytest.approx(10 + 5 + 11.25, abs=0.002) and b["trips"] == 3
        assert "fixes" in reports.to_csv(week).splitlines()[0]


@pytest.mark.parametrize("kind", ["sqlite"])
def test_a_parked_trackers_drift_counts_in_distance_not_in_trips(kind: str, tmp_path: Path) -> None:
    with fleet_engine(kind, tmp_path) as engine:
        store = Store(engine)
        domain = DomainPipeline(store)
        creds = registry.add_vehicle(engine, vin(9), "kaiyun_pickman", tenant="acme", wire_id="PARKED")
        ref = store.vehicle(creds.vehicle)
        drive = Drive(creds.vehicle, t=T0 + 3600)
        drive.leg(1800, 0)
        rng = random.Random(5)  # nosec B311
        drive.rows = [  # the fix wanders 0-8 m around where it stands
            (
                t,
                {
                    **v,
                    "Vehicle.CurrentLocation.Latitude": v["Vehicle.CurrentLocation.Latitude"]
                    + rng.uniform(-4, 4) / M_PER_DEG,
                },
            )
            for t, v in drive.rows
        ]
        for doc in drive.batches(per_batch=20):
            store.commit([Accepted(ref, doc)])
            domain.run_pending()
        (row,) = reports.fleet_report(engine, ref.tenant_id, reports.period(day="2026-12-01"))["vehicles"]
        assert row["trips"] == 0 and row["trip_distance_km"] == 0.0
        assert 0.3 < row["distance_km"] < 1.0 and row["fixes"] == 180
