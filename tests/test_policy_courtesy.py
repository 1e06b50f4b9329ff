"""Courtesy lighting, the rule itself: with the ignition off a lamp may run for a bounded time
after a door opens or the car is unlocked, within the budget, never on a low 12 V rail or
traction battery; everything else of its class stays shed. The policy is driven batch by batch
on a clock the test moves, and every decision is read back from the loads, the status and the
event log."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from anycar.broker import SignalBroker
from anycar.broker.datapoint import Datapoint
from anycar.errors import ConfigError
from anycar.policy import PolicyEngine, PowerConfig, Priority
from anycar.policy.courtesy import CourtesyConfig
from helpers_accessories import ManualClock

IGN = "Vehicle.LowVoltageSystemState"
VOLT = "Vehicle.LowVoltageBattery.CurrentVoltage"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
DOOR = "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen"
REAR_DOOR = "Vehicle.Cabin.Door.Row2.PassengerSide.IsOpen"
LOCK = "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked"
TRUNK = "Vehicle.Body.Trunk.Rear.IsOpen"


def feed(policy: PolicyEngine, **values: Any) -> None:
    names = {
        "ign": IGN,
        "volt": VOLT,
        "soc": SOC,
        "door": DOOR,
        "rear": REAR_DOOR,
        "lock": LOCK,
        "trunk": TRUNK,
    }
    policy.apply([Datapoint(names[k], v, 0.0) for k, v in values.items()])


def engine(clock: ManualClock, **courtesy: Any) -> PolicyEngine:
    power = PowerConfig.from_dict({"courtesy": courtesy}, "test") if courtesy else PowerConfig.default()
    policy = PolicyEngine(SignalBroker(), power=power, clock=clock)
    feed(policy, ign="ON", volt=12.6, soc=70.0, door=False, rear=False, lock=True, trunk=False)
    return policy


def lamp(policy: PolicyEngine, name: str = "Light1", peak_w: float = 6.0) -> None:
    policy.register_load(name, Priority.COMFORT, families=["light"], peak_w=peak_w)


def test_a_door_opening_with_the_ignition_off_lights_the_lamp_for_the_bounded_time() -> None:
    clock = ManualClock()
    policy = engine(clock)
    lamp(policy)
    policy.register_load("Fan1", Priority.COMFORT, families=["fan"], peak_w=5.0)
    feed(policy, ign="OFF")
    assert policy.load("Light1").shed_reason == "ignition is OFF"  # type: ignore[union-attr]

    clock.t += 2
    feed(policy, door=True)
    light, fan = policy.load("Light1"), policy.load("Fan1")
    assert light is not None and fan is not None
    assert not light.shed and light.courtesy is not None
    assert "Vehicle.Cabin.Door.Row1.DriverSide opened with ignition OFF" in light.courtesy
    assert fan.shed and fan.courtesy is None  # a fan is no courtesy light
    status = policy.status()["power"]["courtesy"]
    assert status["open"] and status["lit"] == ["Light1"] and status["left_s"] == 600.0
    assert status["until"] == pytest.approx(clock.time() + 600)
    opened = policy.events.recent(kind="courtesy")
    assert len(opened) == 1 and "for 600 s" in opened[0].message and opened[0].data["ignition"] == "OFF"
    restored = policy.events.recent(kind="restore", subject="Light1")
    assert len(restored) == 1 and "restored for courtesy lighting" in restored[0].message
    assert (
        policy.courtesy_of("Vehicle.Cabin.Light.Spotlight.Row1.DriverSide.IsLightOn") is None
    )  # no provider

    clock.t += 599
    feed(policy, door=False)  # closing a door is no trigger, the window goes on
    assert not policy.load("Light1").shed  # type: ignore[union-attr]
    clock.t += 1
    feed(policy, volt=12.5)  # any update after the bound finds the window over
    light = policy.load("Light1")
    assert light is not None and light.shed and light.courtesy is None
    assert light.shed_reason.startswith("ignition is OFF; courtesy lighting over (600 s after")  # type: ignore[union-attr]
    assert policy.events.recent(kind="shed", subject="Light1")[-1].data["reason"] == light.shed_reason
    assert not policy.status()["power"]["courtesy"]["open"]


def test_the_latest_trigger_restarts_the_window_and_unlock_and_tailgate_count() -> None:
    clock = ManualClock()
    policy = engine(clock)
    lamp(policy)
    feed(policy, ign="LOCK")
    feed(policy, lock=False)  # unlocked with the key fob: the lamp greets the driver
    assert "DriverSide unlocked with ignition LOCK" in (policy.load("Light1").courtesy or "")  # type: ignore[union-attr]
    clock.t += 500
    feed(policy, trunk=True)  # the tailgate opens: 600 s from now
    clock.t += 500
    feed(policy, volt=12.5)
    assert not policy.load("Light1").shed  # type: ignore[union-attr]
    clock.t += 100
    feed(policy, volt=12.5)
    assert policy.load("Light1").shed  # type: ignore[union-attr]


def test_ignition_on_ends_the_window_and_only_a_change_with_ignition_off_opens_one() -> None:
    clock = ManualClock()
    policy = engine(clock)
    lamp(policy)
    feed(policy, door=True)  # ignition on: not shed anyway, and no window
    feed(policy, ign="OFF")
    assert policy.load("Light1").shed  # type: ignore[union-attr]  # the door was open before: no trigger
    feed(policy, door=False)
    feed(policy, door=True)
    assert not policy.load("Light1").shed  # type: ignore[union-attr]
    feed(policy, ign="ON")
    light = policy.load("Light1")
    assert light is not None and not light.shed and light.courtesy is None
    feed(policy, ign="OFF")  # switched off again with the door still open: no new window
    assert policy.load("Light1").shed_reason == "ignition is OFF"  # type: ignore[union-attr]


def test_never_on_a_low_12v_rail_or_traction_battery() -> None:
    clock = ManualClock()
    policy = engine(clock)
    lamp(policy)
    feed(policy, ign="OFF")
    feed(policy, door=True)
    assert not policy.load("Light1").shed  # type: ignore[union-attr]
    feed(policy, volt=11.7)  # low (entertainment level): the courtesy light goes too
    light = policy.load("Light1")
    assert light is not None and light.shed
    assert "no courtesy lighting while the 12 V rail or traction battery is low" in (light.shed_reason or "")
    feed(policy, volt=11.9)  # above 11.8 V but not by the 0.3 V margin: still low
    assert policy.load("Light1").shed  # type: ignore[union-attr]
    feed(policy, volt=12.2)
    assert not policy.load("Light1").shed  # type: ignore[union-attr]  # inside the window again
    feed(policy, soc=12.0)  # traction battery low
    assert policy.load("Light1").shed  # type: ignore[union-attr]
    feed(policy, soc=40.0, volt=11.2)  # critical 12 V rail
    assert "12 V rail" in (policy.load("Light1").shed_reason or "")  # type: ignore[union-attr]


def test_the_budget_bounds_how_much_lighting_runs_and_a_freed_share_goes_to_the_next() -> None:
    clock = ManualClock()
    policy = engine(clock, max_w=10)
    lamp(policy, "Light1", 6.0)
    lamp(policy, "Light2", 6.0)
    lamp(policy, "Light3", 4.0)
    feed(policy, ign="OFF")
    feed(policy, rear=True)
    light1, light2, light3 = (policy.load(n) for n in ("Light1", "Light2", "Light3"))
    assert light1 is not None and light2 is not None and light3 is not None
    assert not light1.shed and not light3.shed  # 6 + 4 W within 10 W, in fitting order
    assert light2.shed and "over the 10 W courtesy lighting budget (6 W in use, 6 W more)" in (
        light2.shed_reason or ""
    )
    policy.unregister_load("Light1")
    assert not policy.load("Light2").shed  # type: ignore[union-attr]


def test_async_the_window_ends_on_the_hubs_clock_without_another_update() -> None:
    async def main() -> None:
        clock = ManualClock()
        policy = engine(clock, duration_s=60)
        lamp(policy)
        heard: list[bool] = []
        policy._listeners["Light1"] = lambda status: heard.append(status.shed)
        feed(policy, ign="OFF")
        feed(policy, door=True)
        assert heard == [True, False]
        clock.t += 60
        await asyncio.sleep(0.2)  # 60 clock seconds are 0.06 s of the loop at this clock's rate
        assert heard == [True, False, True]
        assert "courtesy lighting over (60 s after" in (policy.load("Light1").shed_reason or "")  # type: ignore[union-attr]
        await policy.stop()

    asyncio.run(main())


def test_the_rule_is_data_and_bad_data_is_one_clear_line() -> None:
    cfg = PowerConfig.default().courtesy
    assert cfg.families == ("light",) and cfg.duration_s == 600 and cfg.max_w == 12
    assert {(t.pattern, t.to) for t in cfg.triggers} >= {
        ("Vehicle.Cabin.Door.*.*.IsOpen", True),
        ("Vehicle.Cabin.Door.*.*.IsLocked", False),
    }
    brand = PowerConfig.from_dict({"courtesy": {"duration_s": 120}}, "mounts.yaml: power")
    assert brand.courtesy.duration_s == 120 and brand.courtesy.triggers == cfg.triggers  # the rest inherited
    off = PowerConfig.from_dict({"courtesy": {"families": []}}, "test")
    policy = PolicyEngine(SignalBroker(), power=off, clock=ManualClock())
    lamp(policy)
    feed(policy, ign="OFF", door=False)
    feed(policy, door=True)
    assert policy.load("Light1").shed  # type: ignore[union-attr]  # no family counts: no exception
    for bad, message in (
        ({"duration_s": -1}, r"test\.courtesy\.duration_s: must be a number >= 0"),
        ({"duration_s": 7200}, r"at most 3600 s"),
        ({"families": "light"}, r"test\.courtesy\.families: must be a list"),
        ({"triggers": [{"signal": "Vehicle.Cabin.Door.*.*.IsOpen"}]}, r"test\.courtesy\.triggers\[0\]"),
        ({"lamps": 1}, r"test\.courtesy: unknown key\(s\) lamps"),
        ({"triggers": [{"signal": "Vehicle..Door", "to": True}]}, r"triggers\[0\]\.signal: empty segment"),
    ):
        with pytest.raises(ConfigError, match=message):
            PowerConfig.from_dict({"courtesy": bad}, "test")
    with pytest.raises(ConfigError, match="must be a mapping"):
        CourtesyConfig.from_dict([], "test")


def test_the_documented_rule_is_the_shipped_one() -> None:
    """docs/accessories.md shows the courtesy block of policy.yaml: it must not drift from it."""
    import re
    from pathlib import Path

    import yaml

    from anycar.policy import config

    doc = (Path(__file__).parents[1] / "docs" / "accessories.md").read_text("utf-8")
    section = doc[doc.index("### Courtesy lighting") :]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block is not None
    assert yaml.safe_load(block.group(1))["courtesy"] == config.defaults()["power"]["courtesy"]


def test_the_cabin_activity_panel_names_a_courtesy_window_for_what_it_is(tmp_path: Any) -> None:
    """The dashboard's Activity panel: the window opening is ``courtesy``, the lamp's own
    switch-back-on ``restored`` (both happened; only one is a restore)."""
    from anycar.brands import load_profile
    from anycar.hub.cabin import CabinComponent

    clock = ManualClock()
    policy = engine(clock)
    lamp(policy)
    feed(policy, ign="OFF")
    feed(policy, door=True)
    cabin = CabinComponent(load_profile("xiaomi_su7"), tmp_path / "hub.sqlite3")
    cabin.policy = policy
    shown = {e["event"]: e for e in cabin.events(limit=20)["events"]}
    assert shown["courtesy"]["kind"] == "courtesy"
    assert shown["courtesy"]["message"].startswith("courtesy lighting (light, up to 12 W) for 600 s")
    assert shown["restore"]["kind"] == "restored" and shown["restore"]["accessory"] == "Light1"
