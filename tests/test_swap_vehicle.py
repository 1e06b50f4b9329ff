"""Issue 16 item 3, end to end: a PICKMAN hub (simulator → CAN frames → the profile's mapping →
broker → uplink over the real Mosquitto) carries a swappable pack; a station simulator speaking
OCPP 2.1 swaps it at the fleet server's CSMS; the hub reports the new pack; the fleet reconciles
it with the station's BatteryOut (passport: in that vehicle), and a vehicle that reports another
pack, a pack another vehicle holds, or a serial that is no serial raises a fleet alert, seen over
REST and by webhook."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
from sqlalchemy import select

from anycar.brands.ecus import EcuEncoder
from anycar.can.transform import TransformFailed, compile_transform
from anycar.errors import ConfigError
from anycar.fleet import registry as fleet_registry
from anycar.fleet.server import FleetConfig, FleetServer
from anycar.hub import HubConfig
from anycar.hub.assemble import HubParts, build_hub
from anycar.sim import Simulator
from anycar.swap import registry
from anycar.swap import tables as t
from anycar.swap.reconcile import PackReconciler, Settings
from anycar.swap.station import Pack, StationSim, Vehicle
from anycar.uplink import UplinkConfig
from anycar.wire import Channel, encode, new_boot_id, topic
from fleet_support import eventually, fleet_engine, vin
from test_fleet_webhooks import Receiver

PACK_ID = "Vehicle.Powertrain.TractionBattery.Id"


def station_packs(first: int, n: int = 3) -> list[Pack]:
    return [Pack(f"KYB{first + i:08d}", 98.0, 95.0, 10.0) for i in range(n)]


def fleet_alerts(engine: Any) -> list[Any]:
    """The fleet's alerts about packs, read from its database (the REST list is checked after)."""
    from anycar.fleet.domain_tables import alerts

    with engine.connect() as conn:
        return list(
            conn.execute(select(alerts.c.type, alerts.c.message).where(alerts.c.type.like("pack_%"))).all()
        )


def _server(engine: Any, vehicle: str, worker: str) -> FleetServer:
    """The fleet with the CSMS on free ports, ingesting ``vehicle`` (its own share group), no
    maintenance rounds and no command sender."""
    return FleetServer(
        FleetConfig(
            db_url=engine.url.render_as_string(hide_password=False),
            vehicles=[vehicle],
            group=f"t{uuid.uuid4().hex[:8]}",
            worker_id=f"{worker}-{uuid.uuid4().hex[:6]}",
            api_port=0,
            osmand_port=0,
            ocpp_port=0,
            maintenance_s=None,
            send_commands=False,
        )
    )


def simulator_of(hub: Any) -> Simulator:
    return next(c for c in hub.components if c.name == "simulator").sim


def test_the_serial_transform_both_ways_and_bad_values() -> None:
    run = compile_transform({"serial": {"prefix": "KYB", "digits": 8}})
    assert run is not None
    assert run(1234) == "KYB00001234" and run("KYB00001234") == 1234
    for bad in ("KYB1234", "XYZ00001234", "KYB000012345", -1, 1.5, 10**8, True):
        with pytest.raises(TransformFailed):
            run(bad)
    with pytest.raises(ConfigError):
        compile_transform({"serial": {"prefix": "K Y", "digits": 8}})
    # the profile's own BMS frame carries the station's string serial as an integer
    frames = EcuEncoder("kaiyun_pickman").encode({PACK_ID: "KYB00001234"})
    assert [f.arbitration_id for f in frames] == [0x0CF10C00]
    assert int.from_bytes(frames[0].data[:4], "little") == 1234


def test_the_simulator_swaps_its_pack_and_refuses_a_bad_one() -> None:
    sim = Simulator.for_profile("kaiyun_pickman")
    first = sim.step().values
    assert first[PACK_ID] == "KYB00000001" and first["Vehicle.Powertrain.TractionBattery.GrossCapacity"] == 15
    sim.swap_pack("KYB00000042", 96.0, 91.0, 10.0)
    after = sim.step().values
    assert after[PACK_ID] == "KYB00000042"
    assert after["Vehicle.Powertrain.TractionBattery.StateOfHealth"] == 91.0
    assert after["Vehicle.Powertrain.TractionBattery.NetCapacity"] == 9
    assert abs(after["Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"] - 96.0) < 0.1
    for serial, soc in (("", 50.0), ("K" * 51, 50.0), (12345, 50.0), ("KYB00000043", 120.0)):
        with pytest.raises(ConfigError):
            sim.swap_pack(serial, soc, 90.0)  # type: ignore[arg-type]
    assert Simulator.for_profile("xiaomi_su7").step().values.get(PACK_ID) is None  # a fixed battery


async def test_a_swap_reported_by_the_hub_is_reconciled_and_a_wrong_pack_is_an_alert(tmp_path: Path) -> None:
    receiver = Receiver()
    await receiver.listener.start()
    with fleet_engine("sqlite", tmp_path) as engine:
        car = vin(1)
        cred = fleet_registry.add_vehicle(engine, car, "kaiyun_pickman", tenant="swapco")
        user = fleet_registry.add_user(engine, "swapco", "ops", "owner")
        server = _server(engine, cred.vehicle, "swapveh")
        await server.start()
        hub = None
        station = None
        task = None
        try:
            server.packs.settings = Settings(report_within_s=300.0, sweep_s=0.5)
            api = server.ready()["api"]
            h = {"Authorization": f"Bearer {user}"}
            async with httpx.AsyncClient(base_url=api, timeout=30) as http:
                await http.post("/api/webhooks", json={"url": receiver.url, "events": ["alert"]}, headers=h)
            password = registry.add_station(engine, "town-1", tenant="swapco", layout="pickman-8")
            packs = station_packs(100)
            registry.stock_station(engine, "town-1", "pickman-8", serials=[p.serial for p in packs], soc=98.0)
            registry.add_pack(
                engine, "KYB00000001", chemistry="LFP", capacity_kwh=15.0, soh=97.0, soc=90.0, vehicle=car
            )
            token = registry.add_token(engine, car)
            station = StationSim(
                "town-1", server.csms.url, "pickman-8", password=password, packs=packs, speed=30.0
            )
            task = asyncio.create_task(station.run())
            await asyncio.wait_for(station.booted.wait(), 30)

            config = HubConfig()
            config.ports = {name: 0 for name in config.ports}
            uplink = UplinkConfig.from_url("mqtt://127.0.0.1:1883", cred.vehicle)
            uplink.username, uplink.password = cred.username, cred.password
            uplink.spool_path = tmp_path / "uplink.sqlite3"
            hub = build_hub(
                config,
                HubParts(brand="kaiyun_pickman", simulate=True, speedup=5.0, uplink=uplink, dashboard=False),
            )
            await hub.start()
            sim = simulator_of(hub)
            sv = __import__("anycar.fleet.db", fromlist=["signal_values"]).signal_values.c

            def reported() -> list[str]:
                with engine.connect() as conn:
                    rows = conn.execute(select(sv.value).where(sv.path == PACK_ID).order_by(sv.ts)).scalars()
                    return [str(v) for v in rows]

            await eventually(lambda: "KYB00000001" in reported(), 60, "the hub reports its first pack")

            # the swap: the vehicle at the bay, the station's robot, the pack it hands out fitted
            got = await station.arrive(
                Vehicle(token, Pack("KYB00000001", round(sim.battery.soc, 2), 97.0, 15.0)), timeout=60
            )
            assert got is not None and got.serial in {p.serial for p in packs}
            sim.swap_pack(got.serial, got.soc, got.soh, got.capacity_kwh)

            def swap_row(serial: str) -> Any:
                with engine.connect() as conn:
                    q = (
                        select(t.swaps)
                        .where(t.swaps.c.pack_new == serial)
                        .order_by(t.swaps.c.requested.desc())
                    )
                    return conn.execute(
                        q
                    ).first()  # the latest: a pack may come back out of the slot it went into

            await eventually(lambda: (r := swap_row(got.serial)) is not None and r.reconciled == "ok", 60,
                             "the new pack reconciled")  # fmt: skip
            row = swap_row(got.serial)
            assert row.state == "done" and row.pack_old == "KYB00000001" and row.vehicle_pack == got.serial
            async with httpx.AsyncClient(base_url=api, timeout=30) as http:
                passport = (await http.get(f"/api/packs/{got.serial}", headers=h)).json()
                assert passport["state"] == "in_vehicle" and passport["vehicle"] == cred.vehicle
                assert passport["history"][-1]["event"] == "vehicle_confirmed"
                assert [
                    a
                    for a in (await http.get("/api/alerts", headers=h)).json()
                    if a["type"].startswith("pack_")
                ] == []

            # the robot fitted another pack than the one the station reported handing out
            await asyncio.sleep(1.0)
            second = await station.arrive(
                Vehicle(token, Pack(got.serial, round(sim.battery.soc, 2), got.soh, 10.0)), timeout=60
            )
            assert second is not None
            sim.swap_pack("KYB00000777", 97.0, 93.0, 10.0)

            await eventually(lambda: fleet_alerts(engine), 60, "a pack alert")
            async with httpx.AsyncClient(base_url=api, timeout=30) as http:  # what the console lists
                shown = [
                    a
                    for a in (await http.get("/api/alerts", headers=h)).json()
                    if a["type"] == "pack_mismatch"
                ]
            assert len(shown) == 1 and [a.type for a in fleet_alerts(engine)] == ["pack_mismatch"]
            mismatch = shown[0]
            assert f"handed out pack {second.serial}" in mismatch["message"]
            assert "reports KYB00000777" in mismatch["message"]
            assert swap_row(second.serial).reconciled == "mismatch"
            await eventually(
                lambda: any(json.loads(b).get("type") == "pack_mismatch" for _, b in receiver.got), 30,
                "the mismatch at the webhook",
            )  # fmt: skip
        finally:
            if hub is not None:
                await hub.stop()
            if station is not None:
                await station.stop()
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            await server.stop()
            await receiver.listener.stop()


async def test_bad_reports_a_pack_another_vehicle_holds_and_serials_that_are_no_serials(
    tmp_path: Path,
) -> None:
    """What a buggy or hostile hub may send on its events channel, through the real broker."""
    with fleet_engine("sqlite", tmp_path) as engine:
        a, b = vin(1), vin(2)
        ca = fleet_registry.add_vehicle(engine, a, "kaiyun_pickman", tenant="swapco")
        cb = fleet_registry.add_vehicle(engine, b, "kaiyun_pickman", tenant="swapco")
        user = fleet_registry.add_user(engine, "swapco", "ops", "owner")
        server = _server(engine, ca.vehicle, "swapbad")
        await server.start()
        try:
            registry.add_pack(
                engine, "KYB00000500", chemistry="LFP", capacity_kwh=10.0, soh=95.0, soc=80.0, vehicle=b
            )
            boot, now = new_boot_id(), time.time()
            events = [
                {"type": "pack_changed", "ts": now, "position": None, "subject": "KYB00000500",
                 "data": {"serial": "KYB00000500", "previous": "KYB00000001"}},
                {"type": "pack_changed", "ts": now + 1, "position": None, "subject": "x", "data": {"serial": 12345}},
                {"type": "pack_changed", "ts": now + 2, "position": None, "subject": "x", "data": {"serial": "K" * 300}},
            ]  # fmt: skip
            doc = {
                "v": 1,
                "kind": "events",
                "vehicle": ca.vehicle,
                "boot": boot,
                "seq": 1,
                "prio": 1,
                "ts": now,
                "events": events,
            }
            async with aiomqtt.Client("127.0.0.1", 1883, username=ca.username, password=ca.password) as mqtt:
                await mqtt.publish(topic(ca.vehicle, Channel.EVENTS), encode(doc), qos=1)
            api = server.ready()["api"]
            h = {"Authorization": f"Bearer {user}"}

            await eventually(lambda: len(fleet_alerts(engine)) >= 3, 60, "three pack alerts")
            async with httpx.AsyncClient(base_url=api, timeout=30) as http:
                shown = (await http.get("/api/alerts", headers=h)).json()
            by_kind = sorted((a["type"], a["message"]) for a in shown if a["type"].startswith("pack_"))
            assert len(by_kind) == 3
            assert by_kind[0][0] == "pack_conflict"
            assert f"which the inventory has in vehicle {cb.vehicle}" in by_kind[0][1]
            invalid = [m for k, m in by_kind if k == "pack_report_invalid"]
            assert any("must be a string, got int" in m for m in invalid)
            assert any("1-50 printable characters, got 300" in m for m in invalid)
            assert all("\n" not in m for _, m in by_kind)
            with engine.connect() as conn:  # the inventory is not moved by the vehicle's word
                pack = conn.execute(select(t.packs).where(t.packs.c.serial == "KYB00000500")).one()
            assert pack.state == "in_vehicle" and pack.vehicle_id is not None
        finally:
            await server.stop()


def test_a_vehicle_that_never_reports_the_new_pack_is_an_alert(tmp_path: Path) -> None:
    """The sweep: BatteryOut recorded, nothing from the vehicle within report_within_s."""
    with fleet_engine("sqlite", tmp_path) as engine:
        car = vin(3)
        fleet_registry.add_vehicle(engine, car, "kaiyun_pickman", tenant="swapco")
        from anycar.swap.migrate import upgrade

        upgrade(engine)
        registry.add_station(engine, "town-9", tenant="swapco")
        with engine.begin() as conn:
            vid = registry.vehicle_id(conn, car)
            tid = conn.execute(select(t.stations.c.tenant_id)).scalar()
            conn.execute(
                t.swaps.insert().values(
                    id=7, station_id="town-9", vehicle_id=vid, tenant_id=tid, state="done", requested=1000.0,
                    out_ts=1000.0, finished=1001.0, pack_old="KYB00000001", pack_new="KYB00000101",
                )
            )  # fmt: skip
        judge = PackReconciler(engine, settings=Settings(report_within_s=60.0, sweep_s=1.0))
        assert judge.sweep(now=1030.0) == {}  # still within the time
        assert judge.sweep(now=1061.0) == {"missing": 1}
        assert judge.sweep(now=2000.0) == {}  # settled once
        with engine.connect() as conn:
            from anycar.fleet.domain_tables import alerts

            rows = conn.execute(select(alerts.c.type, alerts.c.message)).all()
        assert [r.type for r in rows] == ["pack_not_reported"]
        assert "has not reported pack KYB00000101 within 60 s of swap 7 at town-9" in rows[0].message
