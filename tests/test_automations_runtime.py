"""Triggers, conditions, actions, modes and scenes on a real broker with a provider that answers
actuations like a car does (by publishing the new value)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from anycar.automations.engine import Engine
from anycar.broker import SignalBroker
from anycar.policy import PolicyEngine
from automations_support import (
    DOOR,
    INTENSITY,
    LIGHT,
    VOLTAGE,
    FakeCar,
    ended_trace,
    last_trace,
    started_engine,
    until,
    write,
)

LAT, LON = "Vehicle.CurrentLocation.Latitude", "Vehicle.CurrentLocation.Longitude"


async def test_door_opens_light_on_with_a_full_trace(tmp_path: Path) -> None:
    engine, car = await started_engine(
        tmp_path,
        f"""
automations:
  - id: door_light
    triggers: [{{id: door, signal: {DOOR}, to: true}}]
    conditions:
      - signal: {VOLTAGE}
        above: 11
    actions:
      - actuate: {LIGHT}
        value: true
      - actuate: {INTENSITY}
        value: 40
""",
    )
    try:
        car.set(VOLTAGE, 12.4)
        car.set(DOOR, False)
        await asyncio.sleep(0.05)
        assert car.requests == []
        car.set(DOOR, True)
        await until(lambda: car.sent(INTENSITY) == [40], what="the light")
        trace = await until(lambda: (t := last_trace(engine, "door_light")) and t["result"] == "done" and t)
        assert trace["trigger"]["id"] == "door" and trace["trigger"]["value"] is True
        assert trace["trigger"]["previous"] is False
        assert trace["values"][VOLTAGE] == 12.4
        assert trace["conditions"][0]["result"] is True and "12.4" in trace["conditions"][0]["why"]
        assert [a["outcome"] for a in trace["actions"]] == ["accepted", "accepted"]
        assert all(a["duration_ms"] >= 0 for a in trace["actions"])
        assert trace["actions"][0]["at"].endswith("a.yaml:9")
        # the same value again is no change; closing and opening again fires again
        car.set(DOOR, True)
        car.set(VOLTAGE, 10.0)
        car.set(DOOR, False)
        car.set(DOOR, True)
        trace = await until(
            lambda: (t := last_trace(engine, "door_light")) and t["result"] == "conditions_not_met" and t
        )
        assert "is 10.0, wanted > 11" in trace["conditions"][0]["why"]
        assert car.sent(LIGHT) == [True]
    finally:
        await engine.stop()


async def test_threshold_with_hysteresis_fires_once_per_crossing(tmp_path: Path) -> None:
    engine, car = await started_engine(
        tmp_path,
        f"""
automations:
  - id: low_rail
    mode: queued
    triggers: [{{signal: {VOLTAGE}, below: 11.8, hysteresis: 0.3}}]
    actions: [{{notify: "12 V low"}}]
""",
    )
    try:
        for v in (12.4, 11.7, 11.9, 11.6, 11.95, 12.2, 11.5):
            car.set(VOLTAGE, v)
            await asyncio.sleep(0.02)
        await until(lambda: engine.counters["runs"] == 2)
        await asyncio.sleep(0.1)
        assert engine.counters["runs"] == 2  # 11.7 fires; 11.9/11.6/11.95 do not; 12.2 re-arms; 11.5 fires
        notes = [e for e in engine.events.recent(kind="automation_notify")]
        assert len(notes) == 2 and notes[0].message == "12 V low"
    finally:
        await engine.stop()


async def test_for_survives_a_short_unavailability_and_resets_after_the_grace(tmp_path: Path) -> None:
    engine, car = await started_engine(
        tmp_path,
        f"""
automations:
  - id: held_open
    triggers: [{{signal: {DOOR}, to: true, for: 1.0, grace: 0.2}}]
    actions: [{{actuate: {LIGHT}, value: true}}]
""",
    )
    try:
        car.set(DOOR, False)
        car.set(DOOR, True)
        await asyncio.sleep(0.1)
        car.set(DOOR, None)  # the door sensor drops out for less than the grace
        await asyncio.sleep(0.05)
        car.set(DOOR, True)
        await until(lambda: car.sent(LIGHT) == [True], what="the held-open light")
        trace = last_trace(engine, "held_open")
        assert trace is not None and trace["trigger"]["held_since"] > 0
        # now a drop-out longer than the grace resets the timer: no second fire
        car.set(DOOR, False)
        car.set(DOOR, True)
        car.set(DOOR, None)
        await asyncio.sleep(0.6)
        car.set(DOOR, True)
        await asyncio.sleep(1.2)  # past the for: had the drop-out not reset it
        assert car.sent(LIGHT) == [True]
        # and closing before the time is up cancels it
        car.set(DOOR, False)
        car.set(DOOR, True)
        await asyncio.sleep(0.1)
        car.set(DOOR, False)
        await asyncio.sleep(1.2)  # past the for: had it not been cancelled
        assert car.sent(LIGHT) == [True]
    finally:
        await engine.stop()


async def test_actions_delay_wait_choose_repeat_stop_and_outcomes(tmp_path: Path) -> None:
    engine, car = await started_engine(
        tmp_path,
        f"""
automations:
  - id: steps
    mode: restart
    variables: {{level: 30, rail: {{signal: {VOLTAGE}}}}}
    triggers: [{{signal: {DOOR}, to: true}}]
    actions:
      - if: [{{template: "rail > 12 and level == 30"}}]
        then: [{{actuate: {INTENSITY}, value: "{{{{ level + 10 }}}}"}}]
        else: [{{actuate: {INTENSITY}, value: 5}}]
      - repeat:
          count: 3
          sequence: [{{actuate: {LIGHT}, value: true}}]
      - delay: 0.05
      - wait:
          trigger: {{signal: {DOOR}, to: false}}
          timeout: 5
      - choose:
          - conditions: [{{trigger: nope}}]
            sequence: [{{notify: wrong}}]
        default: [{{notify: "door shut"}}]
      - actuate: Vehicle.Cabin.Light.Spotlight.Row1.DriverSide.Color
        value: red
        continue_on_error: true
      - stop: all done
      - notify: never
""",
    )
    car.refuse["Vehicle.Cabin.Light.Spotlight.Row1.DriverSide.Color"] = "no red in this light"
    try:
        car.set(VOLTAGE, 12.5)
        car.set(DOOR, False)
        car.set(DOOR, True)
        await until(lambda: len(car.sent(LIGHT)) == 3)
        assert car.sent(INTENSITY) == [40]
        await asyncio.sleep(0.1)
        car.set(DOOR, False)
        trace = await ended_trace(engine, "steps")
        assert trace["result"] == "stopped" and trace["reason"] == "all done"
        outcomes = [(a["where"], a["outcome"]) for a in trace["actions"]]
        assert ("actions[3]", "done") in outcomes  # the wait saw the door close
        assert ("actions[5]", "rejected") in outcomes  # continue_on_error: the run went on
        assert ("actions[6]", "stopped") in outcomes
        assert not any(a["action"] == "notify 'never'" for a in trace["actions"])
        assert [e.message for e in engine.events.recent(kind="automation_notify")] == ["door shut"]
    finally:
        await engine.stop()


async def test_failed_steps_timeouts_and_no_provider_are_traced_failures(tmp_path: Path) -> None:
    engine, car = await started_engine(
        tmp_path,
        f"""
automations:
  - id: hang
    triggers: [{{signal: {DOOR}, to: true}}]
    actions:
      - actuate: {LIGHT}
        value: true
        timeout: 0.2
      - notify: not reached
  - id: wait_times_out
    triggers: [{{signal: {DOOR}, to: true}}]
    actions:
      - wait: {{trigger: {{signal: {VOLTAGE}, above: 14}}, timeout: 0.1, continue_on_timeout: false}}
  - id: forever
    triggers: [{{signal: {DOOR}, to: true}}]
    actions:
      - repeat:
          while: [{{template: "1 == 1"}}]
          max: 50
          sequence: [{{notify: spin}}]
""",
    )
    car.hang.add(LIGHT)
    try:
        car.set(DOOR, False)
        car.set(DOOR, True)
        hang = await ended_trace(engine, "hang")
        assert hang["result"] == "failed"
        assert (
            hang["actions"][0]["outcome"] == "timed_out" and "did not answer" in hang["actions"][0]["detail"]
        )
        assert len(hang["actions"]) == 1
        waited = await ended_trace(engine, "wait_times_out")
        assert waited["result"] == "failed" and waited["actions"][0]["outcome"] == "timed out"
        spun = await ended_trace(engine, "forever")
        assert spun["result"] == "failed" and "cap of 50" in spun["reason"]
        # the provider goes away: no provider
        car.hang.clear()
        car.provider.close()
        broker = engine.broker
        other = broker.register_provider("doors", [DOOR])
        other.publish(DOOR, False)
        other.publish(DOOR, True)
        t = await until(lambda: (t := last_trace(engine, "hang")) and t["run_id"] != hang["run_id"] and t)
        assert t["actions"][0]["outcome"] == "no_provider"
    finally:
        await engine.stop()


@pytest.mark.parametrize(
    ("mode", "expected"), [("single", 1), ("restart", 3), ("queued", 3), ("parallel", 3)]
)
async def test_modes(tmp_path: Path, mode: str, expected: int) -> None:
    engine, car = await started_engine(
        tmp_path,
        f"""
automations:
  - id: moded
    mode: {mode}
    triggers: [{{signal: {VOLTAGE}}}]
    actions: [{{delay: 0.15}}, {{actuate: {LIGHT}, value: true}}]
""",
    )
    try:
        car.set(VOLTAGE, 12.0)
        for v in (12.1, 12.2, 12.3):
            car.set(VOLTAGE, v)
            await asyncio.sleep(0.02)
        lights = 1 if mode in ("single", "restart") else 3
        await until(
            lambda: (
                len(car.sent(LIGHT)) >= lights
                and len(ts := engine.traces("moded")) >= 3
                and all(t["result"] != "running" for t in ts)
            ),
            what=f"the three {mode} runs to end",
        )
        await asyncio.sleep(0.3)  # room for a wrong extra run (0.15 s delay) to show up
        results = [t["result"] for t in engine.traces("moded")]
        if mode == "single":
            assert results.count("done") == 1 and results.count("skipped") == 2
        elif mode == "restart":
            assert results.count("cancelled") == 2 and results.count("done") == 1
        else:
            assert results.count("done") == expected
        assert len(car.sent(LIGHT)) == (1 if mode in ("single", "restart") else 3)
    finally:
        await engine.stop()


async def test_a_loop_is_detected_and_stopped_with_a_clear_event(tmp_path: Path) -> None:
    engine, car = await started_engine(
        tmp_path,
        f"""
automations:
  - id: a_light_sets_intensity
    triggers: [{{signal: {LIGHT}}}]
    actions: [{{actuate: {INTENSITY}, value: "{{{{ if(Vehicle.Cabin.Light.Spotlight.Row1.DriverSide.IsLightOn, 80, 20) }}}}"}}]
  - id: b_intensity_sets_light
    triggers: [{{signal: {INTENSITY}}}]
    actions: [{{actuate: {LIGHT}, value: "{{{{ not Vehicle.Cabin.Light.Spotlight.Row1.DriverSide.IsLightOn }}}}"}}]
""",
    )
    try:
        car.set(INTENSITY, 50)
        car.set(LIGHT, False)
        car.set(LIGHT, True)  # someone switches the light on: a -> b -> a would go on forever
        loops = await until(lambda: engine.events.recent(kind="automation_loop"))
        assert (
            "a_light_sets_intensity -> b_intensity_sets_light -> a_light_sets_intensity" in loops[0].message
        )
        await asyncio.sleep(0.3)
        assert len(car.requests) == 2  # one a, one b, then stopped
        assert engine.counters["loops"] == 1
    finally:
        await engine.stop()


async def test_a_storm_is_rate_limited(tmp_path: Path) -> None:
    engine, car = await started_engine(
        tmp_path,
        f"""
automations:
  - id: stormy
    mode: parallel
    max: 100
    max_runs_per_minute: 60
    triggers: [{{signal: {VOLTAGE}}}]
    actions: [{{notify: tick}}]
""",
    )
    try:
        for i in range(200):
            car.set(VOLTAGE, 12 + i / 1000)
            if i % 20 == 0:
                await asyncio.sleep(0)
        await asyncio.sleep(0.2)
        assert engine.counters["runs"] <= 12
        assert engine.counters["rate_limited"] >= 180
        assert len(engine.events.recent(kind="automation_rate_limited")) == 1
    finally:
        await engine.stop()


async def test_scene_is_one_batch_with_one_outcome_per_signal(tmp_path: Path) -> None:
    engine, car = await started_engine(
        tmp_path,
        f"""
scenes:
  - id: night_delivery
    name: Night delivery
    targets:
      {LIGHT}: true
      {INTENSITY}: 20
      Vehicle.Cabin.Light.Spotlight.Row1.DriverSide.Color: red
automations:
  - id: on_unlock
    triggers: [{{signal: Vehicle.Cabin.Door.Row1.DriverSide.IsLocked, to: false}}]
    actions: [{{scene: night_delivery, continue_on_error: true}}, {{notify: welcome}}]
""",
    )
    car.refuse["Vehicle.Cabin.Light.Spotlight.Row1.DriverSide.Color"] = "no red"
    try:
        outcomes = await engine.acting.apply_scene(engine.scenes["night_delivery"])
        assert {p: o["outcome"] for p, o in outcomes.items()} == {
            LIGHT: "accepted",
            INTENSITY: "accepted",
            "Vehicle.Cabin.Light.Spotlight.Row1.DriverSide.Color": "rejected",
        }
        snap = engine.acting.snapshot("now", ["Vehicle.Cabin.Light.Spotlight.Row1.DriverSide"])
        assert snap["targets"] == {LIGHT: True, INTENSITY: 20}
        car.set("Vehicle.Cabin.Door.Row1.DriverSide.IsLocked", True)
        car.set("Vehicle.Cabin.Door.Row1.DriverSide.IsLocked", False)
        trace = await until(lambda: (t := last_trace(engine, "on_unlock")) and t["result"] == "done" and t)
        assert trace["actions"][0]["outcome"] == "partly"
        assert trace["actions"][0]["outcomes"][INTENSITY]["outcome"] == "accepted"
    finally:
        await engine.stop()


async def test_dry_run_says_what_would_happen_without_acting(tmp_path: Path) -> None:
    engine, car = await started_engine(
        tmp_path,
        f"""
automations:
  - id: slow_light
    triggers: [{{signal: {DOOR}, to: true}}]
    conditions: [{{signal: Vehicle.Speed, below: 1}}, {{signal: {DOOR}, equals: true, for: 60}}]
    actions:
      - if: [{{signal: {VOLTAGE}, above: 12}}]
        then: [{{actuate: {LIGHT}, value: true}}]
        else: [{{notify: low}}]
      - delay: 600
""",
    )
    try:
        trace = await engine.dry_run("slow_light", {"Vehicle.Speed": 0.0, DOOR: True, VOLTAGE: 12.5})
        assert trace["dry_run"] and trace["result"] == "done"
        assert [c["result"] for c in trace["conditions"]] == [True, True]
        assert "assumed" in trace["conditions"][1]["why"]
        assert [a["outcome"] for a in trace["actions"]] == ["done", "would actuate", "would wait"]
        assert car.requests == []
        trace = await engine.dry_run("slow_light", {"Vehicle.Speed": 30.0})
        assert trace["result"] == "conditions_not_met"
    finally:
        await engine.stop()


async def test_geofence_enter_and_leave(tmp_path: Path) -> None:
    engine, car = await started_engine(
        tmp_path,
        """
automations:
  - id: depot
    mode: queued
    triggers:
      - {id: in, event: enter, geofence: {name: depot, circle: {latitude: 22.5, longitude: 114.0, radius_m: 200}}}
      - {id: out, event: leave, geofence: {name: yard, polygon: [[22.49, 113.99], [22.49, 114.01], [22.51, 114.01], [22.51, 113.99]]}}
    actions: [{notify: "{{ trigger }}"}]
""",
    )
    try:
        car.set(LAT, 22.6)
        car.set(LON, 114.0)
        await asyncio.sleep(0.05)
        car.set(LAT, 22.5005)  # ~55 m from the centre: inside both
        await asyncio.sleep(0.05)
        car.set(LAT, 22.52)  # out of both
        await until(lambda: engine.counters["runs"] == 2)
        triggers = [t["trigger"]["id"] for t in reversed(engine.traces("depot"))]
        assert triggers == ["in", "out"]
    finally:
        await engine.stop()


async def test_time_of_day_follows_the_wall_clock_and_a_jump_fires_once(tmp_path: Path) -> None:
    import time as _time

    clock = {"offset": 0.0}

    def wall() -> float:
        return _time.time() + clock["offset"]

    local = _time.localtime(wall() + 3600)
    at = f"{local.tm_hour:02d}:{local.tm_min:02d}"
    engine, car = await started_engine(
        tmp_path,
        f"""
automations:
  - id: morning
    triggers: [{{time: "{at}"}}]
    actions: [{{actuate: {LIGHT}, value: true}}]
  - id: ticking
    mode: parallel
    triggers: [{{every: 1}}]
    actions: [{{notify: tick}}]
""",
        wall=wall,
    )
    try:
        await asyncio.sleep(0.2)
        assert car.sent(LIGHT) == []
        clock["offset"] = 3 * 3600  # the clock jumps three hours ahead: the 1-hour time passed once
        await until(lambda: car.sent(LIGHT) == [True], what="the time trigger after the jump")
        await asyncio.sleep(1.3)
        assert car.sent(LIGHT) == [True]
        assert engine.counters["runs"] >= 2  # the interval ticked too
    finally:
        await engine.stop()


async def test_driving_state_and_accessory_triggers_from_the_policy(tmp_path: Path) -> None:
    broker = SignalBroker()
    car = FakeCar(broker, [LIGHT, "Vehicle.Speed", "Vehicle.Powertrain.Transmission.SelectedGear"])
    policy = PolicyEngine(broker)
    await policy.start()
    engine = Engine(broker, policy=policy)
    engine.load_paths(
        [
            write(
                tmp_path,
                "d.yaml",
                f"""
automations:
  - id: drive_off
    triggers: [{{driving_state: moving, from: parked}}]
    conditions: [{{driving_state: moving}}]
    actions: [{{actuate: {LIGHT}, value: false}}]
  - id: cooler_gone
    triggers: [{{accessory: removed, instance: Cooler1}}]
    actions: [{{notify: "cooler removed"}}]
""",
            )
        ]
    )
    await engine.start()
    try:
        car.set("Vehicle.Powertrain.Transmission.SelectedGear", 126)
        car.set("Vehicle.Speed", 0.0)
        await until(lambda: str(policy.driving_state) == "parked")
        car.set("Vehicle.Powertrain.Transmission.SelectedGear", 127)
        car.set("Vehicle.Speed", 30.0)
        await until(lambda: car.sent(LIGHT) == [False], what="drive-off trigger")
        policy.events.log("removed", "Cooler1", "Cooler1 removed from cab_socket_12v: test")
        await until(lambda: engine.events.recent(kind="automation_notify"))
    finally:
        await engine.stop()
        await policy.stop()


async def test_runs_act_with_the_owners_grant_checked_at_every_actuation(tmp_path: Path) -> None:
    from anycar.policy.privileges import Grant, Privilege

    broker = SignalBroker()
    car = FakeCar(broker)
    policy = PolicyEngine(broker)
    policy.grant(Grant("Fan1", "accessory", Privilege.OPERATE, actuates=(LIGHT,)))
    policy.grant_app("lights_app", Privilege.OPERATE, actuates=[INTENSITY])
    engine = Engine(broker, policy=policy)
    text = f"""
automations:
  - id: by_accessory
    owner: Fan1
    triggers: [{{signal: {DOOR}, to: true}}]
    actions: [{{actuate: {LIGHT}, value: true}}]
  - id: by_app
    owner: lights_app
    triggers: [{{signal: {DOOR}, to: true}}]
    actions: [{{actuate: {INTENSITY}, value: 30}}]
"""
    assert engine.load_paths([write(tmp_path, "g.yaml", text)]) == []
    await engine.start()
    try:
        car.set(DOOR, False)
        car.set(DOOR, True)
        await until(lambda: car.sent(LIGHT) == [True] and car.sent(INTENSITY) == [30])
        who = {r.path: r.requester for r in car.requests}
        assert who == {
            LIGHT: "accessory:Fan1",
            INTENSITY: "automation:by_app",
        }  # the broker's guard sees an accessory
        policy.grants.drop("lights_app")  # the app's grant is withdrawn while the automation is loaded
        car.set(DOOR, False)
        car.set(DOOR, True)
        trace = await until(
            lambda: (t := last_trace(engine, "by_app")) and t["result"] == "failed" and t,
            what="a refused run",
        )
        assert trace["actions"][0]["outcome"] == "refused" and "has no grant" in trace["actions"][0]["detail"]
        assert any("by_app may not set" in e.message for e in policy.events.recent(kind="refusal"))
        assert car.sent(INTENSITY) == [30]
    finally:
        await engine.stop()


async def test_sunset_at_the_cars_own_position_and_after_dark(tmp_path: Path) -> None:
    import datetime as dt
    import time as _time

    from anycar.automations.place import sun_times

    lat, lon = 22.54, 114.06  # Shenzhen
    today = sun_times(lat, lon, dt.datetime.now(dt.UTC).date())
    clock = {"offset": today["sunset"] - 1.0 - _time.time()}  # one second before today's sunset

    def wall() -> float:
        return _time.time() + clock["offset"]

    broker = SignalBroker()
    car = FakeCar(broker)
    car.set(LAT, lat)
    car.set(LON, lon)
    engine = Engine(broker, wall=wall)
    text = f"""
automations:
  - id: at_sunset
    triggers: [{{sun: sunset}}]
    actions: [{{actuate: {LIGHT}, value: true}}]
  - id: after_dark
    triggers: [{{signal: {DOOR}, to: true}}]
    conditions: [{{sun: {{after: sunset, before: sunrise}}}}]
    actions: [{{actuate: {INTENSITY}, value: 10}}]
"""
    assert engine.load_paths([write(tmp_path, "sun.yaml", text)]) == []
    await engine.start()
    try:
        car.set(DOOR, False)
        car.set(DOOR, True)  # still daylight
        t = await ended_trace(engine, "after_dark")
        assert t["result"] == "conditions_not_met" and "it is not after sunset" in t["conditions"][0]["why"]
        await until(lambda: car.sent(LIGHT) == [True], what="the sunset trigger")
        car.set(DOOR, False)
        car.set(DOOR, True)  # now after sunset
        await until(lambda: car.sent(INTENSITY) == [10], what="the after-dark condition")
    finally:
        await engine.stop()


async def test_has_been_true_for_counts_from_when_the_condition_started_to_hold(tmp_path: Path) -> None:
    engine, car = await started_engine(
        tmp_path,
        f"""
automations:
  - id: standing
    triggers: [{{signal: {DOOR}, to: true}}]
    conditions: [{{signal: Vehicle.Speed, below: 1, for: 0.4}}]
    actions: [{{actuate: {LIGHT}, value: true}}]
""",
    )
    try:
        car.set("Vehicle.Speed", 20.0)
        car.set(DOOR, False)
        await asyncio.sleep(0.05)
        car.set("Vehicle.Speed", 0.0)
        car.set(DOOR, True)
        t = await ended_trace(engine, "standing")
        assert t["result"] == "conditions_not_met" and "but only for" in t["conditions"][0]["why"]
        await asyncio.sleep(0.5)
        car.set(DOOR, False)
        car.set(DOOR, True)
        await until(lambda: car.sent(LIGHT) == [True])
        assert ">= 0.4 s" in last_trace(engine, "standing")["conditions"][0]["why"]
    finally:
        await engine.stop()
