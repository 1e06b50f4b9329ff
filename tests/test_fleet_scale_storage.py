"""Storage at scale on real PostgreSQL and SQLite: day partitions made ahead (and rows that went
to the default partition moved into their day), retention per tenant (old partitions dropped
whole, shorter retentions deleted row-wise; events and dead letters under it too), the dedup table pruned under a gapless floor with
resends still refused, and the maintenance component logging a failed round and carrying on."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from anycar.fleet import db, partitions, queries, registry, retention
from anycar.fleet.db import make_engine
from anycar.fleet.maintenance import Maintenance
from anycar.fleet.store import Accepted, DeadLetter, Store
from anycar.wire import Origin, decode, encode, messages
from fleet_support import eventually, fleet_engine, vin

DAY = 86_400.0
LAT, LON = "Vehicle.CurrentLocation.Latitude", "Vehicle.CurrentLocation.Longitude"


def _doc(origin: Origin, seq: int, t: float) -> dict:
    doc = messages.telemetry(
        origin, seq, [(LAT, t, 48.0), (LON, t, 11.0)], campaign="c", version=1, prio=5, ts=t
    )
    return decode(encode(doc))


def _count(engine, table, where: str = "") -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table} {where}")).scalar())


def _two_tenants(engine, now: float) -> tuple[str, str, Store]:
    """A vehicle of tenant "short" and one of "long", and the day partitions of the 20 days to ``now``."""
    short = registry.add_vehicle(engine, vin(1), "kaiyun_pickman", tenant="short").vehicle
    long_ = registry.add_vehicle(engine, vin(2), "kaiyun_pickman", tenant="long").vehicle
    partitions.ensure_days(engine, now - 20 * DAY, now)
    return short, long_, Store(engine)


def test_day_partitions_made_ahead_and_default_rows_moved(tmp_path: Path) -> None:
    with fleet_engine("postgres", tmp_path) as engine:
        with engine.connect() as conn:
            kinds = dict(
                conn.execute(
                    text(
                        "SELECT relname, relkind FROM pg_class WHERE relname IN "
                        "('positions', 'signal_batches', 'signal_values', 'positions_before')"
                    )
                ).all()
            )
        assert kinds == {
            "positions": "p",
            "signal_batches": "p",
            "signal_values": "v",
            "positions_before": "r",
        }
        base = partitions.day_start(1_900_000_000.0)  # 2030: after the migration's day
        car = registry.add_vehicle(engine, vin(1), "kaiyun_pickman").vehicle
        store = Store(engine)
        ref = store.vehicle(car)
        origin = Origin(car, "00000000000000aa")
        # no day partition yet: the rows go to the default partition
        store.commit([Accepted(ref, _doc(origin, i + 1, base + 3600 * i)) for i in range(30)])
        assert _count(engine, "positions_default") == 30
        made = partitions.ensure_days(engine, base, base + 2 * DAY)
        assert set(made) >= {"positions_p20300317", "signal_batches_p20300319"}, made
        assert _count(engine, "positions_default") == 0
        assert _count(engine, "positions_p20300317") == 24 and _count(engine, "positions_p20300318") == 6
        assert _count(engine, "positions") == 30 and _count(engine, "signal_values") == 60
        assert partitions.ensure_days(engine, base, base + 2 * DAY) == []  # idempotent
        # one vehicle's day reads one partition through its (vehicle_id, ts) index
        with engine.connect() as conn:
            conn.execute(text("SET enable_seqscan = off"))
            plan = "\n".join(
                r[0]
                for r in conn.execute(
                    text("EXPLAIN SELECT * FROM positions WHERE vehicle_id = :v AND ts >= :a AND ts < :b"),
                    {"v": ref.id, "a": base, "b": base + DAY},
                )
            )
        assert "positions_p20300317" in plan and "positions_p20300318" not in plan, plan
        assert "ix_" in plan or "Index" in plan, plan


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_retention_per_tenant(kind: str, tmp_path: Path) -> None:
    with fleet_engine(kind, tmp_path) as engine:
        now = partitions.day_start(1_900_000_000.0) + 12 * 3600
        short, long_, store = _two_tenants(engine, now)
        for car in (short, long_):
            ref = store.vehicle(car)
            origin = Origin(car, "00000000000000bb")
            store.commit([Accepted(ref, _doc(origin, d + 1, now - d * DAY)) for d in range(20)])
        assert _count(engine, "positions") == 40
        registry.tenant_id(engine, "default", create=True)
        tids = {n: registry.tenant_id(engine, n) for n in ("short", "long", "default")}
        retention.set_days(engine, tids["short"], 3)
        retention.set_days(engine, tids["long"], 10)
        # one tenant without a setting keeps everything: no partition may be dropped
        out = retention.apply(engine, now)
        assert out["dropped"] == [] and _count(engine, "positions") == 4 + 11
        retention.set_days(engine, tids["default"], 5)
        out = retention.apply(engine, now)
        if kind == "postgres":  # the days older than the longest retention went as whole partitions
            assert any(n.startswith("positions_p") for n in out["dropped"]) and len(out["dropped"]) >= 18
        with engine.connect() as conn:
            kept = {
                r.wire_id: r.n
                for r in conn.execute(
                    select(db.vehicles.c.wire_id, func.count().label("n"))
                    .join(db.positions, db.positions.c.vehicle_id == db.vehicles.c.id)
                    .group_by(db.vehicles.c.wire_id)
                )
            }
        assert kept == {short: 4, long_: 11}  # days 0..3 and 0..10
        with pytest.raises(retention.RetentionError):
            retention.set_days(engine, tids["short"], -1)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_retention_takes_events_and_dead_letters_per_tenant(kind: str, tmp_path: Path) -> None:
    with fleet_engine(kind, tmp_path) as engine:
        now = partitions.day_start(1_900_000_000.0) + 12 * 3600
        short, long_, store = _two_tenants(engine, now)
        for car in (short, long_):
            ref = store.vehicle(car)
            assert ref is not None
            origin = Origin(car, "00000000000000cc")
            # one event a day for 20 days, as the hub sends them; one dead letter a day naming the car
            docs = [
                decode(
                    encode(
                        messages.events(
                            origin,
                            d + 1,
                            [{"type": "low_soc", "ts": now - d * DAY, "position": None}],
                            prio=1,
                            ts=now - d * DAY,
                        )
                    )
                )
                for d in range(20)
            ]
            dead = [
                DeadLetter(
                    f"anycar/v1/{car}/telemetry", "schema", "bad", b"x", ref.id, received=now - d * DAY
                )
                for d in range(20)
            ]
            store.commit([Accepted(ref, doc) for doc in docs], dead)
        # dead letters for no known vehicle, one a day
        store.commit(
            [],
            [
                DeadLetter("anycar/v1/NOPE/telemetry", "unknown_vehicle", "?", b"y", received=now - d * DAY)
                for d in range(20)
            ],
        )
        assert _count(engine, "events") == 40 and _count(engine, "dead_letters") == 60
        tids = {n: registry.tenant_id(engine, n) for n in ("short", "long")}
        retention.set_days(engine, tids["short"], 3)
        out = retention.apply(engine, now)  # "long" keeps everything: so do the letters of no tenant
        assert (
            _count(engine, "events") == 4 + 20
            and _count(engine, "dead_letters", "WHERE vehicle_id IS NULL") == 20
        )
        retention.set_days(engine, tids["long"], 10)
        out = retention.apply(engine, now)
        with engine.connect() as conn:
            events_kept = {
                r.wire_id: r.n
                for r in conn.execute(
                    select(db.vehicles.c.wire_id, func.count().label("n"))
                    .join(db.events, db.events.c.vehicle_id == db.vehicles.c.id)
                    .group_by(db.vehicles.c.wire_id)
                )
            }
            letters_kept = {
                r.wire_id: r.n
                for r in conn.execute(
                    select(db.vehicles.c.wire_id, func.count().label("n"))
                    .select_from(db.dead_letters)
                    .outerjoin(db.vehicles, db.vehicles.c.id == db.dead_letters.c.vehicle_id)
                    .group_by(db.vehicles.c.wire_id)
                )
            }
        assert events_kept == {short: 4, long_: 11}  # days 0..3 and 0..10
        assert letters_kept == {short: 4, long_: 11, None: 11}  # no tenant's: the longest retention
        assert out["deleted"] >= 9 + 9 + 9  # this round: long's events and letters, the orphans
        # what is left is what the API and the command line still show
        assert {r["vehicle"] for r in queries.dead_letters(engine, None, limit=1000)} == {short, long_, None}
        assert len(queries.events(engine, tids["short"], limit=1000)) == 4


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_dedup_table_pruned_under_a_gapless_floor(kind: str, tmp_path: Path) -> None:
    # the prune's clock near the commits' (SQLite's marks move with each commit, at its time)
    now = time.time()
    with fleet_engine(kind, tmp_path) as engine:
        car = registry.add_vehicle(engine, vin(1), "kaiyun_pickman").vehicle
        store = Store(engine)
        ref = store.vehicle(car)
        origin = Origin(car, "00000000000000cc")
        t = 1_767_225_600.0
        docs = {i: _doc(origin, i, t + i) for i in range(1, 101)}
        store.commit([Accepted(ref, docs[i]) for i in range(1, 101) if i != 60])  # 60 is late
        out = retention.prune_received(engine, now + 1000.0)
        assert retention.received_count(engine) == 40  # 61..100 wait above the gap
        assert retention.seen_count(engine) == 99
        # PostgreSQL's prune moves the floor; SQLite's commit moved its mark already
        assert out["floors_moved"] == (1 if kind == "postgres" else 0)
        again = store.commit([Accepted(ref, docs[i]) for i in (1, 30, 59)])  # resends under the floor
        assert (again.messages, again.duplicates) == (0, 3)
        late = store.commit([Accepted(ref, docs[60]), Accepted(ref, docs[61])])
        assert (late.messages, late.duplicates) == (1, 1)
        retention.prune_received(engine, now + 2000.0)
        assert retention.received_count(engine) == 0
        floor = db.received_floor.c.floor if kind == "postgres" else db.received_marks.c.hwm
        with engine.connect() as conn:
            assert conn.execute(select(floor)).scalar() == 100
        # a gap that never fills is given up after give_up_s; a boot idle for forget_s is forgotten
        store.commit([Accepted(ref, _doc(origin, 105, t + 105))])
        retention.prune_received(engine, now + 3000.0, give_up_s=10_000)
        assert retention.received_count(engine) == 1
        out = retention.prune_received(engine, now + 20_000.0, give_up_s=10_000)
        assert out["gaps_given_up"] == 1 and retention.received_count(engine) == 0
        assert store.commit([Accepted(ref, _doc(origin, 103, t))]).duplicates == 1  # the cost
        out = retention.prune_received(engine, now + 20_000.0 + retention.FORGET_S + 1)
        assert out["forgotten"] == 1
        assert _count(engine, "positions") == 101


async def test_maintenance_logs_a_failed_round_and_goes_on(tmp_path: Path, caplog) -> None:
    with fleet_engine("postgres", tmp_path) as engine:
        with engine.connect() as conn:  # the day the migration cut the history at (its "today")
            cut = next(p.end for p in partitions.partitions(conn, "positions") if p.start is None and p.end)
        # The rounds live on that day's noon, not the wall clock's: a run straddling 00:00 UTC
        # would otherwise make tomorrow's partitions as well as today's.
        m = Maintenance(engine, interval_s=3600, retry_s=0.1, clock=lambda: cut + DAY / 2)
        real = m.run_once
        calls = {"n": 0}

        def flaky() -> dict:
            calls["n"] += 1
            if calls["n"] == 1:  # a real failure: a table the round needs is gone for a moment
                with engine.begin() as conn:
                    conn.execute(text("ALTER TABLE received_floor RENAME TO received_floor_away"))
                try:
                    return real()
                finally:
                    with engine.begin() as conn:
                        conn.execute(text("ALTER TABLE received_floor_away RENAME TO received_floor"))
            return real()

        m.run_once = flaky  # type: ignore[method-assign]
        with caplog.at_level(logging.ERROR, logger="anycar.fleet.maintenance"):
            await m.start()
            try:
                await eventually(lambda: m.stats.rounds >= 1, timeout=60, what="a good round")
                assert m.stats.failures == 1 and "received_floor" in m.stats.last_error
                assert any("round failed" in r.message for r in caplog.records)
                with engine.connect() as conn:  # today and the days ahead have their partitions
                    days = [p.name for p in partitions.partitions(conn, "positions")]
                ahead = [partitions.day_name("positions", cut + i * DAY) for i in range(4)]
                assert [n for n in days if n.startswith("positions_p")] == ahead, days  # today + 3 ahead
                # the task itself ended from outside (not by stop()): logged and started again
                first = m._task
                assert first is not None
                first.cancel()
                await eventually(lambda: m._task is not first and m.status()["running"], timeout=10)
                assert m.stats.restarts == 1
            finally:
                await m.stop()
        assert not m.status()["running"]


def test_cli_retention_and_maintain(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'fleet.sqlite3'}"

    def fleet(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [sys.executable, "-m", "anycar.cli.main", "fleet", *args, "--db", url],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (out.returncode == 0) is ok, out.stderr
        return out

    fleet("tenant", "add", "acme")
    assert "kept 30 days" in fleet("tenant", "retention", "acme", "--days", "30").stdout
    err = fleet("tenant", "retention", "acme", "--days", "-3", ok=False).stderr
    assert "days must be in" in err and "Traceback" not in err
    engine = make_engine(url)
    try:
        assert retention.settings(engine)[registry.tenant_id(engine, "acme")] == 30.0
    finally:
        engine.dispose()
    doc = json.loads(fleet("db", "maintain", "--json").stdout)
    assert doc["received"]["deleted"] == 0 and doc["partitions_made"] == []  # SQLite: no partitions
