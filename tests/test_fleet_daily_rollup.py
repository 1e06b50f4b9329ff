"""The fleet daily report from the ingest's rollup (``position_days``) gives the numbers the query
over ``positions`` gives, on real SQLite and PostgreSQL, for data that arrives shuffled, late,
twice, with ties in time and across midnight."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from anycar.fleet import daily, registry
from anycar.fleet.store import Accepted, Store
from anycar.wire import Origin, decode, encode, messages
from fleet_support import fleet_engine, vin

KINDS = ["sqlite", "postgres"]
LAT, LON, SPEED = "Vehicle.CurrentLocation.Latitude", "Vehicle.CurrentLocation.Longitude", "Vehicle.Speed"
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DAY = 86_400


def _telemetry(origin: Origin, seq: int, t: float, lat: float, lon: float, speed: float) -> dict[str, Any]:
    doc = messages.telemetry(
        origin, seq, [(LAT, t, lat), (LON, t, lon), (SPEED, t, speed)], campaign="c", version=1, prio=5, ts=t
    )
    return decode(encode(doc))  # exactly what a hub sends


def _fix(t: float, lat: float, lon: float, speed: float | None) -> dict[str, Any]:
    return {"kind": "position", "ts": t, "lat": lat, "lon": lon, "speed": speed, "heading": None}


def _report(engine: Engine, day: int) -> tuple[list[Any], list[Any]]:
    with engine.connect() as conn:
        old = conn.execute(text(daily.FROM_POSITIONS), {"a": day * DAY, "b": (day + 1) * DAY}).all()
        new = conn.execute(text(daily.FROM_ROLLUP), {"d": day}).all()
    return [tuple(r) for r in old], [tuple(r) for r in new]


def _same(old: list[Any], new: list[Any]) -> None:
    assert [r[:5] for r in new] == [r[:5] for r in old]  # vehicle, fixes, first, last, max speed
    for a, b in zip(old, new, strict=True):
        assert b[5] == pytest.approx(a[5], rel=1e-12, abs=1e-9), (a, b)  # km: summation order


@pytest.mark.parametrize("kind", KINDS)
def test_rollup_equals_the_query_on_shuffled_late_duplicate_data(kind: str, tmp_path: Path) -> None:
    rnd = random.Random(14)
    with fleet_engine(kind, tmp_path) as engine:
        store = Store(engine)
        refs = []
        for n in range(4):
            creds = registry.add_vehicle(engine, vin(n), "kaiyun_pickman", tenant="acme")
            ref = store.vehicle(creds.vehicle)
            assert ref is not None
            refs.append((ref, Origin(creds.vehicle, f"{n:016x}")))
        messages_: list[Accepted] = []
        for ref, origin in refs:
            lat, lon = 48.1 + rnd.random() / 100, 11.5 + rnd.random() / 100
            t = T0 + DAY - 3600  # an hour before midnight: the drive crosses into day 2
            for seq in range(1, 121):
                t += rnd.choice((30.0, 60.0, 90.0))
                lat += rnd.uniform(-0.002, 0.002)
                lon += rnd.uniform(-0.002, 0.002)
                messages_.append(Accepted(ref, _telemetry(origin, seq, t, lat, lon, rnd.uniform(0, 80))))
                if seq % 17 == 0:  # a tracker's fix at the very same time, elsewhere: a tie in ts
                    messages_.append(Accepted(ref, _fix(t, lat + 0.001, lon, None)))
        late = messages_[::7]  # every 7th arrives after everything else (a hub's spool, hours late)
        rest = [m for i, m in enumerate(messages_) if i % 7]
        rnd.shuffle(rest)
        resent = rnd.sample(messages_, 40)  # then 40 resent: a hub's are dropped by (boot, seq);
        again = sum(m.doc["kind"] == "position" for m in resent)  # a tracker's fix has no seq: stored twice
        order = rest + late + resent
        stored = 0
        for i in range(0, len(order), 13):
            stored += store.commit(order[i : i + 13]).messages
        assert stored == len(messages_) + again
        for day in (int(T0 // DAY), int(T0 // DAY) + 1):
            old, new = _report(engine, day)
            assert len(old) == 4
            _same(old, new)


@pytest.mark.parametrize("kind", KINDS)
def test_a_late_fix_between_two_others_changes_the_km_as_the_query_does(kind: str, tmp_path: Path) -> None:
    with fleet_engine(kind, tmp_path) as engine:
        store = Store(engine)
        creds = registry.add_vehicle(engine, vin(1), "kaiyun_pickman", tenant="acme")
        ref = store.vehicle(creds.vehicle)
        assert ref is not None
        day = int(T0 // DAY)
        store.commit(
            [
                Accepted(ref, _fix(T0 + 100, 48.10, 11.50, 10.0)),
                Accepted(ref, _fix(T0 + 300, 48.10, 11.52, 20.0)),
            ]
        )
        store.commit([Accepted(ref, _fix(T0 + 400, 48.10, 11.53, 5.0))])  # appended: the fast path
        old, new = _report(engine, day)
        _same(old, new)
        straight = new[0][5]
        assert straight == pytest.approx(2.228, abs=0.01)  # 3 km of longitude at 48.1° N ≈ 2.23 km
        # a fix at T0+200 lands between the first two, 1 km north: the detour is longer
        store.commit([Accepted(ref, _fix(T0 + 200, 48.11, 11.51, 70.0))])
        old, new = _report(engine, day)
        _same(old, new)
        assert new[0][1:5] == (4, T0 + 100, T0 + 400, 70.0)
        assert new[0][5] > straight + 1.0
        # and one before the first: the day starts earlier
        store.commit([Accepted(ref, _fix(T0 + 50, 48.09, 11.50, None))])
        old, new = _report(engine, day)
        _same(old, new)
        assert new[0][1:3] == (5, T0 + 50)


@pytest.mark.parametrize("kind", KINDS)
def test_rebuild_is_the_query(kind: str, tmp_path: Path) -> None:
    """The migration's backfill and the benchmark's fill: every day rebuilt from positions."""
    with fleet_engine(kind, tmp_path) as engine:
        store = Store(engine)
        store.position_handlers.clear()  # positions without a rollup, as before the migration
        creds = registry.add_vehicle(engine, vin(1), "kaiyun_pickman", tenant="acme")
        ref = store.vehicle(creds.vehicle)
        assert ref is not None
        rnd = random.Random(7)
        fixes = [
            Accepted(ref, _fix(T0 + rnd.uniform(0, 2 * DAY), 48 + rnd.random(), 11 + rnd.random(), 9.0))
            for _ in range(50)
        ]
        store.commit(fixes)
        day = int(T0 // DAY)
        assert _report(engine, day)[1] == []
        with engine.begin() as conn:
            daily.rebuild(conn, float("-inf"), float("inf"))
        for d in (day, day + 1):
            old, new = _report(engine, d)
            assert old
            _same(old, new)


def test_two_workers_on_the_same_vehicle_days_give_the_query_s_numbers(tmp_path: Path) -> None:
    """Two stores (two workers' shared subscription) commit the same vehicles' fixes at once, in
    shuffled batches on PostgreSQL: they take turns on each vehicle-day's row, none is lost."""
    import threading

    rnd = random.Random(3)
    with fleet_engine("postgres", tmp_path) as engine:
        stores = [Store(engine), Store(engine)]
        refs = []
        for n in range(3):
            creds = registry.add_vehicle(engine, vin(n), "kaiyun_pickman", tenant="acme")
            ref = stores[0].vehicle(creds.vehicle)
            assert ref is not None
            refs.append(ref)
        fixes = [
            Accepted(
                ref,
                _fix(
                    T0 + 3600 + i * 5 + rnd.random(),
                    48 + rnd.random() / 50,
                    11 + rnd.random() / 50,
                    float(i % 40),
                ),
            )
            for ref in refs
            for i in range(300)
        ]
        rnd.shuffle(fixes)
        halves = [fixes[0::2], fixes[1::2]]
        failed: list[BaseException] = []

        def work(store: Store, mine: list[Accepted]) -> None:
            try:
                for i in range(0, len(mine), 9):
                    store.commit(mine[i : i + 9])
            except BaseException as exc:  # reported by the assertion below
                failed.append(exc)

        threads = [threading.Thread(target=work, args=(s, h)) for s, h in zip(stores, halves, strict=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not failed
        old, new = _report(engine, int(T0 // DAY))
        assert [r[1] for r in old] == [300, 300, 300]
        _same(old, new)
