"""Trips and stops derived from real wire messages committed to real SQLite and PostgreSQL:
distance, duration, energy, max speed; the same answer whether the batches come in order, one
by one, or shuffled (late data re-derives its window); ignition off ends a trip; GPS drift is no
trip; an OsmAnd tracker (positions only) gets trips too; trips.yaml errors name the field."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from sqlalchemy import select

from anycar.fleet import registry
from anycar.fleet.domain import DomainPipeline
from anycar.fleet.domain_tables import stops, trips
from anycar.fleet.store import Accepted, Store
from anycar.fleet.trips import TripConfigError, load_trip_config
from fleet_domain_support import T0, Drive
from fleet_support import fleet_engine, vin


def _rows(engine, table, vehicle_id):
    with engine.connect() as conn:
        q = select(table).where(table.c.vehicle_id == vehicle_id).order_by(table.c.start_ts)
        return [dict(r._mapping) for r in conn.execute(q)]


def _summary(engine, vehicle_id):
    ts = [
        (
            r["start_ts"] - T0,
            r["end_ts"] - T0,
            round(r["distance_m"]),
            r["max_speed"],
            r["energy_kwh"],
            r["open"],
        )
        for r in _rows(engine, trips, vehicle_id)
    ]
    ss = [
        (r["start_ts"] - T0, None if r["end_ts"] is None else r["end_ts"] - T0, r["open"])
        for r in _rows(engine, stops, vehicle_id)
    ]
    return ts, ss


def _day(drive: Drive) -> Drive:
    # parked 5 min, 10 min at 36 km/h (6 km), a 1 min red light, 4 min at 36, parked 5 min, 5 min at 54, off
    return (
        drive.leg(300, 0)
        .leg(600, 36)
        .leg(60, 0)
        .leg(240, 36)
        .leg(300, 0)
        .leg(300, 54)
        .leg(200, 0, ignition="OFF")
    )


EXPECTED_TRIPS = [
    (300.0, 1200.0, 8400, 36.0, 0.84, False),  # the red light (60 s < min_stop_s) is no stop
    (1500.0, 1800.0, 4500, 54.0, 0.45, False),  # ignition off ends it at once
]
EXPECTED_STOPS = [(0.0, 300.0, False), (1200.0, 1500.0, False), (1800.0, None, True)]


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_trips_in_order_and_shuffled_give_the_same_answer(kind: str, tmp_path: Path) -> None:
    with fleet_engine(kind, tmp_path) as engine:
        store = Store(engine)
        domain = DomainPipeline(store)
        results = []
        for order in ("in order", "shuffled"):
            creds = registry.add_vehicle(engine, vin(1), "kaiyun_pickman", tenant="acme")
            ref = store.vehicle(creds.vehicle)
            assert ref is not None
            batches = _day(Drive(creds.vehicle)).batches(per_batch=6)
            if order == "shuffled":
                random.Random(7).shuffle(batches)
            for doc in batches:
                store.commit([Accepted(ref, doc)])
                domain.run_pending()
            results.append(_summary(engine, ref.id))
        (trips_in_order, stops_in_order), (trips_shuffled, stops_shuffled) = results
        got = [(a, b, d, m, round(e, 2), o) for a, b, d, m, e, o in trips_in_order]
        assert got == EXPECTED_TRIPS
        assert stops_in_order == EXPECTED_STOPS
        assert [(a, b, d, m, round(e, 2), o) for a, b, d, m, e, o in trips_shuffled] == EXPECTED_TRIPS
        assert stops_shuffled == EXPECTED_STOPS
        assert domain.stats.rederived > 0 and domain.stats.errors == 0


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_open_trip_drift_and_one_big_batch(kind: str, tmp_path: Path) -> None:
    with fleet_engine(kind, tmp_path) as engine:
        store = Store(engine)
        domain = DomainPipeline(store)
        creds = registry.add_vehicle(engine, vin(1), "kaiyun_pickman", tenant="acme")
        ref = store.vehicle(creds.vehicle)
        assert ref is not None
        # GPS drift (20 s at 5 km/h = 28 m < min_distance_m), then a trip still under way
        drive = Drive(creds.vehicle).leg(300, 0).leg(20, 5).leg(300, 0).leg(300, 30)
        store.commit([Accepted(ref, d) for d in drive.batches(per_batch=1000)])
        domain.run_pending()
        (trip,) = _rows(engine, trips, ref.id)
        assert trip["open"] is True and trip["start_ts"] == T0 + 620 and trip["end_ts"] == T0 + 910
        assert round(trip["distance_m"]) == 2500  # (300 s at 30 km/h, the first step from rest)
        (stop,) = _rows(engine, stops, ref.id)
        assert (stop["start_ts"], stop["end_ts"]) == (T0, T0 + 620)  # the drift did not cut the stop
        # the trip closes as data arrives: it ends when the vehicle stopped
        drive.rows.clear()
        drive.leg(200, 0)
        store.commit([Accepted(ref, d) for d in drive.batches()])
        domain.run_pending()
        (trip,) = _rows(engine, trips, ref.id)
        assert trip["open"] is False and trip["end_ts"] == T0 + 920
        assert [s["open"] for s in _rows(engine, stops, ref.id)] == [False, True]


def test_a_tracker_without_hub_gets_trips_from_its_positions(tmp_path: Path) -> None:
    with fleet_engine("sqlite", tmp_path) as engine:
        store = Store(engine)
        domain = DomainPipeline(store)
        creds = registry.add_vehicle(engine, vin(3), "generic", tenant="acme", tracker=True)
        ref = store.vehicle(creds.vehicle)
        assert ref is not None
        fixes = []
        lat = 30.0
        for i in range(120):  # 20 min: 5 parked, 10 at 18 km/h, 5 parked; one fix every 10 s
            speed = 18.0 if 30 <= i < 90 else 0.0
            lat += speed / 3.6 * 10 / 111_195.0
            fixes.append(
                {
                    "kind": "position",
                    "ts": T0 + 10 * i,
                    "lat": lat,
                    "lon": 120.0,
                    "speed": speed,
                    "heading": 0.0,
                }
            )
        store.commit([Accepted(ref, f) for f in fixes])
        domain.run_pending()
        (trip,) = _rows(engine, trips, ref.id)
        assert (trip["start_ts"], trip["end_ts"], round(trip["distance_m"])) == (T0 + 300, T0 + 900, 3000)
        assert trip["energy_kwh"] is None  # no battery signals from a phone


def test_trip_config_errors_name_the_field(tmp_path: Path) -> None:
    cfg = load_trip_config()
    assert cfg.min_stop_s == 120 and cfg.pack("kaiyun_pickman") == 15.0 and cfg.pack("unknown") == 50.0
    bad = tmp_path / "trips.yaml"
    for text, message in (
        ("trip: {min_stop_s: -1}", "trip.min_stop_s: a number >= 0"),
        ("trip: {min_stop: 1}", "trip.min_stop: unknown key"),
        ("signals: {speed: 3}", "signals.speed: a VSS path"),
        ("pack_kwh: {x: 0}", "pack_kwh: brand profile -> kWh"),
        ("extra: 1", "unknown key(s) ['extra']"),
        ("trip: {start_kmh: 1, stop_kmh: 2}", "trip.stop_kmh (2.0) above trip.start_kmh"),
    ):
        bad.write_text(text)
        with pytest.raises(TripConfigError, match=None) as info:
            load_trip_config(bad)
        assert message in str(info.value) and str(bad) in str(info.value)


def test_rederive_after_trips_yaml_changed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`anycar fleet rederive --trips FILE`: with min_stop_s 30 the red light becomes a stop."""
    import os
    import subprocess
    import sys

    from anycar.fleet import domain_queries as dq

    with fleet_engine("sqlite", tmp_path) as engine:
        store = Store(engine)
        domain = DomainPipeline(store)
        creds = registry.add_vehicle(engine, vin(1), "kaiyun_pickman", tenant="acme", wire_id="PM-R")
        ref = store.vehicle(creds.vehicle)
        assert ref is not None
        drive = Drive(creds.vehicle, soc=15.5, wh_per_km=300)
        for doc in _day(drive).batches():
            store.commit([Accepted(ref, doc)])
            domain.run_pending()
        alerts_before = dq.alert_list(engine, ref.tenant_id)
        assert len(_rows(engine, trips, ref.id)) == 2 and [a["type"] for a in alerts_before] == ["low_soc"]
        tuned = tmp_path / "trips.yaml"
        tuned.write_text("trip: {min_stop_s: 30}\n")
        anycar = str(Path(sys.executable).parent / "anycar")
        env = dict(os.environ, ANYCAR_FLEET_DB=str(tmp_path / "fleet.sqlite3"))
        done = subprocess.run(
            [anycar, "fleet", "rederive", "--tenant", "acme", "--trips", str(tuned)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0 and "for 1 vehicle(s) of acme" in done.stdout, done.stderr
        got = [(r["start_ts"] - T0, r["end_ts"] - T0) for r in _rows(engine, trips, ref.id)]
        assert got == [(300.0, 900.0), (960.0, 1200.0), (1500.0, 1800.0)]
        assert dq.alert_list(engine, ref.tenant_id) == alerts_before  # not raised again
        from anycar.cli.main import main  # the same command in-process, for the refusals

        for argv, message in (
            (["--vehicle", "nope"], "--vehicle 'nope': no such vehicle"),
            (["--trips", str(tmp_path / "missing.yaml")], "No such file"),
        ):
            db_url = f"sqlite:///{env['ANYCAR_FLEET_DB']}"
            assert main(["fleet", "rederive", "--tenant", "acme", "--db", db_url, *argv]) != 0
            assert message in capsys.readouterr().err


def test_two_processes_deriving_one_vehicle_on_postgres(tmp_path: Path) -> None:
    """Two stores and runners on their own engines (as two ``anycar fleet serve`` processes),
    committing one vehicle's batches alternately and deriving at the same time: the cursor row's
    lock serialises them, so the trips come out once and right."""
    import threading

    from anycar.fleet.db import make_engine

    with fleet_engine("postgres", tmp_path) as engine:
        other = make_engine(engine.url.render_as_string(hide_password=False))
        try:
            stores = [Store(engine), Store(other)]
            runners = [DomainPipeline(s) for s in stores]
            creds = registry.add_vehicle(engine, vin(1), "kaiyun_pickman", tenant="acme")
            refs = [s.vehicle(creds.vehicle) for s in stores]
            batches = _day(Drive(creds.vehicle)).batches(per_batch=4)
            errors: list[BaseException] = []

            def work(i: int) -> None:
                try:
                    for n, doc in enumerate(batches):
                        if n % 2 == i:
                            stores[i].commit([Accepted(refs[i], doc)])
                        runners[i].run_pending()
                    runners[i].run_pending()
                except BaseException as exc:  # reported below
                    errors.append(exc)

            threads = [threading.Thread(target=work, args=(i,)) for i in (0, 1)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            assert not errors
            got, stops_ = _summary(engine, refs[0].id)
            assert [(a, b, d, m, round(e, 2), o) for a, b, d, m, e, o in got] == EXPECTED_TRIPS
            assert stops_ == EXPECTED_STOPS
            assert sum(r.stats.errors for r in runners) == 0
        finally:
            other.dispose()
