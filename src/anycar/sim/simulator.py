"""The vehicle simulator: one step of simulated time in, a dict of VSS path -> value out.

It follows a drive cycle along a route, and from that derives energy (traction battery and the
12 V rail), gear, ignition, doors, lights and cabin temperature. Everything depends only on the
parameters and the seed, so a run can be repeated exactly. At the end of a cycle the vehicle
rests (parked, ignition off, locked) for ``rest_s`` and then drives the cycle again.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from anycar.sim.cycles import DELIVERY, REVERSE, START, DriveCycle, Phase, load_cycle
from anycar.sim.energy import LowVoltageRail, TractionBattery, battery_power_for, road_load
from anycar.sim.route import Route, load_route
from anycar.sim.scenario import Scenario
from anycar.sim.sky import CIVIL_LIGHTS_ON_DEG, daylight, outside_temperature_c, solar_elevation_deg
from anycar.sim.thermal import CabinThermal
from anycar.sim.vehicle import VehicleParams, check_pack, load_vehicle

REST = "rest"
DEFAULT_START = datetime(2026, 3, 20, 17, 30, tzinfo=timezone(timedelta(hours=8)))

# VSS gear semantics (Vehicle.Powertrain.Transmission): SelectedGear 126 = Park, 127 = Drive,
# 0 = Neutral, -1 = Reverse; CurrentGear is the gear engaged: 1 forward, -1 reverse, 0 otherwise.
GEAR_PARK, GEAR_DRIVE, GEAR_NEUTRAL, GEAR_REVERSE = 126, 127, 0, -1
GEAR_LETTERS = {GEAR_PARK: "P", GEAR_DRIVE: "D", GEAR_NEUTRAL: "N", GEAR_REVERSE: "R"}

LOW_BEAM_W = 110.0
POSITION_LIGHTS_W = 20.0
DRL_W = 30.0
AUTO_LOCK_KMH = 15.0

P = "Vehicle."
SPEED = P + "Speed"
SOC = P + "Powertrain.TractionBattery.StateOfCharge.Current"
PACK_ID = P + "Powertrain.TractionBattery.Id"  # a sensor in the PICKMAN's overlay (swappable pack)
PACK_SOH = P + "Powertrain.TractionBattery.StateOfHealth"
LV_VOLTAGE = P + "LowVoltageBattery.CurrentVoltage"
CABIN_TEMP = P + "Cabin.HVAC.AmbientAirTemperature"
SELECTED_GEAR = P + "Powertrain.Transmission.SelectedGear"
CURRENT_GEAR = P + "Powertrain.Transmission.CurrentGear"
IGNITION = P + "LowVoltageSystemState"
HVAC_SETPOINT = P + "Cabin.HVAC.Station.Row1.Driver.Temperature"
HVAC_FAN = P + "Cabin.HVAC.Station.Row1.Driver.FanSpeed"
HVAC_AC = P + "Cabin.HVAC.IsAirConditioningActive"
LIGHT_SWITCH = P + "Body.Lights.LightSwitch"
DOORS = {
    "driver": P + "Cabin.Door.Row1.DriverSide.IsOpen",
    "passenger": P + "Cabin.Door.Row1.PassengerSide.IsOpen",
    "cargo": P + "Body.Trunk.Rear.IsOpen",
}

# Signals the simulator takes as input (what a driver or an app may change), with their checks.
INPUTS: dict[str, tuple[type, tuple[Any, ...]]] = {
    HVAC_SETPOINT: (float, (15.0, 30.0)),
    HVAC_FAN: (int, (0, 100)),
    HVAC_AC: (bool, ()),
    LIGHT_SWITCH: (str, ("OFF", "POSITION", "DAYTIME_RUNNING_LIGHTS", "AUTO", "BEAM")),
}


@dataclass(slots=True)
class SimStep:
    """One step: simulated seconds since start, the simulated clock and the VSS values."""

    t: float
    when: datetime
    phase: str
    lap: int
    values: dict[str, Any]


class Simulator:
    def __init__(
        self,
        vehicle: VehicleParams,
        cycle: DriveCycle,
        route: Route,
        *,
        seed: int = 0,
        dt: float = 0.5,
        start_time: datetime = DEFAULT_START,
        outside_mean_c: float = 14.0,
        outside_swing_c: float = 5.0,
        rest_s: float = 40.0,
        accessory_load_w: float = 0.0,
        scenario: Scenario | None = None,
    ) -> None:
        if dt <= 0:
            raise ValueError("dt must be positive")
        if start_time.tzinfo is None:
            raise ValueError("start_time needs a time zone")
        self.vehicle = vehicle
        self.cycle = cycle
        self.route = route
        self.seed = seed
        self.dt = dt
        self.start_time = start_time
        self.outside_mean_c = outside_mean_c
        self.outside_swing_c = outside_swing_c
        self.rest_s = rest_s
        self.accessory_load_w = accessory_load_w
        # what fitted accessories draw now (W), asked every step: a hub wires its accessories' draw
        # here (anycar.accessories.draw), so the run then depends on them too, not only the seed
        self.accessory_load: Callable[[], float] | None = None
        self.accessory_w = 0.0  # what they drew at the last step
        self.lap_s = cycle.duration_s + rest_s

        self.t = 0.0
        self.battery = TractionBattery(vehicle)
        # a swappable pack: its identity changes when a station swaps it (``swap_pack``)
        self.pack_serial = vehicle.pack.serial if vehicle.pack else None
        self.pack_soh = vehicle.pack.soh if vehicle.pack else None
        self.swaps = 0
        self.scenario = scenario
        lv_soc = scenario.low_voltage_soc_percent if scenario is not None else None
        self.rail = LowVoltageRail(vehicle.low_voltage, **({} if lv_soc is None else {"soc": lv_soc}))
        outside = outside_temperature_c(start_time, outside_mean_c, outside_swing_c)
        self.cabin = CabinThermal(vehicle.hvac, outside)
        self.light_switch = "AUTO"
        self.route_m = 0.0
        self.odometer_m = 0.0
        self.speed_kmh = 0.0
        self._consumption_wh_per_km = self._rated_consumption()
        self._bucket_wh = 0.0
        self._bucket_km = 0.0
        self._door_plans: dict[tuple[int, int], bool] = {}
        self._was_locked = False
        # A driver (the fleet demo's, following the route its hub was pushed) may hold the vehicle
        # where it stands still and give it a new round: the cycle's clock runs from ``_origin``
        # and stands while ``held`` at a standstill, so a stop lasts as long as the work there.
        self.held = False
        self._origin = 0.0

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def for_profile(
        cls,
        profile: str,
        *,
        cycle: str | None = None,
        route: str | None = None,
        seed: int = 0,
        **options: Any,
    ) -> Simulator:
        """A simulator for a brand profile id, with that vehicle's default cycle and route."""
        vehicle = load_vehicle(profile)
        return cls(
            vehicle,
            load_cycle(cycle or vehicle.default_cycle, seed),
            load_route(route or vehicle.default_route),
            seed=seed,
            **options,
        )

    def _rated_consumption(self) -> float:
        load = road_load(self.vehicle, 50 / 3.6, 0.0, 0.0)
        return load.total_n / self.vehicle.drivetrain_efficiency / 3.6 * 1.25  # Wh/km, with margin

    # -- inputs ------------------------------------------------------------------------------
    def apply(self, path: str, value: Any) -> Any:
        """Take a driver's or an app's change to one of ``INPUTS``; raises ValueError if refused."""
        spec = INPUTS.get(path)
        if spec is None:
            raise ValueError(f"{path} is not an input of the simulator")
        kind, limits = spec
        if kind is bool:
            if type(value) is not bool:
                raise ValueError(f"{path} expects true or false")
        elif kind is str:
            if value not in limits:
                raise ValueError(f"{path} expects one of {', '.join(limits)}")
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{path} expects a number")
            if not limits[0] <= value <= limits[1]:
                raise ValueError(f"{path} must be within {limits[0]}..{limits[1]}")
            value = kind(value)
        if path == HVAC_SETPOINT:
            self.cabin.setpoint_c = value
        elif path == HVAC_FAN:
            self.cabin.fan_percent = value
        elif path == HVAC_AC:
            self.cabin.ac_enabled = value
        elif path == LIGHT_SWITCH:
            self.light_switch = value
        return value

    def swap_pack(self, serial: str, soc: float, soh: float, capacity_kwh: float | None = None) -> None:
        """A swap station's robot fitted another pack: its serial, charge, health and capacity are
        the vehicle's from the next step on. Raises ConfigError (one line) for a bad pack."""
        if self.pack_serial is None:
            raise ValueError(f"{self.vehicle.id}: this vehicle has no swappable pack")
        capacity = self.battery.capacity_wh / 1000 if capacity_kwh is None else capacity_kwh
        check_pack(serial, soc, soh, capacity)
        self.battery.replace_pack(float(soc), float(capacity))
        self.pack_serial, self.pack_soh = serial, float(soh)
        self.swaps += 1

    # -- stepping ------------------------------------------------------------------------------
    def where_in_lap(self, t: float) -> tuple[int, float, Phase | None]:
        """(lap, seconds into it, phase) at simulated time ``t`` of the round being driven."""
        t = t - self._origin
        lap = int(t // self.lap_s)
        tc = t - lap * self.lap_s
        if tc <= self.cycle.duration_s:
            return lap, tc, self.cycle.phase_at(tc)
        return lap, tc, None

    def drive(self, route: Route, cycle: DriveCycle) -> None:
        """Drive ``cycle`` along ``route`` from now on (a new round: its first point is here).
        The driver is in the cab with the ignition on: the round starts a second into its start."""
        self.route, self.cycle = route, cycle
        self.lap_s = cycle.duration_s + self.rest_s
        self.route_m = 0.0
        self._origin = self.t - 1.0

    def now_in_lap(self) -> tuple[int, float, Phase | None]:
        """Where in the round the vehicle is now."""
        return self.where_in_lap(self.t)

    def run(self, seconds: float) -> Iterator[SimStep]:
        """Steps until ``seconds`` of simulated time have passed."""
        end = self.t + seconds
        while self.t + self.dt <= end + 1e-9:
            yield self.step()

    def step(self) -> SimStep:
        dt = self.dt
        if self.held and self.speed_kmh == 0.0:
            self._origin += dt  # held at a standstill: the round waits for the driver
        self.t += dt
        t = self.t
        v = self.vehicle
        lap, tc, phase = self.where_in_lap(t)
        kind = phase.kind if phase is not None else REST
        since = tc - phase.start if phase is not None else tc - self.cycle.duration_s
        remaining = phase.end - tc if phase is not None else self.lap_s - tc
        when = self.start_time + timedelta(seconds=t)

        # Motion.
        # A vehicle follows the trace up to its own top speed (a PICKMAN on the WLTC tops out).
        speed_kmh = min(self.cycle.speed_at(tc), v.max_speed_kmh) if phase is not None else 0.0
        prev_ms = self.speed_kmh / 3.6
        speed_ms = speed_kmh / 3.6
        accel = (speed_ms - prev_ms) / dt
        mean_ms = (speed_ms + prev_ms) / 2
        self.speed_kmh = speed_kmh
        reversing = kind == REVERSE
        if not reversing:
            self.route_m += mean_ms * dt  # a reverse manoeuvre is into a bay, off the route line
        self.odometer_m += mean_ms * dt
        pos = self.route.at(self.route_m)

        # Gear and ignition.
        gear = self._gear(kind, since, remaining)
        ignition = self._ignition(kind, since, tc)
        on = ignition in ("ON", "START")
        doors = self._doors(kind, since, remaining, lap, phase)

        # Sky and lights.
        elevation = solar_elevation_deg(when, pos.latitude, pos.longitude)
        light = daylight(elevation)
        outside = outside_temperature_c(when, self.outside_mean_c, self.outside_swing_c)
        dark = elevation < CIVIL_LIGHTS_ON_DEG
        switch = self.light_switch
        low_beam = on and (switch == "BEAM" or (switch == "AUTO" and dark))
        position_lights = low_beam or (on and switch == "POSITION")
        running = on and switch in ("AUTO", "DAYTIME_RUNNING_LIGHTS") and not low_beam

        # Cabin.
        cabin_doors = int(doors["driver"]) + int(doors["passenger"])  # the cargo bed is outside the cabin
        self.cabin.step(outside, max(0.0, math.sin(math.radians(elevation))), cabin_doors, on, dt)

        # 12 V rail, then the traction battery that feeds it.
        self.accessory_w = self.accessory_load() if self.accessory_load is not None else 0.0
        lv_load = (
            (v.low_voltage.base_load_w if on else v.low_voltage.standby_load_w)
            + self.accessory_load_w
            + self.accessory_w
            + (LOW_BEAM_W if low_beam else 0.0)
            + (POSITION_LIGHTS_W if position_lights else 0.0)
            + (DRL_W if running else 0.0)
        )
        # a scenario's DC-DC outage leaves the battery alone to carry the loads: the rail sags
        dcdc_on = on and not (self.scenario is not None and self.scenario.dcdc_out(tc))
        self.rail.step(lv_load, dcdc_on, self.battery.soc, dt)
        load = road_load(v, mean_ms, accel, -pos.grade if reversing else pos.grade)
        wheel_w = load.total_n * mean_ms
        traction_w, regen_w = battery_power_for(v, wheel_w, speed_kmh)
        if not on:
            traction_w, regen_w = 0.0, 0.0
        hv_w = traction_w + self.cabin.electrical_w + self.rail.dcdc_input_w
        self.battery.step(hv_w, dt, regen_w)
        self._update_consumption(hv_w * dt / 3600, mean_ms * dt / 1000)

        values = self._values(
            when=when,
            speed_kmh=speed_kmh,
            accel=accel,
            pos_heading=pos.heading,
            lat=pos.latitude,
            lon=pos.longitude,
            alt=pos.altitude,
            gear=gear,
            ignition=ignition,
            doors=doors,
            low_beam=low_beam,
            position_lights=position_lights,
            running=running,
            light=light,
            outside=outside,
            traction_w=traction_w,
            wheel_w=wheel_w,
            motor_w=(
                min(wheel_w, v.max_drive_power_kw * 1000) if wheel_w >= 0 else -regen_w / v.regen_efficiency
            ),
            kind=kind,
        )
        return SimStep(t=t, when=when, phase=kind, lap=lap, values=values)

    def _gear(self, kind: str, since: float, remaining: float) -> int:
        if kind == REST:
            return GEAR_PARK
        if kind == START:
            return GEAR_PARK if since < 3 else GEAR_DRIVE
        if kind == REVERSE:
            return GEAR_REVERSE
        if kind == DELIVERY:
            return GEAR_PARK if since >= 1 and remaining > 2 else GEAR_DRIVE
        return GEAR_DRIVE

    def _ignition(self, kind: str, since: float, tc: float) -> str:
        if kind == REST:
            if since < 4:
                return "ON"
            return "OFF" if since < 14 else "LOCK"
        return "START" if tc < 1.0 else "ON"

    def _doors(
        self, kind: str, since: float, remaining: float, lap: int, phase: Phase | None
    ) -> dict[str, bool]:
        """Doors open only while parked: at a delivery stop, or when the driver leaves at rest."""
        out = dict.fromkeys(DOORS, False)
        if kind == DELIVERY and phase is not None:
            duration = phase.end - phase.start
            out["driver"] = 3 <= since < 7 or (duration - 9 <= since < duration - 5)
            out["cargo"] = 9 <= since < duration - 12
            key = (lap, phase.leg)
            if key not in self._door_plans:
                self._door_plans[key] = random.Random(f"{self.seed}:{lap}:{phase.leg}").random() < 0.4  # nosec B311 # seeded door openings in the simulation, not security
            out["passenger"] = self._door_plans[key] and 8 <= since < 14
        elif kind == REST:
            out["driver"] = 6 <= since < 10
        return out

    def _update_consumption(self, wh: float, km: float) -> None:
        self._bucket_wh += wh
        self._bucket_km += km
        if self._bucket_km >= 0.25:
            measured = self._bucket_wh / self._bucket_km
            weight = min(1.0, self._bucket_km / 15.0)
            self._consumption_wh_per_km += (measured - self._consumption_wh_per_km) * weight
            self._consumption_wh_per_km = max(self._consumption_wh_per_km, 20.0)
            self._bucket_wh = self._bucket_km = 0.0

    def _values(self, **s: Any) -> dict[str, Any]:
        v = self.vehicle
        b = self.battery
        rail = self.rail
        speed = s["speed_kmh"]
        gear = s["gear"]
        reverse = gear == GEAR_REVERSE
        current_gear = 1 if gear == GEAR_DRIVE else (-1 if reverse else 0)
        motor_rpm = speed / 3.6 / (2 * math.pi * v.wheel_radius_m) * 60 * v.gear_ratio
        decel = s["accel"] < -0.4
        held = speed == 0 and gear == GEAR_DRIVE
        accel_pedal = 0
        if s["wheel_w"] > 0 and speed > 0:
            accel_pedal = min(100, round(100 * s["traction_w"] / (v.max_drive_power_kw * 1000) + 8))
        brake_pedal = min(100, round(-s["accel"] * 22)) if decel else (15 if held else 0)
        range_m = int(max(0.0, b.energy_wh - 0.03 * b.capacity_wh) / self._consumption_wh_per_km * 1000)
        displayed = min(100.0, max(0.0, (b.soc - 3.0) / 94.0 * 100))
        out: dict[str, Any] = {
            SPEED: round(speed, 2),
            P + "IsMoving": speed > 0,
            P + "Acceleration.Longitudinal": round(s["accel"], 3),
            P + "TraveledDistance": int(self.odometer_m),
            P + "CurrentLocation.Latitude": round(s["lat"], 7),
            P + "CurrentLocation.Longitude": round(s["lon"], 7),
            P + "CurrentLocation.Altitude": round(s["alt"], 1),
            P + "CurrentLocation.Heading": round(s["pos_heading"], 1) % 360.0,
            P + "CurrentLocation.Timestamp": s["when"].isoformat(timespec="seconds"),
            SELECTED_GEAR: gear,
            CURRENT_GEAR: current_gear,
            IGNITION: s["ignition"],
            P + "Chassis.Accelerator.PedalPosition": max(0, accel_pedal),
            P + "Chassis.Brake.PedalPosition": max(0, brake_pedal),
            P + "Chassis.ParkingBrake.IsEngaged": gear == GEAR_PARK,
            P + "Powertrain.ElectricMotor.Speed": round(-motor_rpm if reverse else motor_rpm, 1),
            P + "Powertrain.ElectricMotor.Power": round(s["motor_w"] / 1000),  # negative: regenerating
            SOC: round(b.soc, 3),
            P + "Powertrain.TractionBattery.StateOfCharge.Displayed": round(displayed, 1),
            P + "Powertrain.TractionBattery.StateOfCharge.CurrentEnergy": round(b.energy_wh / 1000, 3),
            P + "Powertrain.TractionBattery.CurrentVoltage": round(b.voltage, 1),
            # VSS: positive flows into the battery (charging, regeneration), negative out of it.
            P + "Powertrain.TractionBattery.CurrentCurrent": round(-b.current_a, 2),
            P + "Powertrain.TractionBattery.CurrentPower": round(-b.power_w, 1),
            P + "Powertrain.TractionBattery.Range": range_m,
            P + "Powertrain.TractionBattery.DCDC.PowerLoss": round(rail.dcdc_loss_w, 1),
            P + "Powertrain.Range": range_m,
            P + "Powertrain.AccumulatedBrakingEnergy": round(b.regenerated_wh / 1000, 4),
            LV_VOLTAGE: round(rail.voltage, 2),
            P + "LowVoltageBattery.CurrentCurrent": round(rail.current_a, 2),
            CABIN_TEMP: round(self.cabin.temperature_c, 2),
            P + "Exterior.AirTemperature": round(s["outside"], 2),
            P + "Exterior.LightIntensity": round(s["light"] * 100, 1),
            HVAC_SETPOINT: float(self.cabin.setpoint_c),
            HVAC_FAN: int(self.cabin.fan_percent),
            HVAC_AC: bool(self.cabin.ac_enabled),
            LIGHT_SWITCH: self.light_switch,
            P + "Body.Lights.Beam.Low.IsOn": s["low_beam"],
            P + "Body.Lights.Parking.IsOn": s["position_lights"],
            P + "Body.Lights.Running.IsOn": s["running"],
            P + "Body.Lights.Backup.IsOn": reverse,
            P + "Body.Lights.Brake.IsActive": "ACTIVE" if decel or held else "INACTIVE",
            P + "Body.Lights.Hazard.IsSignaling": s["kind"] == DELIVERY,
        }
        if self.pack_serial is not None:  # the BMS's pack identity frame
            capacity = b.capacity_wh / 1000
            out[PACK_ID] = self.pack_serial
            out[PACK_SOH] = self.pack_soh
            out[P + "Powertrain.TractionBattery.GrossCapacity"] = round(capacity)
            out[P + "Powertrain.TractionBattery.NetCapacity"] = round(capacity * (self.pack_soh or 0) / 100)
        for key, path in DOORS.items():
            out[path] = s["doors"][key]
        locked = speed > AUTO_LOCK_KMH or (gear != GEAR_PARK and self._was_locked) or s["ignition"] == "LOCK"
        self._was_locked = locked
        out[P + "Cabin.Door.Row1.DriverSide.IsLocked"] = locked
        out[P + "Cabin.Door.Row1.PassengerSide.IsLocked"] = locked
        return out

    def static_values(self) -> dict[str, Any]:
        """Attributes that do not change while driving."""
        v = self.vehicle
        b = v.battery
        out = {
            P + "CurbWeight": round(v.mass_kg),
            P + "Powertrain.Type": "ELECTRIC",
            P + "Powertrain.Transmission.GearCount": 1,
            P + "Powertrain.TractionBattery.GrossCapacity": round(b.capacity_kwh),
            P + "Powertrain.TractionBattery.NominalVoltage": round((b.voltage_min + b.voltage_max) / 2),
            P + "Powertrain.TractionBattery.MaxVoltage": round(b.voltage_max),
            P + "LowVoltageBattery.NominalVoltage": 12,
            P + "LowVoltageBattery.NominalCapacity": round(v.low_voltage.capacity_ah),
        }
        if self.pack_serial is not None:  # a swappable pack's capacity changes with the pack: a step value
            del out[P + "Powertrain.TractionBattery.GrossCapacity"]
        return out

    def paths(self) -> list[str]:
        """Every path the simulator writes (its steps and its attributes)."""
        probe = Simulator(
            self.vehicle, self.cycle, self.route, seed=self.seed, dt=self.dt, start_time=self.start_time
        )
        return sorted({*probe.step().values, *self.static_values()})
