"""The swap flow end to end: simulated stations (the same ``ocpp`` package a vendor would use)
against the CSMS over TLS with basic auth, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from anycar.swap import inventory
from anycar.swap import tables as t
from anycar.swap.registry import add_pack
from anycar.swap.station import Pack, Vehicle
from swap_support import Pki, running, running_csms, station, swap_engine, until, vehicle


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_vehicle_swaps_its_pack_and_is_billed(kind: str, tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    with swap_engine(kind, tmp_path) as engine:
        wire, token = vehicle(engine)
        add_pack(engine, "PM-OLD-1", chemistry="LFP", capacity_kwh=10.0, soh=91.0, soc=12.0, vehicle=wire)
        async with running_csms(engine, pki) as csms:
            sim = station(engine, "town-1", csms, pki, speed=200.0, meter_s=0.3)
            sim.slots[0].pack.soc = 99.0  # one pack ready, which the CSMS learns from the meter values
            async with running(sim):
                await until(
                    lambda: inventory.station_packs(engine, "town-1")[0]["state"] == "ready",
                    what="a ready pack",
                )
                got = await sim.arrive(Vehicle(token, Pack("PM-OLD-1", 12.0, 91.0, 10.0)), timeout=60)
                assert got is not None and got.serial == "town-1-P01"
                await until(lambda: not csms.swaps, what="the swap recorded")
        with engine.connect() as conn:
            swap = conn.execute(select(t.swaps)).one()
        assert swap.state == "done", swap.reason
        assert (swap.pack_old, swap.pack_new) == ("PM-OLD-1", "town-1-P01")
        assert swap.energy_kwh == pytest.approx((got.soc - 12.0) / 100 * 10.0, abs=0.01)
        assert swap.amount == pytest.approx(round(swap.energy_kwh * 0.30 + 1.00, 2))
        old = inventory.passport(engine, "PM-OLD-1")
        assert old is not None and old["state"] == "charging" and old["station_id"] == "town-1"
        assert [h["event"] for h in old["history"]] == ["registered", "into_slot"]
        assert old["cycles"] == pytest.approx(0.0)
        new = inventory.passport(engine, "town-1-P01")
        assert new is not None and new["state"] == "in_vehicle"
        assert [h["event"] for h in new["history"]] == ["registered", "into_vehicle"]


async def test_reservations_grid_limit_plan_variables_reset_firmware_and_retirement(tmp_path: Path) -> None:
    with swap_engine("sqlite", tmp_path) as engine:
        wire, token = vehicle(engine)
        _, other = vehicle(engine, tenant="rival")
        add_pack(engine, "PM-OLD-2", chemistry="LFP", capacity_kwh=10.0, soh=65.0, soc=15.0, vehicle=wire)
        async with running_csms(engine) as csms:
            sim = station(engine, "town-2", csms, speed=300.0, meter_s=0.3)
            sim.slots[0].pack.soc = 99.0  # exactly one ready pack
            async with running(sim):
                await until(lambda: inventory.station_packs(engine, "town-2")[0]["state"] == "ready")
                reservation, status = await csms.reserve("town-2", token, minutes=10)
                assert status == "Accepted" and sim.slots[0].reserved == reservation
                # the one ready pack is reserved: another vehicle is turned away
                assert csms.authorize("town-2", other) == "NotAtThisTime"
                assert csms.authorize("town-2", "no-such-token") == "Unknown"
                assert await csms.cancel_reservation("town-2", reservation) == "Accepted"
                assert sim.slots[0].reserved is None
                assert await csms.cancel_reservation("town-2", reservation) == "Rejected"
                reservation, status = await csms.reserve("town-2", token, minutes=10)
                assert await csms.set_grid_limit("town-2", 11.0) == "Accepted" and sim.max_w == 11000.0
                plan, answers = await csms.charge_plan("town-2", demand=[1.0] + [0.5] * 23)
                assert set(answers.values()) == {"Accepted"} and max(plan.grid_kw()) <= 11.0
                assert sim.slots[1].profile and sim.slots[1].profile[0][1] == plan.kw[2][0] * 1000
                assert await csms.get_variables("town-2", [("BatterySwapCtrlr", "SwapOrder"), ("X", "Y")]) == [
                    {"attribute_status": "Accepted", "attribute_value": "In-Out", "component": {"name": "BatterySwapCtrlr"}, "variable": {"name": "SwapOrder"}},
                    {"attribute_status": "UnknownVariable", "component": {"name": "X"}, "variable": {"name": "Y"}},
                ]  # fmt: skip
                result = await csms.set_variables("town-2", [("OCPPCommCtrlr", "HeartbeatInterval", "30")])
                assert result[0]["attribute_status"] == "Accepted" and sim.heartbeat_s == 30
                await sim.firmware_status("Downloading")
                await until(lambda: _station(engine).firmware_status == "Downloading")
                # the reserved vehicle swaps; its old pack is under the SoH threshold: retired
                got = await sim.arrive(Vehicle(token, Pack("PM-OLD-2", 15.0, 65.0, 10.0)), timeout=60)
                assert got is not None
                await until(lambda: not csms.swaps)
                assert await csms.reset("town-2") == "Accepted"
                await until(
                    lambda: _station(engine).boot_reason == "RemoteReset" and "town-2" in csms.sessions
                )
        with engine.connect() as conn:
            assert (
                conn.execute(
                    select(t.reservations.c.status).where(t.reservations.c.id == reservation)
                ).scalar()
                == "used"
            )
        old = inventory.passport(engine, "PM-OLD-2")
        assert old is not None and old["state"] == "retired"
        assert [h["event"] for h in old["history"]][-2:] == ["into_slot", "retired"]


def _station(engine):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(select(t.stations).where(t.stations.c.id == "town-2")).one()
