"""The car stays in control, end to end: the policy reads speed, gear, 12 V and ignition from
the broker; accessories connected over WebSocket are told restrictions, shed and restored; every
decision is in the event log (memory and database)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from anycar.accessories.sdk import HubError
from anycar.broker import ActuationStatus
from anycar.policy import DrivingState, EventLog
from helpers_accessories import ManualClock, fit, make, running_hub, until

SPEED = "Vehicle.Speed"
GEAR = "Vehicle.Powertrain.Transmission.SelectedGear"
VOLT = "Vehicle.LowVoltageBattery.CurrentVoltage"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
IGN = "Vehicle.LowVoltageSystemState"
DOOR = "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen"


async def test_display_in_drivers_view_gets_no_video_or_keyboard_while_moving(tmp_path: Path) -> None:
    async with running_hub(tmp_path / "hub.sqlite3") as hub:
        car: Any = hub.feed()
        car.publish_many([(SPEED, 0.0), (GEAR, 126), (VOLT, 12.6), (IGN, "ON")])
        front = make("dash_display", hub, "D-1")
        rear = make("dash_display", hub, "D-2")
        rec = await fit(hub, front, "screen_edge_top")  # driver's view
        rec_rear = await fit(hub, rear, "seat_back_driver", instance="RearDisplay")
        await until(lambda: front.driving_state == "parked")
        assert front.restrictions == []
        r = await hub.broker.actuate(rec.paths["ContentType"], "VIDEO")
        assert r.ok

        car.publish_many([(SPEED, 60.0), (GEAR, 127)])
        await until(lambda: "NO_VIDEO" in front.restrictions)
        assert front.driving_state == "moving"
        assert {"NO_VIDEO", "NO_KEYBOARD", "LIMIT_STRING_LENGTH"} <= set(front.restrictions)
        await until(lambda: front.values.get("ContentType") == "NONE")  # it stopped its video when told
        refused = await hub.broker.actuate(rec.paths["ContentType"], "VIDEO", requester="media-app")
        assert refused.status is ActuationStatus.REJECTED and refused.reason.startswith("NO_VIDEO")
        too_long = await hub.broker.actuate(rec.paths["Text"], "x" * 500)
        assert too_long.status is ActuationStatus.REJECTED and "LIMIT_STRING_LENGTH" in too_long.reason
        with pytest.raises(HubError) as info:
            await front.type_text("hello")  # type: ignore[attr-defined]
        assert info.value.reason == "restricted" and info.value.field == "values.KeyboardInput"
        # the rear-seat display is not in the driver's view: unrestricted
        assert rear.restrictions == [] and rear.driving_state in ("parked", "moving")
        assert (await hub.broker.actuate(rec_rear.paths["ContentType"], "VIDEO")).ok
        await rear.type_text("rear seat typing")  # type: ignore[attr-defined]

        car.publish_many([(SPEED, 0.0), (GEAR, 126)])
        await until(lambda: front.restrictions == [] and front.driving_state == "parked")
        await front.type_text("parked now")  # type: ignore[attr-defined]
        assert hub.broker.get(rec.paths["KeyboardInput"]).value == "parked now"  # type: ignore[union-attr]
        told = hub.manager.events.recent(kind="restriction", subject=rec.instance)
        assert len(told) >= 2
        refusals = [e.message for e in hub.manager.events.recent(kind="refusal", subject=rec.instance)]
        assert any("NO_VIDEO" in m for m in refusals) and any("NO_KEYBOARD" in m for m in refusals)
        states = [e.message for e in hub.manager.events.recent(kind="driving_state")]
        assert any("parked -> moving" in m for m in states)
        for acc in (front, rear):
            await acc.stop()


async def test_low_12v_sheds_by_priority_and_restores(tmp_path: Path) -> None:
    async with running_hub(tmp_path / "hub.sqlite3") as hub:
        car: Any = hub.feed()
        car.publish_many([(SPEED, 0.0), (GEAR, 126), (VOLT, 12.6), (IGN, "ON"), (SOC, 80.0)])
        speaker = make("headrest_speaker", hub, "S-1")  # entertainment
        fan = make("clip_fan", hub, "F-1")  # comfort
        camera = make("cabin_camera", hub, "C-1")  # essential
        rec_s = await fit(hub, speaker, "console_usb_c_2")
        rec_f = await fit(hub, fan, "dash_mount_left")
        await fit(hub, camera, "dash_mount_centre")
        await fit(
            hub, make("cabin_camera", hub, "C-2"), "ceiling_mount_rear", priority="safety", instance="Dashcam"
        )
        assert all(a.power == "on" for a in (speaker, fan, camera))

        car.publish(VOLT, 11.6)
        await until(lambda: speaker.power == "shed")
        assert fan.power == "on" and camera.power == "on"
        assert "12 V rail low" in speaker.power_reason
        assert hub.broker.get("Vehicle.Accessories.Speaker1.Status").value == "SHED"  # type: ignore[union-attr]
        r = await hub.broker.actuate(rec_s.paths["Volume"], 50)
        assert r.status is ActuationStatus.REJECTED and "shed" in r.reason

        car.publish(VOLT, 11.2)
        await until(lambda: fan.power == "shed")
        await until(lambda: fan.values.get("FanSpeed") == 0)  # the fan stopped itself
        assert camera.power == "on"

        car.publish(VOLT, 10.5)
        await until(lambda: camera.power == "shed")
        dashcam = hub.manager.fitted["Dashcam"]
        assert dashcam.load is not None and not dashcam.load.shed  # safety is never shed

        car.publish(VOLT, 12.6)
        await until(lambda: all(a.power == "on" for a in (speaker, fan, camera)))
        assert (await hub.broker.actuate(rec_f.paths["FanSpeed"], 30)).ok

        sheds = {e.subject for e in hub.manager.events.recent(kind="shed")}
        restores = {e.subject for e in hub.manager.events.recent(kind="restore")}
        assert sheds == restores == {"Speaker1", "Fan1", "Camera1"}
        for acc in (speaker, fan, camera):
            await acc.stop()
    # the decisions are in the database after the hub stopped
    log = EventLog(tmp_path / "hub.sqlite3")
    assert {e.subject for e in log.history(kind="shed")} == {"Speaker1", "Fan1", "Camera1"}
    assert any("refused" in e.message for e in log.history(kind="refusal", subject="Speaker1"))
    log.close()


async def test_ignition_off_and_low_traction_battery(tmp_path: Path) -> None:
    clock = ManualClock()  # the hub's clock: courtesy lighting's 600 s pass when the test says
    async with running_hub(tmp_path / "hub.sqlite3", profile="kaiyun_pickman", clock=clock) as hub:
        car: Any = hub.feed()
        car.publish_many([(SPEED, 0.0), (GEAR, 126), (VOLT, 12.8), (IGN, "ON"), (SOC, 70.0), (DOOR, False)])
        cargo = make("cargo_sensor", hub, "K-1")  # essential
        lamp = make("cabin_light", hub, "L-1")  # comfort, on the cab roof rail
        fan = make("clip_fan", hub, "F-1")  # comfort, and no courtesy light
        await fit(hub, cargo, "bed_rail_rear_left")
        rec_l = await fit(hub, lamp, "cab_roof_rail")
        await fit(hub, fan, "cab_usb_c")
        assert rec_l.paths["IsLightOn"] == "Vehicle.Accessories.Light1.IsLightOn"  # no row/side on the roof
        car.publish(IGN, "OFF")
        await until(lambda: lamp.power == "shed" and fan.power == "shed")
        assert lamp.power_reason == "ignition is OFF" and cargo.power == "on"  # deliveries keep their sensors
        assert hub.policy.driving_state is DrivingState.PARKED
        refused = await hub.broker.actuate(rec_l.paths["IsLightOn"], True)
        assert refused.status is ActuationStatus.REJECTED and "shed" in refused.reason
        # switching it off is what shedding asks anyway: never refused for want of power
        assert (await hub.broker.actuate(rec_l.paths["IsLightOn"], False)).ok
        dim = await hub.broker.actuate(rec_l.paths["Intensity"], 10)
        assert (
            dim.status is ActuationStatus.REJECTED and "shed" in dim.reason
        )  # only its working signal stands down

        # courtesy lighting: the driver opens the door with the ignition off, the lamp may run
        car.publish(DOOR, True)
        await until(lambda: lamp.power == "on")
        assert fan.power == "shed"  # a fan is not courtesy lighting
        assert (await hub.broker.actuate(rec_l.paths["IsLightOn"], True)).ok
        assert lamp.values["IsLightOn"] is True
        assert "courtesy lighting" in (hub.policy.courtesy_of(rec_l.paths["IsLightOn"]) or "")
        restored = hub.manager.events.recent(kind="restore", subject="Light1")
        assert restored and "restored for courtesy lighting" in restored[-1].message
        assert hub.policy.status()["power"]["courtesy"]["lit"] == ["Light1"]
        # ... for the bounded time on the hub's clock: then it is shed, and turns itself off
        clock.t += 601
        await until(lambda: lamp.power == "shed" and lamp.values["IsLightOn"] is False)
        assert "courtesy lighting over (600 s after" in lamp.power_reason
        # ... and never on a low 12 V rail, even inside a new window
        car.publish(DOOR, False)
        car.publish(DOOR, True)
        await until(lambda: lamp.power == "on")
        car.publish(VOLT, 11.6)
        await until(lambda: lamp.power == "shed")
        assert "no courtesy lighting while the 12 V rail or traction battery is low" in lamp.power_reason
        car.publish(VOLT, 12.8)
        await until(lambda: lamp.power == "on")  # rail back (past the margin), window still open
        car.publish(IGN, "ON")
        await until(lambda: lamp.power == "on")
        car.publish(SOC, 8.0)  # PICKMAN profile: low at 20 % (entertainment), critical at 10 % (comfort)
        await until(lambda: lamp.power == "shed")
        assert "traction battery low" in lamp.power_reason
        car.publish(SOC, 30.0)
        await until(lambda: lamp.power == "on")
        await cargo.open_door(True)  # type: ignore[attr-defined]
        await cargo.load(12.5)  # type: ignore[attr-defined]
        await until(
            lambda: (
                (dp := hub.broker.get("Vehicle.Accessories.Cargo1.Weight")) is not None and dp.value == 12.5
            )
        )
        assert hub.broker.get("Vehicle.Accessories.Cargo1.IsOpen").value is True  # type: ignore[union-attr]
        for acc in (cargo, lamp, fan):
            await acc.stop()


async def test_accessory_actuates_only_what_its_grant_names(tmp_path: Path) -> None:
    async with running_hub(tmp_path / "hub.sqlite3") as hub:
        dome: list[bool] = []

        def on_dome(req: Any) -> None:
            dome.append(req.value)

        hub.broker.register_provider("body", ["Vehicle.Cabin.Light.IsDomeOn"], on_actuate=on_dome)
        panel = make("button_panel", hub, "B-1")
        await fit(hub, panel, "dash_mount_right")
        result = await panel.press("B1")  # type: ignore[attr-defined]
        assert result["ok"] is True and dome == [True]
        with pytest.raises(HubError, match="safety-critical") as info:
            await panel.actuate("Vehicle.Body.Lights.Hazard.IsSignaling", True)
        assert info.value.code == 403
        with pytest.raises(HubError, match="does not name actuator"):
            await panel.actuate("Vehicle.Cabin.Light.IsGloveBoxOn", True)
        with pytest.raises(HubError, match="unknown path"):
            await panel.actuate("Vehicle.Cabin.Light.IsDisco", True)

        viewer = make("button_panel", hub, "B-2")
        await fit(
            hub,
            viewer,
            "dash_mount_left",
            privilege="View",
            actuates=["Vehicle.Cabin.Light.IsDomeOn", "Vehicle.Body.Lights.Hazard.IsSignaling"],
        )
        with pytest.raises(HubError, match="needs Operate"):
            await viewer.press("B1")  # type: ignore[attr-defined]
        assert any(
            "grant of Vehicle.Body.Lights.Hazard.IsSignaling refused" in e.message
            for e in hub.manager.events.recent(kind="refusal")
        )
        assert hub.manager.registry.get("ButtonPanel2").actuates == []  # type: ignore[union-attr]
        for acc in (panel, viewer):
            await acc.stop()


async def test_accessory_reads_only_what_its_grant_names(tmp_path: Path) -> None:
    async with running_hub(tmp_path / "hub.sqlite3") as hub:
        car: Any = hub.feed()
        car.publish(SOC, 64.0)
        gauge = make("dial_gauge", hub, "G-1")
        rec = await fit(hub, gauge, "dash_mount_left")
        await until(lambda: (dp := hub.broker.get(rec.paths["Value"])) is not None and dp.value == 64.0)
        car.publish(SOC, 63.5)
        await until(lambda: hub.broker.get(rec.paths["Value"]).value == 63.5)  # type: ignore[union-attr]
        with pytest.raises(HubError, match=r"does not name Vehicle\.Speed for reading"):
            await gauge.subscribe(["Vehicle.Speed"], lambda values: None)
        assert (await hub.broker.actuate(rec.paths["Value"], 10.0)).ok
        await asyncio.sleep(0.05)
        await gauge.stop()


async def test_policy_engine_status_and_app_grants(tmp_path: Path) -> None:
    async with running_hub(tmp_path / "hub.sqlite3") as hub:
        car: Any = hub.feed()
        car.publish_many([(SPEED, 35.0), (GEAR, 127), (VOLT, 11.7)])
        await until(lambda: hub.policy.driving_state is DrivingState.MOVING)
        status = hub.policy.status()
        assert status["driving_state"] == "moving" and "NO_VIDEO" in status["restrictions"]
        await until(lambda: "entertainment" in hub.policy.status()["power"]["shed"])
        from anycar.policy import PermissionDenied, Privilege

        hub.policy.grant_app("climate-app", Privilege.OPERATE, actuates=["Vehicle.Cabin.HVAC.**"])
        hub.policy.check_actuate("climate-app", "Vehicle.Cabin.HVAC.Station.Row1.Driver.FanSpeed")
        with pytest.raises(PermissionDenied):
            hub.policy.check_actuate("climate-app", "Vehicle.Cabin.Light.IsDomeOn")
        with pytest.raises(PermissionDenied, match="no grant"):
            hub.policy.check_actuate("stranger", "Vehicle.Cabin.Light.IsDomeOn")
        assert len(hub.manager.events.recent(kind="refusal")) == 2
