"""The ingest's side of commands, on SQLite and PostgreSQL: a hub's inventory, command-result and
campaign-ack messages, committed through ``Store.commit`` as the ingest does, land on the
inventory, the command and the campaign they answer (deduplicated like every uplink message)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from anycar.fleet import commands, inventory, registry
from anycar.fleet.sender import due
from anycar.fleet.store import Accepted, Store
from anycar.wire import Origin, decode, encode
from anycar.wire import messages as msg
from fleet_support import fleet_engine, vin

KINDS = ["sqlite", "postgres"]
COOLER = {
    "id": "Cooler1",
    "vendor_id": 65521,
    "vendor": "anycar virtual devices",
    "product_id": 32773,
    "model": "VC-2",
    "serial": "V000",
    "firmware": "0.9.0",
    "mount": "cup_holder_front",
    "status": "RUNNING",
}


@pytest.mark.parametrize("kind", KINDS)
def test_the_ingest_stores_inventory_results_and_acks(kind: str, tmp_path: Path) -> None:
    with fleet_engine(kind, tmp_path) as engine:
        car = registry.add_vehicle(engine, vin(1), "kaiyun_pickman", tenant="acme", wire_id="PM-0100").vehicle
        tid = registry.tenant_id(engine, "acme")
        store = Store(engine)
        origin = Origin(car, "00112233aabbccdd")
        now = time.time()

        def commit(seq: int, doc: dict) -> None:
            store.commit([Accepted(store.vehicle(car), decode(encode(doc)))])

        inv = msg.inventory(origin, 1, [COOLER], ts=now)
        commit(1, inv)
        commit(1, inv)  # a resend: deduplicated
        assert [a["id"] for a in inventory.listing(engine, tid, model="VC-2")] == ["Cooler1"]

        scene = commands.new_command(engine, tid, car, "scene", {"id": "cool_cargo"})
        campaign = commands.new_campaign(
            engine,
            tid,
            car,
            {
                "id": "watch",
                "version": 4,
                "signals": [{"path": "Vehicle.Speed"}],
                "collect": {"periodic": {"period_ms": 1000}},
            },
        )
        assert {d.command_id for d in due(engine, now)} == {scene["id"], campaign["id"]}
        result = msg.command_result(
            origin,
            2,
            command=scene["id"],
            status="partial",
            reason="one light is out",
            results=[{"path": "Vehicle.Accessories.Cooler1.IsOn", "status": "accepted"}],
            ts=now,
            action="scene",
        )
        commit(2, result)
        ack = msg.campaign_ack(
            origin, 3, campaign="watch", version=4, status="stale", reason="v5 is here", ts=now
        )
        commit(3, ack)
        other = msg.campaign_ack(origin, 4, campaign="watch", version=3, status="accepted", ts=now)
        commit(4, other)  # an ack of a version this fleet did not send matches nothing
        got = commands.get(engine, tid, scene["id"])
        assert (got["status"], got["reason"], got["results"][0]["status"]) == (
            "partial",
            "one light is out",
            "accepted",
        )
        got = commands.get(engine, tid, campaign["id"])
        assert (got["status"], got["reason"]) == ("stale", "v5 is here")
        commit(5, msg.inventory(origin, 5, [], ts=now + 1))
        assert inventory.listing(engine, tid) == []
