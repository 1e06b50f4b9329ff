"""Cargo features from the accessories fitted now (issue 15, item 1): the hubs' ``inventory``
messages go through the fleet's real ingest path (wire encoding, ``ingest.judge``, the store's
one transaction) into PostgreSQL, and the planner's request takes each vehicle's refrigerated
cargo box or tail lift from those rows, not from the vehicle's type."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from anycar.fleet import registry
from anycar.fleet.ingest import judge
from anycar.fleet.store import Accepted, Store
from anycar.logistics import board, service
from anycar.logistics.move import move_order
from anycar.logistics.orders import parse_order
from anycar.logistics.settings import service_area
from anycar.wire.codec import encode
from anycar.wire.messages import Origin, inventory, new_boot_id
from anycar.wire.topics import Channel, topic
from fleet_support import fleet_engine, vin

DEPOT = {"lat": 60.170, "lon": 24.945}
FRIDGE = {"vendor_id": 65521, "vendor": "anycar virtual devices", "product_id": 32781, "model": "VX-RB1"}
LIFT = {"vendor_id": 65521, "vendor": "anycar virtual devices", "product_id": 32782, "model": "VX-TL1"}
SENSOR = {"vendor_id": 65521, "vendor": "anycar virtual devices", "product_id": 32780, "model": "VX-1"}


def _fitted(instance: str, product: dict, status: str = "RUNNING") -> dict:
    return {
        "id": instance,
        **product,
        "serial": uuid.uuid4().hex[:8],
        "firmware": "1.0.0",
        "mount": "cargo_bed_rail",
        "status": status,
    }


class Hub:
    """What a hub's uplink sends, as it would publish it: encoded, judged by the ingest, stored."""

    def __init__(self, store: Store, wire_id: str) -> None:
        self.store, self.origin, self.seq = store, Origin(wire_id, new_boot_id()), 0

    def report(self, *accessories: dict) -> None:
        self.seq += 1
        payload = encode(inventory(self.origin, self.seq, accessories, ts=time.time()))
        verdict = judge(self.store, topic(self.origin.vehicle, Channel.INVENTORY), payload, time.time())
        assert isinstance(verdict, Accepted), verdict
        assert self.store.commit([verdict]).messages == 1


@pytest.fixture
def engine(tmp_path: Path):
    with fleet_engine("postgres", tmp_path) as e:
        yield e


def test_refrigerated_and_tail_lift_come_from_the_fitted_accessories(engine) -> None:
    store = Store(engine)
    ids = [f"PM-{i}-{uuid.uuid4().hex[:4]}" for i in (1, 2)]
    for i, wire in enumerate(ids):
        registry.add_vehicle(engine, vin(i), "kaiyun_pickman", tenant="acme", wire_id=wire)
    tid = registry.tenant_id(engine, "acme")
    area = service_area()
    orders = [
        parse_order(
            {"id": "cold", "lat": 60.168, "lon": 24.951, "features": "refrigerated", "weight_kg": 5}, area
        ),
        parse_order(
            {"id": "heavy", "lat": 60.172, "lon": 24.940, "features": "tail_lift", "weight_kg": 80}, area
        ),
        parse_order({"id": "plain", "lat": 60.171, "lon": 24.950, "weight_kg": 3}, area),
    ]
    board.add_orders(engine, tid, orders, {})
    options = {"depot": DEPOT, "shift": "08:00-18:00", "time_limit_s": 0.5}
    one, two = Hub(store, ids[0]), Hub(store, ids[1])

    # Nothing reported yet: the PICKMAN's type has no refrigerated box or tail lift of its own.
    first = service.propose(engine, tid, options)["plan"]
    reasons = {u["order"]: u["reason"] for u in first["unservable"]}
    assert reasons == {
        "cold": "needs refrigerated: no vehicle has a refrigerated cargo box fitted now",
        "heavy": "needs tail_lift: no vehicle has a tail lift fitted now",
    }

    # PM-1 has a refrigerated box running; PM-2 a tail lift and a cargo sensor (no feature).
    one.report(_fitted("Fridge1", FRIDGE))
    two.report(_fitted("Lift1", LIFT), _fitted("CargoSensor1", SENSOR))
    second = service.propose(engine, tid, options)["plan"]
    on = {r["vehicle"]: [s["order"] for s in r["stops"] if s["order"]] for r in second["routes"]}
    assert second["unservable"] == [] and second["feasible"]
    assert "cold" in on[ids[0]] and "heavy" in on[ids[1]]

    # Moving the cold order onto the vehicle without a box is refused, naming what it lacks.
    plan_id = int(service.propose(engine, tid, options)["id"])
    refused = move_order(engine, tid, plan_id, "cold", ids[1])
    assert not refused.accepted
    assert (
        refused.reason
        == f"{ids[1]} cannot take cold: needs refrigerated: it has no refrigerated cargo box fitted now"
    )

    # The box is shed (its power cut) at the hub's next report: it no longer counts, the plan
    # says why, and the cold order is unservable again. An older report arriving late changes nothing.
    one.report(_fitted("Fridge1", FRIDGE, status="SHED"))
    third = service.propose(engine, tid, options)["plan"]
    assert {u["order"]: u["reason"] for u in third["unservable"]} == {
        "cold": "needs refrigerated: no vehicle has a refrigerated cargo box fitted now"
    }
    assert (
        f"{ids[0]}: no refrigerated cargo box counts: Fridge1 (Virtual refrigerated cargo box) is SHED"
        in third["notes"]
    )

    # Removed from PM-2 (the whole list without it): the tail lift order has no vehicle either.
    two.report(_fitted("CargoSensor1", SENSOR))
    fourth = service.propose(engine, tid, options)["plan"]
    assert {u["order"] for u in fourth["unservable"]} == {"cold", "heavy"}


def test_a_request_cannot_claim_a_feature_no_accessory_gives(engine) -> None:
    registry.add_vehicle(engine, vin(7), "kaiyun_pickman", tenant="acme", wire_id="PM-7")
    tid = registry.tenant_id(engine, "acme")
    with pytest.raises(service.PlanningError) as caught:
        service.request_for(
            engine, tid, {"depot": DEPOT, "vehicles": {"PM-7": {"features": ["refrigerated"]}}}
        )
    assert str(caught.value) == (
        "vehicles.PM-7.features: cargo features come from the accessories its hub reports fitted "
        "(GET /api/vehicles/{vehicle}/accessories), not from the request"
    )
