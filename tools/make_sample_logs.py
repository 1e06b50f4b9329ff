"""Write a short, real-looking candump log for every brand profile (``sample.log``).

A 30-second trip: the driver opens the door, buckles up, switches on, drives off in D, turns,
brakes and parks, while the battery drains a little and the position moves along the heading.
Frames are what the car's ECUs would broadcast for those values (``anycar.brands.ecus.EcuEncoder``:
the profile's ``dbc2vss`` mapping inverted, counters counting, checksums as the ECUs compute
them), at the cycle times of a real bus, so ``anycar can replay sample.log --brand ID`` shows a
live car for every profile.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from anycar.brands import list_profiles
from anycar.brands.ecus import EcuEncoder
from anycar.can.sources import write_log

STARTS = {
    "xiaomi_su7": (39.9929, 116.4863),  # Beijing, Yizhuang
    "nio_et7": (31.2304, 121.4737),  # Shanghai
    "byd_seal": (22.5431, 114.0579),  # Shenzhen
    "xpeng_p7": (23.1291, 113.2644),  # Guangzhou
    "li_auto_l9": (40.0415, 116.3100),  # Beijing, Haidian
    "kaiyun_pickman": (29.0784, 119.6474),  # Jinhua, Zhejiang
    "tesla_model3": (37.3947, -122.1503),  # Palo Alto
    "vw_mqb": (52.4227, 10.7865),  # Wolfsburg
    "hyundai_2015": (37.5665, 126.9780),  # Seoul
    "mg": (51.5072, -0.1276),  # London
    "bmw_e9x": (48.1351, 11.5820),  # Munich
    "gwm_haval_h6_phev": (38.8738, 115.4646),  # Baoding
    "hongqi_hs5": (43.8171, 125.3235),  # Changchun
    "toyota_2017": (35.0844, 137.1531),  # Toyota City
}


def trip(pid: str, seconds: float = 30.0, step: float = 0.1) -> list[dict[str, object]]:
    lat0, lon0 = STARTS[pid]
    vmax = 40.0 if pid == "kaiyun_pickman" else 60.0
    states = []
    lat, lon, odo, soc = lat0, lon0, 12_345_000, 78.0
    heading = 45.0
    t = 0.0
    while t < seconds:
        moving = 5.0 <= t < 27.0
        speed = 0.0 if not moving else min(vmax, (t - 5.0) * 6.0, max(0.0, (27.0 - t) * 8.0))
        heading = (45.0 + (30.0 if t > 15 else 0.0) * min(1.0, max(0.0, t - 15))) % 360
        dist = speed / 3.6 * step
        lat += dist * math.cos(math.radians(heading)) / 111_320.0
        lon += dist * math.sin(math.radians(heading)) / (111_320.0 * math.cos(math.radians(lat)))
        odo += dist
        soc -= dist * 0.00002
        gear = 127 if 4.0 <= t < 28.0 else 126
        values: dict[str, object] = {
            "Vehicle.Speed": round(speed, 2),
            "Vehicle.IsMoving": speed > 0.1,
            "Vehicle.TraveledDistance": int(odo),
            "Vehicle.Powertrain.Transmission.SelectedGear": gear,
            "Vehicle.Powertrain.Transmission.CurrentGear": 1 if gear == 127 else 0,
            "Vehicle.LowVoltageSystemState": "ON" if 3.0 <= t < 29.0 else "OFF",
            "Vehicle.Chassis.Accelerator.PedalPosition": 30 if 5.0 <= t < 12.0 else 0,
            "Vehicle.Chassis.Brake.PedalPosition": 40 if 24.0 <= t < 27.5 else 0,
            "Vehicle.Body.Lights.Brake.IsActive": "ACTIVE" if 24.0 <= t < 27.5 else "INACTIVE",
            "Vehicle.Chassis.SteeringWheel.Angle": 90 if 15.0 <= t < 16.5 else 0,
            "Vehicle.Chassis.ParkingBrake.IsEngaged": not (4.0 <= t < 28.0),
            "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current": round(soc, 1),
            "Vehicle.Powertrain.TractionBattery.CurrentCurrent": round(speed * 2.5, 1),
            "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen": t < 2.0 or t >= 29.0,
            "Vehicle.Cabin.Seat.Row1.DriverSide.IsBelted": 2.5 <= t < 28.5,
            "Vehicle.Body.Lights.Beam.Low.IsOn": 3.0 <= t < 29.0,
            "Vehicle.Body.Lights.DirectionIndicator.Right.IsSignaling": 13.0 <= t < 16.0,
            "Vehicle.Cabin.HVAC.AmbientAirTemperature": round(27.0 - min(t, 25.0) * 0.1, 1),
            "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature": 22.0,
            "Vehicle.Cabin.HVAC.IsAirConditioningActive": 3.0 <= t < 29.0,
            "Vehicle.CurrentLocation.Latitude": round(lat, 7),
            "Vehicle.CurrentLocation.Longitude": round(lon, 7),
            "Vehicle.CurrentLocation.Heading": round(heading, 2),
            "Vehicle.LowVoltageBattery.CurrentVoltage": 14.1 if 3.0 <= t < 29.0 else 12.6,
        }
        for axle in ("Row1", "Row2"):  # the ABS's wheel speeds (km/h), the outer wheels faster in the turn
            for side, k in (("Left", 1.0), ("Right", 1.02 if 15.0 <= t < 16.5 else 1.0)):
                values[f"Vehicle.Chassis.Axle.{axle}.Wheel.{side}.Speed"] = round(speed * k, 2)
        states.append({"t": round(t, 3), "values": values})
        t += step
    return states


def main() -> int:
    for profile in list_profiles():
        enc = EcuEncoder(profile)
        frames = []
        for state in trip(profile.id):
            values = {k: v for k, v in state["values"].items() if k in enc.paths}  # type: ignore[union-attr]
            frames.extend(enc.encode(values, timestamp=1_700_000_000.0 + float(state["t"])))  # type: ignore[arg-type]
        out = Path(profile.directory) / "sample.log"
        write_log(out, frames)
        print(f"{profile.id}: {len(frames)} frames -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
