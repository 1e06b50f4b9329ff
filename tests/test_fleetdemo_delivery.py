"""demo-delivery's parts on their own: the delivery behaviour file, the recipients (webhook and
doorbell over real HTTP), the simulator held and given a new round, and the hub keeping what it
delivered across a re-plan and the stop in progress. The whole day runs in test_fleetdemo.py."""

from __future__ import annotations

import itertools
import json
import sqlite3
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from anycar.broker import SignalBroker
from anycar.broker.datapoint import Datapoint
from anycar.errors import ConfigError
from anycar.fleet.webhooks import SIGNATURE, sign
from anycar.fleetdemo.delivery import load_delivery
from anycar.fleetdemo.recipients import Recipients
from anycar.roads import load_network
from anycar.sim.cycles import delivery_cycle, delivery_parameters
from anycar.sim.route import Route
from anycar.sim.simulator import Simulator
from anycar.uplink.delivery import DeliveryKeeper


def test_the_shipped_day_has_one_failing_order_and_sane_driver_times():
    spec = load_delivery()
    assert spec.failing() == ["D016"]
    d016 = spec.recipient("D016")
    assert [d016.answer(i) for i in range(3)] == ["absent", "home", "home"]
    assert spec.recipient("D001").answer(0) == "home" and spec.recipient("D001").pin == "sent"
    assert 0 < spec.driver.act_gap_s < 2 and spec.driver.answer_wait_s > 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a list", "expected a mapping"),
        ("driver: {act_gap_s: x}", "driver: every value is a number"),
        ("driver: {nap_s: 1}", "driver: unknown nap_s"),
        ("driver: {act_gap_s: -1}", "no negative times"),
        ("recipients: {orders: {D1: {attempts: [maybe]}}}", r"recipients.orders.D1.attempts: a list of home"),
        ("recipients: {orders: {D1: {pin: '1259'}}}", r"recipients.orders.D1.pin: 'sent' or digits 1-4"),
        ("recipients: {default: {color: red}}", "recipients.default: unknown color"),
        ("driver: [1, 2", "not valid YAML"),
    ],
)
def test_bad_delivery_files_name_the_field(text, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_delivery(text, "delivery.yaml")
    assert str(info.value).startswith("delivery.yaml")


async def test_recipients_check_the_webhook_and_answer_the_door_attempt_by_attempt():
    spec = load_delivery(
        "recipients: {orders: {D1: {attempts: [absent, home], why: nobody in}, D2: {pin: '4321'}}}"
    )
    people = Recipients(spec)
    people.secret = "s3cret"
    await people.start()
    try:
        async with httpx.AsyncClient(base_url=people.url, timeout=5) as http:
            body = json.dumps({"type": "delivery_eta", "order": "D1", "pin": "1234"}).encode()
            r = await http.post("/hook", content=body, headers={SIGNATURE: sign("wrong", body)})
            assert r.status_code == 401 and people.pins == {}
            r = await http.post("/hook", content=body, headers={SIGNATURE: sign("s3cret", body)})
            assert r.status_code == 204 and people.pins == {"D1": "1234"}
            r = await http.post("/hook", content=b"x" * (70 * 1024), headers={SIGNATURE: "sha256=0"})
            assert r.status_code == 413

            assert (await http.post("/door/D1")).status_code == 401  # the doorbell wants its token
            bell = {"Authorization": f"Bearer {people.token}"}
            first = (await http.post("/door/D1", headers=bell)).json()
            assert first == {"answer": "absent", "why": "nobody in", "attempt": 1}
            second = (await http.post("/door/D1", headers=bell)).json()
            assert second == {"answer": "home", "pin": "1234", "attempt": 2}
            r = await http.post("/door/D3", headers=bell)  # home, but the PIN has not reached them
            assert r.status_code == 409 and r.json()["answer"] == "waiting"
            typed = (await http.post("/door/D2", headers=bell)).json()  # types their own digits
            assert typed["pin"] == "4321"
    finally:
        await people.stop()


def _round(points: list[tuple[float, float]]) -> tuple[Route, Any]:
    net = load_network()
    line, legs = [], []
    for a, b in itertools.pairwise(points):
        leg = net.route(a, b, "delivery")
        coords = [(c[1], c[0], 0.0) for c in leg.coordinates]
        line.extend(coords if not line else coords[1:])
        legs.append(leg.meters)
    cycle = delivery_cycle(0, {**delivery_parameters(), "leg_lengths_m": legs, "start_idle_s": 3})
    return Route("r", line, closed=False), cycle


def test_a_held_vehicle_waits_where_it_stands_and_a_new_round_starts_from_there():
    from anycar.roads.geo import haversine_m

    sim = Simulator.for_profile("kaiyun_pickman", route=None, cycle="delivery", seed=1)
    depot, customer = (60.1690, 24.9372), (60.1662, 24.9432)
    sim.drive(*_round([depot, customer, depot]))
    sim.held = True
    for _ in range(200):  # 100 s held at the start: parked, ignition on, not a metre driven
        step = sim.step()
    assert step.values["Vehicle.Speed"] == 0 and sim.route_m == 0
    assert step.values["Vehicle.Powertrain.Transmission.SelectedGear"] == 126
    assert step.values["Vehicle.LowVoltageSystemState"] == "ON"
    sim.held = False
    parked_at = None
    for _ in range(4000):
        step = sim.step()
        _, _, phase = sim.now_in_lap()
        if phase is not None and phase.kind == "delivery":
            parked_at = (
                step.values["Vehicle.CurrentLocation.Latitude"],
                step.values["Vehicle.CurrentLocation.Longitude"],
            )
            break
    assert parked_at is not None and float(haversine_m(*parked_at, *customer)) < 25
    sim.held = True  # the driver works at the door: the stop lasts as long as that takes
    _, since, phase = sim.now_in_lap()
    for _ in range(600):
        sim.step()
    assert sim.now_in_lap()[1] == pytest.approx(since) and sim.speed_kmh == 0
    # a re-plan: a new round from here, the lap clock and the route start again
    here = (sim.route.at(sim.route_m).latitude, sim.route.at(sim.route_m).longitude)
    sim.drive(*_round([here, (60.1712, 24.9480), depot]))
    sim.held = False
    assert sim.route_m == 0 and sim.now_in_lap()[1] == 1.0  # a second into its start, ignition on
    moved = [sim.step() for _ in range(120)]
    assert max(s.values["Vehicle.Speed"] for s in moved) > 5


def _keeper(db: sqlite3.Connection, sent: list[dict[str, Any]]) -> DeliveryKeeper:
    return DeliveryKeeper(SignalBroker(), db, Ed25519PrivateKey.generate(), lambda r, k: sent.append(r))


def _stop(order: str) -> dict[str, Any]:
    return {
        "order": order,
        "kind": "drop",
        "lat": 60.17,
        "lon": 24.94,
        "weight_kg": 1.0,
        "pin_required": True,
    }


async def test_a_replan_keeps_what_the_hub_delivered_and_the_stop_in_progress(tmp_path):
    db = sqlite3.connect(tmp_path / "spool.sqlite3", isolation_level=None)
    sent: list[dict[str, Any]] = []
    keeper = _keeper(db, sent)
    await keeper.receive("c-1", {"plan": 1, "version": 1, "stops": [_stop("A"), _stop("B"), _stop("C")]})
    keeper.complete("delivered", pin="1111")
    keeper.complete("failed", "recipient absent")
    assert [r["order"] for r in sent] == ["A", "B"] and keeper.next_stop()["order"] == "C"
    # the door opens at C (the stop is in progress) when a re-plan made before A's proof reached
    # the fleet arrives: A stays delivered, B (failed) comes back, C is still the stop in progress
    keeper.apply([Datapoint("Vehicle.Body.Trunk.Rear.IsOpen", True, 100.0)])
    assert keeper.watch is not None and keeper.watch.opened == 100.0
    await keeper.receive("c-2", {"plan": 2, "version": 2, "stops": [_stop("A"), _stop("B"), _stop("C")]})
    assert keeper.done == {"A": "delivered"}
    assert keeper.watch is not None and keeper.watch.stop["order"] == "C" and keeper.watch.opened == 100.0
    record = keeper.complete("delivered", pin="2222")
    assert record["order"] == "C" and record["door"]["opened"] == 100.0 and record["plan"] == 2
    assert keeper.next_stop()["order"] == "B"
    # after a restart the hub still knows A was delivered under the new plan
    again = _keeper(db, sent)
    assert again.done == {"A": "delivered", "C": "delivered"}


async def test_a_driver_waits_at_the_door_until_the_stops_window_opens(monkeypatch):
    """demo-route: a failed order's retry cuts its window (09:07-11:00); the demo's driver, who
    knows the demo's day clock, does not ring before it opens."""
    import time as _time
    from types import SimpleNamespace

    from anycar.fleetdemo import driver as drv

    assert drv._window_start("09:07:30-11:00") == 9 * 3600 + 7 * 60 + 30
    assert drv._window_start("") is None and drv._window_start("soon") is None
    slept: list[float] = []

    async def fake_sleep(s: float) -> None:
        slept.append(s)

    monkeypatch.setattr(drv.asyncio, "sleep", fake_sleep)
    me = SimpleNamespace(day=None)
    me.day_s = lambda: drv.Driver.day_s(me)
    assert await drv.Driver.until_window(me, {"window": "09:07-11:00"}) == 0.0  # no day clock yet
    drv.Driver.set_day(me, _time.time(), "09:02", 20.0)  # the day reads 09:02 now, at 20x
    waited = await drv.Driver.until_window(me, {"window": "09:07-11:00"})
    assert waited == pytest.approx(300 / 20, abs=0.5) and slept == [waited]
    assert await drv.Driver.until_window(me, {"window": "09:00-11:00"}) == 0.0  # open already
