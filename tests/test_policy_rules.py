"""Policy rules without a hub: privileges, safety-critical branches, driving state and UX
restrictions per speed range, load shedding with hysteresis, the event log."""

from __future__ import annotations

from pathlib import Path

import pytest

from anycar.errors import ConfigError
from anycar.model import Catalog
from anycar.policy import (
    AccessControl,
    DrivingConfig,
    DrivingState,
    EventLog,
    Grant,
    GrantStore,
    PermissionDenied,
    PowerConfig,
    PowerMonitor,
    Priority,
    Privilege,
)
from anycar.policy.ux import violation


def test_privileges_are_ordered_and_parse() -> None:
    assert Privilege.VIEW < Privilege.OPERATE < Privilege.MANAGE < Privilege.ADMINISTER
    assert Privilege.parse("operate") is Privilege.OPERATE and Privilege.parse(4) is Privilege.ADMINISTER
    with pytest.raises(ConfigError, match="not one of View"):
        Privilege.parse("root")


SAFETY = [
    "Vehicle.ADAS.ABS.IsEnabled",
    "Vehicle.Chassis.Axle.Row1.Wheel.Left.Brake.FluidLevel",
    "Vehicle.Powertrain.Transmission.SelectedGear",
    "Vehicle.Body.Lights.Hazard.IsSignaling",
    "Vehicle.Chassis.SteeringWheel.Tilt",
    "Vehicle.Body.Windshield.Front.Wiping.Mode",
]


@pytest.mark.parametrize("path", SAFETY)
@pytest.mark.parametrize("privilege", list(Privilege))
def test_accessory_never_writes_safety_critical(path: str, privilege: Privilege) -> None:
    access = AccessControl()
    grant = Grant("Knob1", "accessory", privilege, actuates=("Vehicle.**",), owns=(path,))
    with pytest.raises(PermissionDenied, match="safety-critical"):
        access.check_actuate(grant, path)
    with pytest.raises(PermissionDenied, match="safety-critical"):
        access.check_provide("Knob1", path)


def test_apps_need_administer_for_safety_critical() -> None:
    access = AccessControl()
    path = "Vehicle.Body.Lights.Hazard.IsSignaling"
    with pytest.raises(PermissionDenied, match="needs Administer"):
        access.check_actuate(Grant("app", "app", Privilege.MANAGE, actuates=("Vehicle.**",)), path)
    access.check_actuate(Grant("app", "app", Privilege.ADMINISTER, actuates=("Vehicle.**",)), path)


def test_grant_names_the_actuators() -> None:
    access = AccessControl()
    grant = Grant("Panel1", "accessory", Privilege.OPERATE, actuates=("Vehicle.Cabin.Light.IsDomeOn",))
    access.check_actuate(grant, "Vehicle.Cabin.Light.IsDomeOn")
    with pytest.raises(PermissionDenied, match="does not name actuator"):
        access.check_actuate(grant, "Vehicle.Cabin.Light.IsGloveBoxOn")
    viewer = Grant("Panel1", "accessory", Privilege.VIEW, actuates=("Vehicle.Cabin.Light.IsDomeOn",))
    with pytest.raises(PermissionDenied, match="needs Operate"):
        access.check_actuate(viewer, "Vehicle.Cabin.Light.IsDomeOn")
    with pytest.raises(PermissionDenied, match="for reading"):
        access.check_read(grant, "Vehicle.Speed")
    access.check_read(
        Grant("G", "accessory", Privilege.VIEW, reads=("Vehicle.Powertrain.**",)), "Vehicle.Powertrain.Range"
    )


def test_accessory_provides_only_its_branch_and_cabin_standards() -> None:
    access = AccessControl()
    access.check_provide("Fan1", "Vehicle.Accessories.Fan1.FanSpeed")
    access.check_provide("Light1", "Vehicle.Cabin.Light.Spotlight.Row1.DriverSide.IsLightOn")
    with pytest.raises(PermissionDenied, match=r"outside Vehicle\.Accessories\.Fan1"):
        access.check_provide("Fan1", "Vehicle.Accessories.Fan2.FanSpeed")
    with pytest.raises(PermissionDenied):
        access.check_provide("Fan1", "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked")


def test_filter_actuates_uses_the_catalog() -> None:
    access = AccessControl()
    granted, refused = access.filter_actuates(
        ["Vehicle.Cabin.Light.**", "Vehicle.**", "Vehicle.Chassis.*"], Catalog.load_default()
    )
    assert granted == ["Vehicle.Cabin.Light.**"]
    assert set(refused) == {"Vehicle.**", "Vehicle.Chassis.*"}


def test_driving_state_from_gear_and_speed() -> None:
    cfg = DrivingConfig.default()
    assert cfg.derive(speed=0.0, selected_gear=126) is DrivingState.PARKED
    assert cfg.derive(speed=0.0, selected_gear=127) is DrivingState.IDLING
    assert cfg.derive(speed=0.5, current_gear=1) is DrivingState.IDLING
    assert cfg.derive(speed=12.0, selected_gear=127) is DrivingState.MOVING
    assert cfg.derive(speed=3.0, selected_gear=126) is DrivingState.MOVING  # speed wins over a P glitch
    assert cfg.derive(speed=0.0, ignition="OFF") is DrivingState.PARKED
    assert cfg.derive(speed=None) is DrivingState.UNKNOWN


def test_restrictions_per_speed_range() -> None:
    cfg = DrivingConfig.default()
    assert cfg.restrictions(DrivingState.PARKED, 0) == frozenset()
    assert cfg.restrictions(DrivingState.IDLING, 0) == {"NO_VIDEO"}
    slow = cfg.restrictions(DrivingState.MOVING, 10)
    fast = cfg.restrictions(DrivingState.MOVING, 80)
    assert {"NO_VIDEO", "NO_KEYBOARD", "LIMIT_STRING_LENGTH"} <= slow < fast
    assert "LIMIT_CONTENT" in fast and "LIMIT_CONTENT" not in slow
    assert "UX_RESTRICTIONS_FULLY_RESTRICTED" in cfg.restrictions(DrivingState.UNKNOWN, None)


def test_profile_can_override_speed_ranges() -> None:
    cfg = DrivingConfig.from_dict(
        {
            "idling_max_speed_kmh": 3,
            "rules": [{"state": "moving", "min_speed_kmh": 5, "restrictions": ["NO_VIDEO"]}],
        },
        "test",
    )
    assert cfg.derive(speed=2.5, selected_gear=127) is DrivingState.IDLING
    assert cfg.restrictions(DrivingState.MOVING, 4) == {
        "NO_VIDEO"
    }  # outside every range: strictest moving rule
    with pytest.raises(ConfigError, match=r"test\.rules\[0\]: min_speed_kmh 9\.0 must be below"):
        DrivingConfig.from_dict(
            {"rules": [{"state": "moving", "min_speed_kmh": 9, "max_speed_kmh": 3}]}, "test"
        )
    with pytest.raises(ConfigError, match=r"test\.idling_max_speed_kmh"):
        DrivingConfig.from_dict({"idling_max_speed_kmh": "fast"}, "test")


def test_ux_violations() -> None:
    moving = frozenset({"NO_VIDEO", "NO_KEYBOARD", "LIMIT_STRING_LENGTH"})
    assert violation(moving, "ContentType", "VIDEO", 120) is not None
    assert violation(moving, "ContentType", "NAVIGATION", 120) is None
    assert violation(moving, "KeyboardInput", "hello", 120) is not None
    assert violation(moving, "Text", "x" * 121, 120) is not None
    assert violation(moving, "Text", "x" * 120, 120) is None
    assert violation(frozenset(), "ContentType", "VIDEO", 120) is None


def test_power_shedding_levels_and_hysteresis() -> None:
    mon = PowerMonitor(PowerConfig.default())
    assert mon.update(voltage=12.6).shed == {}
    assert set(mon.update(voltage=11.7).shed) == {Priority.ENTERTAINMENT}
    assert set(mon.update(voltage=11.3).shed) == {Priority.ENTERTAINMENT, Priority.COMFORT}
    assert set(mon.update(voltage=10.8).shed) == {
        Priority.ENTERTAINMENT,
        Priority.COMFORT,
        Priority.ESSENTIAL,
    }
    # back above 11.0 but not by the 0.3 V margin: essential stays shed
    assert Priority.ESSENTIAL in mon.update(voltage=11.1).shed
    assert set(mon.update(voltage=11.35).shed) == {Priority.ENTERTAINMENT, Priority.COMFORT}
    assert set(mon.update(voltage=11.9).shed) == {Priority.ENTERTAINMENT}
    assert mon.update(voltage=12.2).shed == {}
    assert Priority.SAFETY not in mon.update(voltage=5.0).shed


def test_power_soc_and_ignition() -> None:
    mon = PowerMonitor()
    v = mon.update(soc=12.0)
    assert set(v.shed) == {Priority.ENTERTAINMENT} and "traction battery" in v.shed[Priority.ENTERTAINMENT]
    assert set(mon.update(soc=5.0).shed) == {Priority.ENTERTAINMENT, Priority.COMFORT}
    assert not mon.supply_ok  # courtesy lighting may not draw on a low traction battery
    assert mon.update(soc=60.0).shed == {}
    v = mon.update(ignition="OFF")
    # the classes are shed at ignition off; the one exception (a courtesy light after a door
    # opens) is decided per load by the engine, on a supply that is not low (test_policy_courtesy)
    assert (
        set(v.shed) == {Priority.ENTERTAINMENT, Priority.COMFORT}
        and "ignition is OFF" in v.shed[Priority.COMFORT]
    )
    assert mon.supply_ok
    assert mon.update(ignition="ON").shed == {}
    with pytest.raises(ConfigError, match="never shed"):
        PowerConfig.from_dict({"ignition_off_sheds": ["safety"]}, "test")
    with pytest.raises(ConfigError, match=r"test\.low_voltage_v: must be a number"):
        PowerConfig.from_dict({"low_voltage_v": "low"}, "test")


def test_event_log_ring_and_database(tmp_path: Path) -> None:
    db = tmp_path / "hub.sqlite3"
    log = EventLog(db, capacity=3)
    for i in range(5):
        log.log("shed", f"Fan{i}", f"shed {i}", reason="12 V")
    assert [e.subject for e in log.recent()] == ["Fan2", "Fan3", "Fan4"]  # ring keeps the newest
    assert len(log.history()) == 5
    with pytest.raises(ValueError, match="unknown event kind"):
        log.log("party", "x", "y")
    log.close()
    again = EventLog(db)
    assert [e.seq for e in again.history(kind="shed")] == [1, 2, 3, 4, 5]
    assert again.history(subject="Fan4")[0].data == {"reason": "12 V"}
    assert again.log("restore", "Fan4", "back").seq == 6
    again.close()


def test_grants_persist(tmp_path: Path) -> None:
    store = GrantStore(tmp_path / "hub.sqlite3")
    store.put(Grant("dashboard-app", "app", Privilege.MANAGE, reads=("Vehicle.**",)))
    store.close()
    again = GrantStore(tmp_path / "hub.sqlite3")
    grant = again.get("dashboard-app")
    assert grant is not None and grant.privilege is Privilege.MANAGE and grant.reads == ("Vehicle.**",)
    again.drop("dashboard-app")
    assert again.all() == []
    again.close()
