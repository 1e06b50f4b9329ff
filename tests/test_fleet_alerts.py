"""Geofences and alerts from real wire messages on real SQLite and PostgreSQL: GeoJSON in and
out (polygons with shapely, circles by distance), enter/exit per vehicle, the cloud rules (low
SoC with hysteresis, speeding per zone, cargo temperature, a door open while moving), hub
events turned into alerts, a tenant's override, and the supervised offline checker."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from anycar.fleet import domain_queries as dq
from anycar.fleet import offline, registry, rules
from anycar.fleet.domain import DomainPipeline
from anycar.fleet.geofences import GeofenceError, parse_feature
from anycar.fleet.store import Accepted, Store
from fleet_domain_support import CARGO, DOOR, M_PER_DEG, T0, Drive
from fleet_support import fleet_engine, vin


def square(name: str, lat0: float, lat1: float, **props) -> dict:
    ring = [[119.99, lat0], [120.01, lat0], [120.01, lat1], [119.99, lat1], [119.99, lat0]]
    return {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"name": name, **props},
    }


def circle(name: str, lat: float, radius_m: float) -> dict:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [120.0, lat]},
        "properties": {"name": name, "radius_m": radius_m},
    }


def test_geojson_checks_name_the_field() -> None:
    ok = parse_feature(square("depot", 30.0, 30.01, speed_limit_kmh=20, colour="red"))
    assert ok["kind"] == "polygon" and ok["speed_limit_kmh"] == 20 and ok["properties"] == {"colour": "red"}
    bow_tie = square("x", 30.0, 30.01)
    bow_tie["geometry"]["coordinates"][0][1:3] = [[120.01, 30.01], [120.01, 30.0]]
    for doc, message in (
        ([], "a GeoJSON Feature"),
        ({"type": "Feature", "geometry": None, "properties": {"name": "a"}}, "geometry: a Polygon"),
        ({**square("a", 30, 31), "properties": {}}, "properties.name"),
        (circle("c", 30.0, 0), "properties.radius_m: 0 is not in"),
        (
            {**circle("c", 30.0, 10), "geometry": {"type": "Point", "coordinates": [200, 1]}},
            "geometry.coordinates[0] (lon)",
        ),
        (
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [0, 0]]]},
                "properties": {"name": "a"},
            },
            "a closed ring of at least 4",
        ),
        (bow_tie, "not a valid polygon"),
        (square("a", 30, 31, speed_limit_kmh="fast"), "properties.speed_limit_kmh: a number"),
    ):
        with pytest.raises(GeofenceError) as info:
            parse_feature(doc)
        assert message in str(info.value), (message, str(info.value))


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_geofences_and_cloud_rules_raise_alerts_once(kind: str, tmp_path: Path) -> None:
    with fleet_engine(kind, tmp_path) as engine:
        store = Store(engine)
        domain = DomainPipeline(store)
        creds = registry.add_vehicle(engine, vin(1), "kaiyun_pickman", tenant="acme")
        ref = store.vehicle(creds.vehicle)
        assert ref is not None
        tid = ref.tenant_id
        # the vehicle drives north along lon 120.0 from lat 30.0 at 36 km/h: 1 km per 100 s
        school = dq.add_geofence(
            engine,
            tid,
            square("school", 30.0 + 2000 / M_PER_DEG, 30.0 + 3000 / M_PER_DEG, speed_limit_kmh=30),
        )
        depot = dq.add_geofence(engine, tid, circle("depot", 30.0, 500))
        rival_tid = registry.tenant_id(engine, "rival", create=True)
        dq.add_geofence(engine, rival_tid, square("rival zone", 29.0, 31.0))  # never seen by acme's vehicle
        drive = Drive(creds.vehicle, soc=17.0, wh_per_km=300)  # 2 %/km: below 15 % after 1 km
        drive.leg(60, 0).leg(400, 36, **{CARGO: 4.0, DOOR: False}).leg(100, 36, **{CARGO: 11.5, DOOR: True})
        drive.leg(100, 36, **{CARGO: 12.0, DOOR: True}).leg(200, 0, **{CARGO: 5.0, DOOR: False})
        hub = drive.events(
            [
                {"type": "harsh_braking", "ts": drive.t, "position": {"lat": drive.lat, "lon": 120.0}},
                {"type": "door_opened", "ts": drive.t, "subject": DOOR, "position": None},
            ]
        )
        for doc in [*drive.batches(per_batch=3), hub]:
            store.commit([Accepted(ref, doc)])
            domain.run_pending()
        fence_events = dq.geofence_event_list(engine, tid)
        got = sorted((e["geofence_name"], e["kind"], round(e["ts"] - T0)) for e in fence_events)
        # depot: inside at the start (enter at the first fix), out after 500 m; school: 2-3 km
        assert got == [
            ("depot", "enter", 0),
            ("depot", "exit", 110),
            ("school", "enter", 260),
            ("school", "exit", 360),
        ]
        alerts = {a["type"]: a for a in dq.alert_list(engine, tid)}
        assert set(alerts) == {
            "low_soc",
            "speeding",
            "cargo_temperature",
            "door_open_moving",
            "harsh_braking",
        }
        counts = {t: sum(1 for a in dq.alert_list(engine, tid) if a["type"] == t) for t in alerts}
        assert counts == {t: 1 for t in alerts}  # once per episode, not once per sample
        assert (
            alerts["speeding"]["data"]["zone"] == "school" and alerts["speeding"]["data"]["limit_kmh"] == 30
        )
        assert abs(alerts["speeding"]["ts"] - (T0 + 260)) < 1
        assert (
            alerts["cargo_temperature"]["severity"] == "critical"
            and alerts["cargo_temperature"]["data"]["value"] == 11.5
        )
        assert (
            alerts["harsh_braking"]["severity"] == "info"
            and alerts["harsh_braking"]["data"]["source"] == "hub"
        )
        assert alerts["low_soc"]["data"]["soc"] < 15
        assert dq.alert_list(engine, rival_tid) == [] and dq.geofence_event_list(engine, rival_tid) == []
        assert school["id"] != depot["id"]
        # acknowledging: once, by whom, with a note; another tenant cannot
        first = alerts["speeding"]["id"]
        assert dq.acknowledge(engine, rival_tid, first, "eve", None) is None
        acked = dq.acknowledge(engine, tid, first, "ann", "talked to the driver")
        assert acked is not None and acked["ack_by"] == "ann" and acked["ack_note"] == "talked to the driver"
        again = dq.acknowledge(engine, tid, first, "bob", "again")
        assert again is not None and again["ack_by"] == "ann"
        assert [a["id"] for a in dq.alert_list(engine, tid, state="acknowledged")] == [first]


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_tenant_override_changes_the_rules(kind: str, tmp_path: Path) -> None:
    with fleet_engine(kind, tmp_path) as engine:
        store = Store(engine)
        domain = DomainPipeline(store)
        creds = registry.add_vehicle(engine, vin(1), "kaiyun_pickman", tenant="acme")
        ref = store.vehicle(creds.vehicle)
        assert ref is not None
        effective = rules.set_override(
            engine,
            ref.tenant_id,
            {
                "speeding": {"default_limit_kmh": 25},
                "low_soc": {"enabled": False},
                "hub_events": {"harsh_braking": None},
            },
        )
        assert (
            effective["speeding"]["default_limit_kmh"] == 25
            and "harsh_braking" not in effective["hub_events"]
        )
        for bad, message in (
            ({"speeding": {"default_limit_kmh": "x"}}, "rules.speeding.default_limit_kmh: a number"),
            ({"nope": {}}, "rules.nope: unknown rule"),
            ({"low_soc": {"severity": "panic"}}, "rules.low_soc.severity: one of info, warning, critical"),
            ({"cargo_temperature": {"signals": "Vehicle.*"}}, "rules.cargo_temperature.signals: a list"),
            ({"low_soc": {"enabled": "yes"}}, "rules.low_soc.enabled: true or false"),
            ([], "rules: a JSON object"),
        ):
            with pytest.raises(rules.RulesError) as info:
                rules.set_override(engine, ref.tenant_id, bad)
            assert message in str(info.value)
        drive = Drive(creds.vehicle, soc=16.0, wh_per_km=300).leg(300, 36)
        hub = drive.events([{"type": "harsh_braking", "ts": drive.t, "position": None}])
        for doc in [*drive.batches(), hub]:
            store.commit([Accepted(ref, doc)])
        domain.run_pending()
        types = [a["type"] for a in dq.alert_list(engine, ref.tenant_id)]
        assert types == ["speeding"]  # 36 > 25 + 3, everywhere; no low SoC, no harsh braking
        rules.clear_override(engine, ref.tenant_id)
        with engine.connect() as conn:
            assert rules.effective(conn, ref.tenant_id) == rules.merge({})


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_offline_checker_raises_clears_and_survives(kind: str, tmp_path: Path) -> None:
    with fleet_engine(kind, tmp_path) as engine:
        store = Store(engine)
        creds = registry.add_vehicle(engine, vin(1), "kaiyun_pickman", tenant="acme")
        quiet = registry.add_vehicle(engine, vin(2), "kaiyun_pickman", tenant="acme")
        ref, ref2 = store.vehicle(creds.vehicle), store.vehicle(quiet.vehicle)
        assert ref is not None and ref2 is not None
        for r in (ref, ref2):
            store.commit([Accepted(r, d) for d in Drive(r.wire_id, t=time.time() - 60).leg(20, 0).batches()])
        now = time.time()
        assert offline.check(engine, now) == []  # heard a moment ago
        raised = offline.check(engine, now + 16 * 60)
        assert sorted(a["vehicle"] for a in raised) == sorted([creds.vehicle, quiet.vehicle])
        assert offline.check(engine, now + 17 * 60) == []  # once
        store.commit(
            [Accepted(ref, d) for d in Drive(ref.wire_id, boot="00000000000000bb").leg(20, 0).batches()]
        )
        offline.check(engine, now + 18 * 60)
        by_vehicle = {a["vehicle"]: a for a in dq.alert_list(engine, ref.tenant_id, type_="offline")}
        assert (
            by_vehicle[creds.vehicle]["cleared_ts"] is not None
            and by_vehicle[quiet.vehicle]["cleared_ts"] is None
        )
        # the component: a failing check is counted and the next runs; a dead task is restarted
        checker = offline.OfflineChecker(engine, interval_s=0.05)
        calls = {"n": 0}
        real = checker.run_once

        async def flaky() -> list:
            calls["n"] += 1
            if calls["n"] == 2:
                raise RuntimeError("database away")
            if calls["n"] == 4:
                raise asyncio.CancelledError  # not an Exception: kills the loop task itself
            return await real()

        checker.run_once = flaky  # type: ignore[method-assign]
        await checker.start()
        try:
            deadline = time.monotonic() + 20
            while calls["n"] < 6 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:
            await checker.stop()
        assert calls["n"] >= 6
        assert checker.stats.failures == 1 and checker.stats.crashes == 1 and checker.stats.runs >= 3


async def test_offline_alerts_reach_the_tenants_live_feed_only(tmp_path: Path) -> None:
    from anycar.fleet.live import LiveFeed

    with fleet_engine("sqlite", tmp_path) as engine:
        store = Store(engine)
        creds = registry.add_vehicle(engine, vin(1), "kaiyun_pickman", tenant="acme")
        ref = store.vehicle(creds.vehicle)
        assert ref is not None
        store.commit([Accepted(ref, d) for d in Drive(ref.wire_id).leg(20, 0).batches()])
        rules.set_override(engine, ref.tenant_id, {"offline": {"after_minutes": 0}})
        rival = registry.tenant_id(engine, "rival", create=True)
        live = LiveFeed()
        mine, theirs = live.subscribe(ref.tenant_id), live.subscribe(rival)
        checker = offline.OfflineChecker(engine, live=live)
        await asyncio.sleep(0.05)
        (raised,) = await checker.run_once()
        msg = mine.get_nowait()
        assert msg is not None and msg["type"] == "alert" and msg["alert"]["type"] == "offline"
        assert msg["alert"]["id"] == raised["id"] and msg["alert"]["vehicle"] == creds.vehicle
        assert "tenant_id" not in msg["alert"] and theirs.empty()
