"""Energy: road load, the traction battery and the 12 V rail with its DC-DC converter.

Simple models with the right signs and sizes (see docs/simulator.md): the traction battery is an
open-circuit voltage linear in state of charge behind an internal resistance; the 12 V rail is a
lead-acid battery fed by a DC-DC converter that is on while the ignition is on and derates when
the traction battery runs low, so the rail sags under load and when the traction battery is low.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from anycar.sim.vehicle import LowVoltageParams, VehicleParams

GRAVITY = 9.81
AIR_DENSITY = 1.2
REGEN_FADE_KMH = (3.0, 10.0)  # regeneration fades to nothing below this speed band
DCDC_DERATE_SOC = (4.0, 12.0)  # the DC-DC output falls to zero as traction SoC goes 12 % -> 4 %
DCDC_EFFICIENCY = 0.93
LV_SETPOINT_V = 14.1  # DC-DC output while charging the 12 V battery
LV_FLOAT_V = 13.6  # DC-DC output once the 12 V battery is full
LV_DROOP_V = 0.35  # DC-DC output droop at full load
LV_INTERNAL_OHM = 0.012


@dataclass(frozen=True, slots=True)
class RoadLoad:
    """Forces at the wheels (N) and the resulting power (W, negative when braking)."""

    aero_n: float
    rolling_n: float
    grade_n: float
    inertia_n: float

    @property
    def total_n(self) -> float:
        return self.aero_n + self.rolling_n + self.grade_n + self.inertia_n


def road_load(p: VehicleParams, speed_ms: float, accel_ms2: float, grade: float) -> RoadLoad:
    mass = p.total_mass_kg
    angle = math.atan(grade)
    moving = speed_ms > 0.01
    return RoadLoad(
        aero_n=0.5 * AIR_DENSITY * p.drag_coefficient * p.frontal_area_m2 * speed_ms * speed_ms,
        rolling_n=mass * GRAVITY * p.rolling_resistance * math.cos(angle) if moving else 0.0,
        grade_n=mass * GRAVITY * math.sin(angle) if moving else 0.0,
        inertia_n=mass * p.rotating_mass_factor * accel_ms2,
    )


def battery_power_for(p: VehicleParams, wheel_power_w: float, speed_kmh: float) -> tuple[float, float]:
    """Electrical power at the battery for a wheel power: (traction W, regenerated W >= 0).

    Driving draws wheel power / efficiency, capped at the motor's power; braking regenerates
    wheel power x efficiency, capped at the regen limit and faded out at walking speed (the
    friction brakes take the rest).
    """
    if wheel_power_w >= 0:
        drawn = min(
            wheel_power_w / p.drivetrain_efficiency, p.max_drive_power_kw * 1000 / p.drivetrain_efficiency
        )
        return drawn, 0.0
    lo, hi = REGEN_FADE_KMH
    fade = min(1.0, max(0.0, (speed_kmh - lo) / (hi - lo)))
    regen = min(-wheel_power_w * p.regen_efficiency, p.max_regen_power_kw * 1000) * fade
    return -regen, regen


class TractionBattery:
    """State of charge by energy count; voltage sags with current through the internal resistance."""

    def __init__(self, p: VehicleParams) -> None:
        self.params = p.battery
        self.capacity_wh = p.battery.capacity_kwh * 1000
        self.energy_wh = self.capacity_wh * p.battery.initial_soc / 100
        self.current_a = 0.0
        self.power_w = 0.0
        self.regenerated_wh = 0.0

    @property
    def soc(self) -> float:
        return 100.0 * self.energy_wh / self.capacity_wh

    def replace_pack(self, soc: float, capacity_kwh: float) -> None:
        """Another pack is fitted (a swap station's robot): its capacity and charge from now on."""
        self.capacity_wh = capacity_kwh * 1000
        self.energy_wh = self.capacity_wh * soc / 100
        self.current_a = self.power_w = 0.0

    def open_circuit_v(self) -> float:
        b = self.params
        return b.voltage_min + (b.voltage_max - b.voltage_min) * self.soc / 100

    @property
    def voltage(self) -> float:
        return max(0.0, self.open_circuit_v() - self.current_a * self.params.resistance_ohm)

    def step(self, power_w: float, dt: float, regenerated_w: float = 0.0) -> None:
        """Draw ``power_w`` (negative charges) for ``dt`` seconds."""
        if self.energy_wh <= 0 and power_w > 0:
            power_w = 0.0  # the BMS cuts off an empty pack
        ocv = self.open_circuit_v()
        r = self.params.resistance_ohm
        # P = I (OCV - I R): the smaller root is the physical current.
        disc = ocv * ocv - 4 * r * power_w
        self.current_a = (ocv - math.sqrt(disc)) / (2 * r) if disc > 0 and r > 0 else power_w / max(ocv, 1.0)
        self.power_w = power_w
        self.energy_wh = min(self.capacity_wh, max(0.0, self.energy_wh - power_w * dt / 3600))
        self.regenerated_wh += regenerated_w * dt / 3600


class LowVoltageRail:
    """The 12 V rail: a lead-acid battery, the loads on it and the DC-DC converter feeding it."""

    def __init__(self, p: LowVoltageParams, soc: float = 90.0) -> None:
        self.params = p
        self.capacity_wh = p.capacity_ah * 12.0
        self.energy_wh = self.capacity_wh * soc / 100
        self.voltage = 12.6
        self.current_a = 0.0  # positive while the battery charges, negative while it discharges
        self.dcdc_w = 0.0  # power the DC-DC puts out
        self.dcdc_available_w = 0.0
        self.load_w = 0.0

    @property
    def soc(self) -> float:
        return 100.0 * self.energy_wh / self.capacity_wh

    def open_circuit_v(self) -> float:
        """Lead-acid: about 11.8 V empty to 12.75 V full."""
        return 11.8 + 0.95 * self.soc / 100

    def step(self, load_w: float, ignition_on: bool, traction_soc: float, dt: float) -> None:
        p = self.params
        lo, hi = DCDC_DERATE_SOC
        derate = min(1.0, max(0.0, (traction_soc - lo) / (hi - lo)))
        available = p.dcdc_max_w * derate if ignition_on else 0.0
        self.dcdc_available_w = available
        self.load_w = load_w
        ocv = self.open_circuit_v()
        if available > 0 and load_w < available:
            # The converter holds the rail, drooping with load, and charges the battery with the rest.
            setpoint = LV_SETPOINT_V if self.soc < 95 else LV_FLOAT_V
            self.voltage = setpoint - LV_DROOP_V * load_w / p.dcdc_max_w
            charge_a = max(0.0, min((self.voltage - ocv) / (LV_INTERNAL_OHM * 20), p.capacity_ah * 0.3))
            charge_w = min(charge_a * self.voltage, available - load_w)
            self.current_a = charge_w / self.voltage
            self.dcdc_w = load_w + charge_w
        else:
            # The battery covers what the converter cannot: the rail sags with the current drawn.
            deficit = load_w - available
            current = deficit / max(ocv, 1.0)
            if self.energy_wh <= 0:
                current = 0.0
            self.voltage = max(0.0, ocv - current * LV_INTERNAL_OHM * (1 + 3 * (1 - self.soc / 100)))
            if self.energy_wh <= 0:
                self.voltage = min(self.voltage, 9.0)  # a flat battery cannot hold the rail
            self.current_a = -current
            self.dcdc_w = available
        self.energy_wh = min(
            self.capacity_wh, max(0.0, self.energy_wh + self.current_a * self.voltage * dt / 3600)
        )

    @property
    def dcdc_input_w(self) -> float:
        """What the converter draws from the traction battery."""
        return self.dcdc_w / DCDC_EFFICIENCY

    @property
    def dcdc_loss_w(self) -> float:
        return self.dcdc_input_w - self.dcdc_w
