"""Cabin temperature: one thermal mass exchanging heat with outside, the sun and the HVAC."""

from __future__ import annotations

from anycar.sim.vehicle import HvacParams

HVAC_GAIN_W_PER_K = 900.0  # how hard the climate control pushes per kelvin of error
SOLAR_GAIN_W = 450.0  # through the glass with the sun high


class CabinThermal:
    """dT/dt = (UA (T_out - T) + solar + Q_hvac) / C, with UA larger while doors are open."""

    def __init__(self, p: HvacParams, initial_c: float) -> None:
        self.params = p
        self.temperature_c = initial_c
        self.setpoint_c = p.setpoint_c
        self.fan_percent = 40
        self.ac_enabled = True
        self.hvac_heat_w = 0.0  # heat put into the cabin (negative: removed)
        self.electrical_w = 0.0  # what the HVAC draws

    def step(self, outside_c: float, sun: float, doors_open: int, hvac_on: bool, dt: float) -> None:
        """Advance ``dt`` seconds; ``sun`` is 0 (night) .. 1 (sun overhead)."""
        p = self.params
        ua = p.conductance_w_per_k + doors_open * p.door_open_conductance_w_per_k
        error = self.setpoint_c - self.temperature_c
        if hvac_on and self.fan_percent > 0:
            scale = 0.3 + 0.7 * self.fan_percent / 100
            q = HVAC_GAIN_W_PER_K * error
            q = min(q, p.max_heating_w * scale)
            q = max(q, -p.max_cooling_w * scale if self.ac_enabled else 0.0)
            self.hvac_heat_w = q
            cop = p.cop_heating if q >= 0 else p.cop_cooling
            self.electrical_w = abs(q) / max(cop, 0.1) + p.blower_w * self.fan_percent / 100
        else:
            self.hvac_heat_w = 0.0
            self.electrical_w = 0.0
        flow = ua * (outside_c - self.temperature_c) + SOLAR_GAIN_W * sun + self.hvac_heat_w
        # Implicit in the conductance term so that large steps stay stable.
        c = p.thermal_mass_j_per_k
        t_new = (self.temperature_c * c + dt * (flow + ua * self.temperature_c)) / (c + dt * ua)
        self.temperature_c = t_new
