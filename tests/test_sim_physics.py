"""The simulator's physics and body logic, and that everything it emits fits the VSS catalog."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta, timezone
from importlib import resources

import pytest
import yaml

from anycar.errors import ConfigError
from anycar.model import Catalog
from anycar.sim.cycles import DELIVERY, wltc_class3b
from anycar.sim.route import load_route, parse_geojson
from anycar.sim.simulator import (
    CABIN_TEMP,
    CURRENT_GEAR,
    DOORS,
    GEAR_PARK,
    GEAR_REVERSE,
    HVAC_SETPOINT,
    IGNITION,
    LV_VOLTAGE,
    REST,
    SELECTED_GEAR,
    SOC,
    SPEED,
    Simulator,
)
from anycar.sim.sky import solar_elevation_deg
from anycar.sim.vehicle import load_vehicle, parse_vehicle, vehicle_ids

CST = timezone(timedelta(hours=8))
PROFILES = ["xiaomi_su7", "nio_et7", "byd_seal", "xpeng_p7", "li_auto_l9", "kaiyun_pickman"]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load_default()


def test_every_reference_profile_has_parameters() -> None:
    assert set(PROFILES) <= set(vehicle_ids())


@pytest.mark.parametrize("profile", PROFILES)
def test_every_emitted_value_is_valid_in_the_catalog(catalog: Catalog, profile: str) -> None:
    sim = Simulator.for_profile(profile, seed=5, dt=1.0)
    seen: set[str] = set()
    for path, value in sim.static_values().items():
        catalog.get(path).validate(value)
    for step in sim.run(sim.lap_s + 30):
        for path, value in step.values.items():
            catalog.get(path).validate(value)  # raises ValueRejected or UnknownPath
            seen.add(path)
    assert seen == set(sim.paths()) - set(sim.static_values())


def _trace(sim: Simulator, seconds: float) -> list[dict]:
    return [{"t": s.t, "phase": s.phase, **s.values} for s in sim.run(seconds)]


def test_same_seed_same_run_different_seed_different_run() -> None:
    a = _trace(Simulator.for_profile("kaiyun_pickman", seed=11), 900)
    b = _trace(Simulator.for_profile("kaiyun_pickman", seed=11), 900)
    c = _trace(Simulator.for_profile("kaiyun_pickman", seed=12), 900)
    assert json.dumps(a) == json.dumps(b)
    assert [r[SPEED] for r in a] != [r[SPEED] for r in c]


def test_soc_falls_while_driving_and_rises_with_regeneration() -> None:
    sim = Simulator.for_profile("xiaomi_su7", dt=1.0)
    rows = _trace(sim, sim.cycle.duration_s)
    assert rows[-1][SOC] < rows[0][SOC] - 3  # a WLTC costs an SU7 several percent
    regen_steps = 0
    for prev, row in itertools.pairwise(rows):
        hard_braking = row["Vehicle.Acceleration.Longitudinal"] <= -0.8 and row[SPEED] >= 40
        if hard_braking:
            regen_steps += 1
            assert row[SOC] > prev[SOC], row["t"]
            # VSS: positive current and power flow into the battery; the motor's power is negative.
            assert row["Vehicle.Powertrain.TractionBattery.CurrentCurrent"] > 0
            assert row["Vehicle.Powertrain.TractionBattery.CurrentPower"] > 0
            assert row["Vehicle.Powertrain.ElectricMotor.Power"] < 0
        if row["Vehicle.Acceleration.Longitudinal"] >= 0.5 and row[SPEED] >= 20:
            assert row[SOC] < prev[SOC]
            assert row["Vehicle.Powertrain.TractionBattery.CurrentCurrent"] < 0
            assert row["Vehicle.Powertrain.ElectricMotor.Power"] > 0
    assert regen_steps > 10
    assert sim.battery.regenerated_wh > 500
    assert rows[-1]["Vehicle.Powertrain.AccumulatedBrakingEnergy"] == pytest.approx(
        sim.battery.regenerated_wh / 1000, abs=1e-3
    )


def test_consumption_is_in_a_plausible_range() -> None:
    for profile, lo, hi in (("xiaomi_su7", 11, 20), ("kaiyun_pickman", 6, 20)):
        sim = Simulator.for_profile(profile)
        list(sim.run(sim.cycle.duration_s))
        kwh = (sim.vehicle.battery.initial_soc - sim.battery.soc) / 100 * sim.vehicle.battery.capacity_kwh
        per_100 = kwh / (sim.odometer_m / 1000) * 100
        assert lo <= per_100 <= hi, (profile, per_100)


def test_grade_costs_energy() -> None:
    flat = parse_geojson("flat", {"type": "LineString", "coordinates": [[116.0, 39.0, 0], [116.3, 39.0, 0]]})
    hill = parse_geojson(
        "hill", {"type": "LineString", "coordinates": [[116.0, 39.0, 0], [116.3, 39.0, 900]]}
    )
    used = []
    for route in (flat, hill):
        sim = Simulator(load_vehicle("byd_seal"), wltc_class3b(), route, dt=1.0)
        list(sim.run(600))
        used.append(sim.vehicle.battery.initial_soc - sim.battery.soc)
    assert used[1] > used[0] * 1.5


def test_doors_open_only_when_parked_at_a_delivery_or_at_rest() -> None:
    sim = Simulator.for_profile("kaiyun_pickman", seed=3)
    rows = _trace(sim, sim.lap_s)
    opened_at_delivery = 0
    for row in rows:
        if any(row[p] for p in DOORS.values()):
            assert row[SPEED] == 0
            assert row[SELECTED_GEAR] == GEAR_PARK
            assert row["phase"] in (DELIVERY, REST)
            opened_at_delivery += row["phase"] == DELIVERY
    assert opened_at_delivery > 0
    # Every delivery stop sees the cargo bed opened.
    stops = {(r["t"] // 1, r["phase"]) for r in rows if r["phase"] == DELIVERY}
    assert stops
    for phase in (p for p in sim.cycle.phases if p.kind == DELIVERY):
        window = [r for r in rows if phase.start <= r["t"] < phase.end]
        assert any(r[DOORS["cargo"]] for r in window), phase


def test_car_on_wltc_opens_no_door_while_in_the_cycle() -> None:
    sim = Simulator.for_profile("nio_et7", dt=1.0)
    for step in sim.run(sim.cycle.duration_s):
        assert not any(step.values[p] for p in DOORS.values())


def test_gear_follows_vss_semantics() -> None:
    sim = Simulator.for_profile("kaiyun_pickman", seed=0)
    rows = _trace(sim, sim.lap_s)
    assert {r[SELECTED_GEAR] for r in rows} <= {126, 127, 0, -1}
    assert rows[0][SELECTED_GEAR] == GEAR_PARK and rows[0][CURRENT_GEAR] == 0
    assert rows[0][IGNITION] == "START"
    for r in rows:
        if r[SPEED] > 0 and r["phase"] != "reverse":
            assert r[SELECTED_GEAR] == 127 and r[CURRENT_GEAR] == 1
        if r["phase"] == "reverse" and r[SPEED] > 0:
            assert r[SELECTED_GEAR] == GEAR_REVERSE and r[CURRENT_GEAR] == -1
            assert r["Vehicle.Body.Lights.Backup.IsOn"]
    assert any(r[SELECTED_GEAR] == GEAR_REVERSE for r in rows)
    assert rows[-2][IGNITION] == "LOCK"  # the last row starts the next lap


def test_twelve_volt_rail_is_held_by_dcdc_and_sags_without_it() -> None:
    sim = Simulator.for_profile("byd_seal", dt=1.0)
    rows = _trace(sim, sim.lap_s)
    driving = [r[LV_VOLTAGE] for r in rows if r["phase"] != REST]
    resting = [r[LV_VOLTAGE] for r in rows if r[IGNITION] in ("OFF", "LOCK")]
    assert min(driving) >= 13.4
    assert resting and max(resting) < 13.0


def test_twelve_volt_rail_sags_under_load_and_with_a_low_traction_battery() -> None:
    base = Simulator.for_profile("xiaomi_su7", dt=1.0)
    loaded = Simulator.for_profile("xiaomi_su7", dt=1.0, accessory_load_w=3000)
    v_base = list(base.run(60))[-1].values[LV_VOLTAGE]
    v_loaded = list(loaded.run(60))[-1].values[LV_VOLTAGE]
    assert v_loaded < v_base - 0.5

    low = Simulator.for_profile("xiaomi_su7", dt=1.0)
    low.battery.energy_wh = low.battery.capacity_wh * 0.05  # 5 %: the DC-DC derates
    v_low = list(low.run(60))[-1].values[LV_VOLTAGE]
    assert v_low < v_base - 0.5


def test_cabin_temperature_follows_the_hvac_setpoint() -> None:
    sim = Simulator.for_profile("xpeng_p7", dt=1.0, outside_mean_c=2.0, outside_swing_c=0.0)
    start = next(iter(sim.run(1))).values[CABIN_TEMP]
    warm = list(sim.run(900))[-1].values[CABIN_TEMP]
    assert start < 5 and warm > 19
    sim.apply(HVAC_SETPOINT, 26.0)
    warmer = list(sim.run(900))[-1].values
    assert warmer[CABIN_TEMP] > warm + 2 and warmer[HVAC_SETPOINT] == 26.0
    with pytest.raises(ValueError, match="within"):
        sim.apply(HVAC_SETPOINT, 60.0)
    with pytest.raises(ValueError, match="not an input"):
        sim.apply("Vehicle.Speed", 10.0)


def test_headlights_follow_time_of_day() -> None:
    noon = datetime(2026, 6, 21, 12, 0, tzinfo=CST)
    night = datetime(2026, 6, 21, 23, 0, tzinfo=CST)
    assert solar_elevation_deg(noon, 39.8, 116.5) > 60
    assert solar_elevation_deg(night, 39.8, 116.5) < -10
    for when, on in ((noon, False), (night, True)):
        sim = Simulator.for_profile("xiaomi_su7", start_time=when, dt=1.0)
        rows = [s.values for s in sim.run(120)]
        assert all(r["Vehicle.Body.Lights.Beam.Low.IsOn"] is on for r in rows)
    sim = Simulator.for_profile("xiaomi_su7", start_time=noon, dt=1.0)
    sim.apply("Vehicle.Body.Lights.LightSwitch", "BEAM")
    assert list(sim.run(2))[-1].values["Vehicle.Body.Lights.Beam.Low.IsOn"] is True


def test_position_moves_along_the_route_with_heading_and_odometer() -> None:
    sim = Simulator.for_profile("kaiyun_pickman", seed=2, dt=1.0)
    rows = _trace(sim, 600)
    first = rows[0]
    moved = [r for r in rows if r["Vehicle.TraveledDistance"] > 50]
    assert moved
    assert moved[0]["Vehicle.CurrentLocation.Longitude"] > first["Vehicle.CurrentLocation.Longitude"]
    assert moved[0]["Vehicle.CurrentLocation.Heading"] == pytest.approx(
        90, abs=1
    )  # the loop starts eastwards
    odo = [r["Vehicle.TraveledDistance"] for r in rows]
    assert odo == sorted(odo)
    assert odo[-1] == int(sim.odometer_m)


def test_closed_route_wraps_and_bad_routes_are_refused() -> None:
    route = load_route("jinhua_delivery_loop")
    a = route.at(10.0)
    b = route.at(route.length_m + 10.0)
    assert (a.latitude, a.longitude) == pytest.approx((b.latitude, b.longitude))
    with pytest.raises(ConfigError, match=r"coordinates\[1\]"):
        parse_geojson("bad", {"type": "LineString", "coordinates": [[1, 2], ["x", 3]]})
    with pytest.raises(ConfigError, match="not a valid latitude"):
        parse_geojson("bad", {"type": "LineString", "coordinates": [[1, 2], [3, 95]]})
    with pytest.raises(ConfigError, match="unknown route"):
        load_route("atlantis")


def test_bad_vehicle_parameters_name_the_field() -> None:
    good = yaml.safe_load((resources.files("anycar.sim") / "data/vehicles/byd_seal.yaml").read_text())
    bad = {**good, "battery": {**good["battery"], "capacity_kwh": "lots"}}
    with pytest.raises(ConfigError, match=r"battery\.capacity_kwh"):
        parse_vehicle("x", bad, "x.yaml")
    bad = {**good, "drag": 0.3}
    with pytest.raises(ConfigError, match="unknown field"):
        parse_vehicle("x", bad, "x.yaml")
    with pytest.raises(ConfigError, match="no simulator parameters"):
        load_vehicle("trabant")


def test_a_vehicle_never_exceeds_its_top_speed() -> None:
    sim = Simulator.for_profile("kaiyun_pickman", cycle="wltc3", dt=1.0)
    speeds = [s.values[SPEED] for s in sim.run(sim.cycle.duration_s)]
    assert max(speeds) == sim.vehicle.max_speed_kmh == 50
