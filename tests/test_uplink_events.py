"""Events the hub reports, each with time and position, from signal changes and the policy log."""

from __future__ import annotations

from typing import Any

from anycar.broker import SignalBroker
from anycar.broker.datapoint import Datapoint
from anycar.policy.events import EventLog
from anycar.uplink.events import POLICY_KINDS, EventDetector
from anycar.wire.messages import Origin, events
from anycar.wire.schema import check_message, schema_files

LAT, LON = "Vehicle.CurrentLocation.Latitude", "Vehicle.CurrentLocation.Longitude"


def detector(now: list[float]) -> tuple[EventDetector, list[dict[str, Any]]]:
    out: list[dict[str, Any]] = []
    det = EventDetector(SignalBroker(), out.extend, clock=lambda: now[0])
    return det, out


def feed(det: EventDetector, t: float, **values: Any) -> None:
    det.apply([Datapoint(path.replace("__", "."), value, t) for path, value in values.items()])


def test_ignition_trip_doors_soc_and_harsh_driving() -> None:
    now = [1000.0]
    det, out = detector(now)
    det.apply(
        [
            Datapoint("Vehicle.LowVoltageSystemState", "OFF", 999.0),
            Datapoint("Vehicle.Cabin.Door.Row1.DriverSide.IsOpen", False, 999.0),
            Datapoint("Vehicle.Body.Trunk.Rear.IsOpen", False, 999.0),
            Datapoint("Vehicle.Powertrain.TractionBattery.StateOfCharge.Current", 25.0, 999.0),
            Datapoint("Vehicle.TraveledDistance", 12_000.0, 999.0),
            Datapoint(LAT, 30.25, 999.0),
            Datapoint(LON, 120.17, 999.0),
        ],
        initial=True,
    )
    assert out == []  # the first values set the state, they are not events
    feed(det, 1000.0, Vehicle__LowVoltageSystemState="ON")
    feed(det, 1001.0, Vehicle__Cabin__Door__Row1__DriverSide__IsOpen=True)
    feed(det, 1002.0, Vehicle__Cabin__Door__Row1__DriverSide__IsOpen=False)
    feed(det, 1003.0, Vehicle__Speed=20.0)
    feed(det, 1004.0, Vehicle__Acceleration__Longitudinal=-5.0)
    feed(det, 1004.5, Vehicle__Acceleration__Longitudinal=-5.5)  # within min_interval: one event
    feed(det, 1010.0, Vehicle__Acceleration__Longitudinal=3.5)
    feed(det, 1011.0, Vehicle__Powertrain__TractionBattery__StateOfCharge__Current=19.5)
    feed(det, 1012.0, Vehicle__Powertrain__TractionBattery__StateOfCharge__Current=19.0)  # no repeat
    feed(det, 1013.0, Vehicle__Powertrain__TractionBattery__StateOfCharge__Current=9.0)
    feed(det, 1014.0, Vehicle__Body__Trunk__Rear__IsOpen=True)
    feed(det, 1015.0, Vehicle__Speed=65.0, Vehicle__TraveledDistance=13_500.0)
    feed(det, 1016.0, Vehicle__LowVoltageSystemState="OFF")
    kinds = [e["type"] for e in out]
    assert kinds == [
        "ignition_on",
        "door_opened",
        "door_closed",
        "trip_start",
        "harsh_braking",
        "harsh_acceleration",
        "low_soc",
        "low_soc",
        "tailgate_opened",
        "ignition_off",
        "trip_end",
    ]
    assert all(e["position"] == {"lat": 30.25, "lon": 120.17} for e in out)
    assert [e["data"]["threshold"] for e in out if e["type"] == "low_soc"] == [20.0, 10.0]
    trip = out[-1]["data"]
    assert trip == {"duration_s": 13.0, "max_speed_kmh": 65.0, "distance_km": 1.5}
    assert out[1]["subject"] == "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen"


def test_a_trip_ends_after_standing_still_and_soc_rearms_with_hysteresis() -> None:
    now = [0.0]
    det, out = detector(now)
    feed(det, 1.0, Vehicle__Speed=10.0)
    feed(det, 2.0, Vehicle__Speed=0.0)
    now[0] = 200.0
    feed(det, 200.0, Vehicle__Speed=0.0)
    assert [e["type"] for e in out] == ["trip_start", "trip_end"]
    out.clear()
    soc = "Vehicle__Powertrain__TractionBattery__StateOfCharge__Current"
    for value in (21.0, 19.0, 20.5, 19.0, 23.0, 19.0):
        feed(det, 300.0, **{soc: value})
    assert [e["data"]["soc"] for e in out] == [19.0, 19.0]  # re-armed only above 20 + 2


def test_policy_events_become_accessory_and_refusal_events() -> None:
    now = [0.0]
    det, out = detector(now)
    log = EventLog()
    log.add_listener(det._on_policy)
    det._policy = log
    log.log("fitted", "fan-1", "fan-1 fitted on mount cup-holder", mount="cup")
    log.log("shed", "fan-1", "fan-1 shed: low voltage", priority="comfort", reason="low voltage")
    log.log(
        "refusal", "fleet", "fleet may not set Vehicle.Body.Horn.IsActive", path="Vehicle.Body.Horn.IsActive"
    )
    log.log("driving_state", "vehicle", "parked -> moving")  # not an operator event
    assert [e["type"] for e in out] == ["accessory_fitted", "accessory_shed", "policy_refusal"]
    assert out[0]["subject"] == "fan-1" and out[2]["data"]["path"] == "Vehicle.Body.Horn.IsActive"


def test_a_courtesy_window_goes_up_to_the_fleet_with_its_cause_and_bound() -> None:
    """A lamp allowed to run with the ignition off drains the 12 V rail while nobody drives:
    the operator sees each window open (the real policy's event), with what opened it and for
    how long; the lamp's own restore goes up as before."""
    from anycar.policy import PolicyEngine, Priority
    from helpers_accessories import ManualClock

    now = [0.0]
    det, out = detector(now)
    clock = ManualClock()
    policy = PolicyEngine(SignalBroker(), clock=clock)
    policy.events.add_listener(det._on_policy)
    det._policy = policy.events
    door = "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen"
    policy.apply([Datapoint("Vehicle.LowVoltageSystemState", "ON", 0.0), Datapoint(door, False, 0.0)])
    policy.apply([Datapoint("Vehicle.LowVoltageBattery.CurrentVoltage", 12.6, 0.0)])
    policy.register_load("Light1", Priority.COMFORT, families=["light"], peak_w=6.0)
    policy.apply([Datapoint("Vehicle.LowVoltageSystemState", "OFF", 0.0)])
    out.clear()
    clock.t += 2
    policy.apply([Datapoint(door, True, 0.0)])
    assert [e["type"] for e in out] == ["courtesy_lighting", "accessory_restored"]
    up = out[0]
    assert up["subject"] == "vehicle" and "for 600 s" in up["message"]
    assert up["data"]["cause"] == "Vehicle.Cabin.Door.Row1.DriverSide opened"
    assert up["data"]["ignition"] == "OFF" and up["data"]["duration_s"] == 600.0
    assert up["data"]["until"] == clock.time() + 600 and up["data"]["supply_ok"] is True
    # what the fleet receives: the events message must pass the wire's own schema
    check_message(events(Origin("veh-1", "0123456789abcdef"), 1, out, prio=1, ts=clock.time()))


def test_every_policy_event_the_hub_forwards_is_a_type_the_wire_takes() -> None:
    items = schema_files()["events.v1.schema.json"]["properties"]["events"]["items"]
    assert set(POLICY_KINDS.values()) <= set(items["properties"]["type"]["enum"])
