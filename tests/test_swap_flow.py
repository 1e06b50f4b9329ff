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
