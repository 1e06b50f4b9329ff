"""Write the reference brand profiles: DBC files and mappings written by this project.

The makers of these cars do not publish their CAN databases. The reference profiles give the
simulator and the demo a realistic bus per brand, each with its own ids, byte order, scaling,
value-table names and frame kinds (CAN FD, extended ids, several buses, multiplexing), and a
mapping with ``dbc2vss`` and ``vss2dbc`` for every signal, so one mapping both decodes and encodes.
They are marked ``reference: true`` and are not the makers' own files.

Run ``python tools/make_reference_profiles.py`` after changing this file; the output is committed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cantools
import yaml
from cantools.database.can import Database, Message, Node, Signal
from cantools.database.conversion import BaseConversion

DATA = Path(__file__).resolve().parents[1] / "src" / "anycar" / "brands" / "data"


@dataclass
class Sig:
    key: str  # logical name; DBC name = brand prefix + key
    vss: str | None
    bits: int
    scale: float = 1
    offset: float = 0
    lo: float = 0
    hi: float | None = None
    unit: str = ""
    signed: bool = False
    choices: dict[int, str] | None = None
    to_vss: dict[str, Any] | None = None  # dbc2vss transform
    to_dbc: dict[str, Any] | None = None  # vss2dbc transform
    interval_ms: int = 0
    mux: int | None = None


@dataclass
class Msg:
    key: str
    signals: list[Sig]
    cycle_ms: int = 100
    length: int = 8
    fd: bool = False
    muxed: bool = False
    bus: str = "main"


BOOL = {0: "OFF", 1: "ON"}


def flag(key: str, vss: str, names: dict[int, str] | None = None) -> Sig:
    return Sig(key, vss, 1, hi=1, choices=names)


def gear_sig(names: dict[str, str]) -> list[Sig]:
    ch = {0: names["P"], 1: names["R"], 2: names["N"], 3: names["D"], 7: names["X"]}
    cur = [{"from": names["P"], "to": 0}, {"from": names["R"], "to": -1}, {"from": names["N"], "to": 0}]
    cur.append({"from": names["D"], "to": 1})
    sel = [{"from": names["P"], "to": 126}, {"from": names["R"], "to": -1}, {"from": names["N"], "to": 0}]
    sel.append({"from": names["D"], "to": 127})
    sel_back = [
        {"from": 126, "to": names["P"]},
        {"from": -1, "to": names["R"]},
        {"from": 0, "to": names["N"]},
    ]
    sel_back.append({"from": 127, "to": names["D"]})
    return [
        Sig(
            "GearPos",
            "Vehicle.Powertrain.Transmission.SelectedGear",
            3,
            hi=7,
            choices=ch,
            to_vss={"mapping": sel},
            to_dbc={"mapping": sel_back},
        ),
        Sig(
            "GearAct",
            "Vehicle.Powertrain.Transmission.CurrentGear",
            3,
            hi=7,
            choices=ch,
            to_vss={"mapping": cur},
            to_dbc={
                "mapping": [
                    {"from": 0, "to": names["N"]},
                    {"from": 1, "to": names["D"]},
                    {"from": -1, "to": names["R"]},
                ]
            },
        ),
    ]


def power_sig(names: dict[str, str]) -> Sig:
    ch = {0: names["OFF"], 1: names["ACC"], 2: names["ON"], 3: names["START"]}
    fwd = [{"from": ch[i], "to": v} for i, v in enumerate(("OFF", "ACC", "ON", "START"))]
    back = [{"from": v, "to": ch[i]} for i, v in enumerate(("OFF", "ACC", "ON", "START"))]
    return Sig(
        "PowerMode",
        "Vehicle.LowVoltageSystemState",
        2,
        hi=3,
        choices=ch,
        to_vss={"mapping": fwd},
        to_dbc={"mapping": back},
    )


def common_messages(b: dict[str, Any]) -> list[Msg]:
    vmax = b.get("vmax", 260)
    pack_v = b.get("pack_v", 900)
    pack_a = b.get("pack_a", 800)
    km = {"math": "floor(x*1000+0.5)"}
    km_back = {"math": "x/1000"}
    msgs = [
        Msg(
            "VehSpeed",
            [
                Sig("VehSpd", "Vehicle.Speed", 16, 0.01, 0, 0, vmax, "km/h"),
                Sig(
                    "Odometer",
                    "Vehicle.TraveledDistance",
                    24,
                    0.1,
                    0,
                    0,
                    999999,
                    "km",
                    to_vss=km,
                    to_dbc=km_back,
                ),
                Sig("VehMoving", "Vehicle.IsMoving", 1, hi=1),
            ],
            cycle_ms=20,
        ),
        Msg(
            "DriveState",
            [
                *gear_sig(b["gears"]),
                power_sig(b["power"]),
                Sig("AccelPedal", "Vehicle.Chassis.Accelerator.PedalPosition", 8, 0.4, 0, 0, 100, "%"),
                Sig("BrakePedal", "Vehicle.Chassis.Brake.PedalPosition", 8, 0.4, 0, 0, 100, "%"),
                Sig(
                    "SteerAngle",
                    "Vehicle.Chassis.SteeringWheel.Angle",
                    16,
                    0.1,
                    0,
                    -780,
                    780,
                    "deg",
                    signed=True,
                    to_vss={"math": "floor(x+0.5)"},
                ),
                flag("EPBActive", "Vehicle.Chassis.ParkingBrake.IsEngaged"),
                flag("BrakeLamp", "Vehicle.Body.Lights.Brake.IsActive", {0: "INACTIVE", 1: "ACTIVE"}),
            ],
            cycle_ms=20,
        ),
        Msg(
            "WheelSpeed",
            [
                Sig("WhlSpdFL", "Vehicle.Chassis.Axle.Row1.Wheel.Left.Speed", 16, 0.01, 0, 0, vmax, "km/h"),
                Sig("WhlSpdFR", "Vehicle.Chassis.Axle.Row1.Wheel.Right.Speed", 16, 0.01, 0, 0, vmax, "km/h"),
                Sig("WhlSpdRL", "Vehicle.Chassis.Axle.Row2.Wheel.Left.Speed", 16, 0.01, 0, 0, vmax, "km/h"),
                Sig("WhlSpdRR", "Vehicle.Chassis.Axle.Row2.Wheel.Right.Speed", 16, 0.01, 0, 0, vmax, "km/h"),
            ],
            cycle_ms=20,
        ),
        Msg(
            "BattState",
            [
                Sig(
                    "SOC", "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current", 10, 0.1, 0, 0, 100, "%"
                ),
                Sig(
                    "PackVolt",
                    "Vehicle.Powertrain.TractionBattery.CurrentVoltage",
                    14,
                    0.1,
                    0,
                    0,
                    pack_v,
                    "V",
                ),
                Sig(
                    "PackCurr",
                    "Vehicle.Powertrain.TractionBattery.CurrentCurrent",
                    16,
                    0.1,
                    -pack_a,
                    -pack_a,
                    pack_a,
                    "A",
                ),
                Sig(
                    "Range",
                    "Vehicle.Powertrain.TractionBattery.Range",
                    10,
                    1,
                    0,
                    0,
                    1000,
                    "km",
                    to_vss=km,
                    to_dbc=km_back,
                ),
                Sig("Charging", "Vehicle.Powertrain.TractionBattery.Charging.IsCharging", 1, hi=1),
            ],
            cycle_ms=100,
        ),
        Msg(
            "BattTemp",
            [
                Sig("TempMux", None, 2, hi=3),
                Sig(
                    "CellTempMax",
                    "Vehicle.Powertrain.TractionBattery.Temperature.Max",
                    8,
                    1,
                    -40,
                    -40,
                    125,
                    "degC",
                    mux=0,
                ),
                Sig(
                    "CellTempMin",
                    "Vehicle.Powertrain.TractionBattery.Temperature.Min",
                    8,
                    1,
                    -40,
                    -40,
                    125,
                    "degC",
                    mux=0,
                ),
                Sig(
                    "CellTempAvg",
                    "Vehicle.Powertrain.TractionBattery.Temperature.Average",
                    8,
                    1,
                    -40,
                    -40,
                    125,
                    "degC",
                    mux=1,
                ),
                Sig("SOH", "Vehicle.Powertrain.TractionBattery.StateOfHealth", 8, 0.5, 0, 0, 100, "%", mux=1),
            ],
            cycle_ms=500,
            muxed=True,
        ),
        Msg(
            "LVBatt",
            [
                Sig("LVVolt", "Vehicle.LowVoltageBattery.CurrentVoltage", 8, 0.1, 0, 0, 25.5, "V"),
                Sig("LVCurr", "Vehicle.LowVoltageBattery.CurrentCurrent", 12, 0.1, -200, -200, 200, "A"),
            ],
            cycle_ms=1000,
            bus="body",
        ),
        Msg(
            "BodyStatus",
            [
                flag("DoorFL", "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen"),
                flag("DoorFR", "Vehicle.Cabin.Door.Row1.PassengerSide.IsOpen"),
                flag("DoorRL", "Vehicle.Cabin.Door.Row2.DriverSide.IsOpen"),
                flag("DoorRR", "Vehicle.Cabin.Door.Row2.PassengerSide.IsOpen"),
                flag("Trunk", "Vehicle.Body.Trunk.Rear.IsOpen"),
                flag("Hood", "Vehicle.Body.Hood.IsOpen"),
                flag("LockFL", "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked"),
                flag("LockFR", "Vehicle.Cabin.Door.Row1.PassengerSide.IsLocked"),
                flag("BeltDrv", "Vehicle.Cabin.Seat.Row1.DriverSide.IsBelted"),
                flag("BeltPsg", "Vehicle.Cabin.Seat.Row1.PassengerSide.IsBelted"),
                Sig("WinFL", "Vehicle.Cabin.Door.Row1.DriverSide.Window.Position", 7, 1, 0, 0, 100, "%"),
                Sig("WinFR", "Vehicle.Cabin.Door.Row1.PassengerSide.Window.Position", 7, 1, 0, 0, 100, "%"),
            ],
            cycle_ms=100,
            bus="body",
        ),
        Msg(
            "LightStatus",
            [
                flag("LowBeam", "Vehicle.Body.Lights.Beam.Low.IsOn"),
                flag("HighBeam", "Vehicle.Body.Lights.Beam.High.IsOn"),
                flag("TurnL", "Vehicle.Body.Lights.DirectionIndicator.Left.IsSignaling"),
                flag("TurnR", "Vehicle.Body.Lights.DirectionIndicator.Right.IsSignaling"),
                flag("Hazard", "Vehicle.Body.Lights.Hazard.IsSignaling"),
                flag("FogFront", "Vehicle.Body.Lights.Fog.Front.IsOn"),
                flag("ParkLamp", "Vehicle.Body.Lights.Parking.IsOn"),
                flag("DRL", "Vehicle.Body.Lights.Running.IsOn"),
            ],
            cycle_ms=100,
            bus="body",
        ),
        Msg(
            "Climate",
            [
                Sig("CabinTemp", "Vehicle.Cabin.HVAC.AmbientAirTemperature", 8, 0.5, -40, -40, 87.5, "degC"),
                Sig("OutsideTemp", "Vehicle.Exterior.AirTemperature", 8, 0.5, -40, -40, 87.5, "degC"),
                Sig(
                    "SetTempDrv",
                    "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature",
                    6,
                    0.5,
                    15,
                    15,
                    32,
                    "degC",
                ),
                Sig("FanSpeed", "Vehicle.Cabin.HVAC.Station.Row1.Driver.FanSpeed", 7, 1, 0, 0, 100, "%"),
                flag("ACOn", "Vehicle.Cabin.HVAC.IsAirConditioningActive"),
                flag("RecircOn", "Vehicle.Cabin.HVAC.IsRecirculationActive"),
            ],
            cycle_ms=500,
            bus="body",
        ),
        Msg(
            "GnssPos",
            [
                Sig("Latitude", "Vehicle.CurrentLocation.Latitude", 32, 1e-7, 0, -90, 90, "deg", signed=True),
                Sig(
                    "Longitude",
                    "Vehicle.CurrentLocation.Longitude",
                    32,
                    1e-7,
                    0,
                    -180,
                    180,
                    "deg",
                    signed=True,
                ),
            ],
            cycle_ms=100,
            bus="body",
        ),
        Msg(
            "GnssMotion",
            [
                Sig("Heading", "Vehicle.CurrentLocation.Heading", 16, 0.01, 0, 0, 360, "deg"),
                Sig("Altitude", "Vehicle.CurrentLocation.Altitude", 16, 0.1, -500, -500, 6000, "m"),
                Sig("GnssFix", None, 2, hi=3, choices={0: "NO_FIX", 1: "FIX_2D", 2: "FIX_3D", 3: "RTK"}),
            ],
            cycle_ms=100,
            bus="body",
        ),
        Msg(
            "PowerFlow",
            [
                Sig(
                    "BattPower",
                    "Vehicle.Powertrain.TractionBattery.CurrentPower",
                    16,
                    0.01,
                    0,
                    -300,
                    300,
                    "kW",
                    signed=True,
                    to_vss={"math": "x*1000"},
                    to_dbc={"math": "x/1000"},
                ),
                Sig(
                    "MotorPower",
                    "Vehicle.Powertrain.ElectricMotor.Power",
                    16,
                    0.1,
                    0,
                    -1000,
                    1000,
                    "kW",
                    signed=True,
                    to_vss={"math": "floor(x+0.5)"},
                ),
                Sig(
                    "DriveRange",
                    "Vehicle.Powertrain.Range",
                    12,
                    1,
                    0,
                    0,
                    4000,
                    "km",
                    to_vss=km,
                    to_dbc=km_back,
                ),
                Sig(
                    "LongAccel",
                    "Vehicle.Acceleration.Longitudinal",
                    12,
                    0.01,
                    0,
                    -20,
                    20,
                    "m/s2",
                    signed=True,
                ),
                flag("ReverseLamp", "Vehicle.Body.Lights.Backup.IsOn"),
            ],
            cycle_ms=100,
        ),
    ]
    return msgs


BRANDS: dict[str, dict[str, Any]] = {
    "xiaomi_su7": {
        "brand": "Xiaomi",
        "model": "SU7",
        "prefix": "",
        "order": "little_endian",
        "base": 0x100,
        "step": 0x10,
        "fd": {"BodyStatus": 16, "GnssPos": 12},
        "node": "XM_VCU",
        "gears": {"P": "P", "R": "R", "N": "N", "D": "D", "X": "Invalid"},
        "power": {"OFF": "Off", "ACC": "Acc", "ON": "On", "START": "Ready"},
        "names": {
            "VehSpeed": "VCU_VehSpd",
            "DriveState": "VCU_DrvSts",
            "WheelSpeed": "ESC_WhlSpd",
            "BattState": "BMS_Sts",
            "BattTemp": "BMS_Temp",
            "LVBatt": "DCDC_Sts",
            "BodyStatus": "BCM_Sts",
            "LightStatus": "BCM_Lamp",
            "Climate": "TMS_Hvac",
            "GnssPos": "TBOX_Pos",
            "GnssMotion": "TBOX_Mot",
        },
        "description": "Xiaomi SU7 (reference): CAN FD for body status and position, little-endian signals.",
        "pack_v": 900,
        "pack_a": 1000,
    },
    "nio_et7": {
        "brand": "NIO",
        "model": "ET7",
        "order": "big_endian",
        "base": 0x18FF1000,
        "step": 0x100,
        "extended": True,
        "node": "NIO_CGW",
        "gears": {"P": "Park", "R": "Reverse", "N": "Neutral", "D": "Drive", "X": "Fault"},
        "power": {"OFF": "Sleep", "ACC": "Standby", "ON": "Active", "START": "Drive"},
        "description": "NIO ET7 (reference): 29-bit ids, Motorola byte order.",
        "pack_v": 800,
        "pack_a": 800,
    },
    "byd_seal": {
        "brand": "BYD",
        "model": "Seal",
        "order": "big_endian",
        "base": 0x200,
        "step": 0x08,
        "buses": {"main": ("powertrain", "can0"), "body": ("body", "can1")},
        "node": "BYD_GW",
        "gears": {"P": "GEAR_P", "R": "GEAR_R", "N": "GEAR_N", "D": "GEAR_D", "X": "GEAR_INVALID"},
        "power": {"OFF": "OFF", "ACC": "ACC", "ON": "ON", "START": "OK"},
        "description": "BYD Seal (reference): powertrain and body on two buses, Motorola byte order.",
        "pack_v": 800,
        "pack_a": 800,
    },
    "xpeng_p7": {
        "brand": "Xpeng",
        "model": "P7",
        "order": "little_endian",
        "base": 0x300,
        "step": 0x04,
        "node": "XP_XCU",
        "gears": {"P": "PARK", "R": "REV", "N": "NEU", "D": "DRV", "X": "ERR"},
        "power": {"OFF": "OFF", "ACC": "ACC", "ON": "IGN_ON", "START": "READY"},
        "description": "Xpeng P7 (reference): little-endian, multiplexed battery temperatures.",
        "pack_v": 600,
        "pack_a": 600,
    },
    "li_auto_l9": {
        "body": "suv",
        "brand": "Li Auto",
        "model": "L9",
        "order": "big_endian",
        "base": 0x400,
        "step": 0x10,
        "node": "LI_VCU",
        "erev": True,
        "gears": {"P": "P_Gear", "R": "R_Gear", "N": "N_Gear", "D": "D_Gear", "X": "Invalid"},
        "power": {"OFF": "PowerOff", "ACC": "Accessory", "ON": "PowerOn", "START": "Running"},
        "description": "Li Auto L9 (reference): extended-range EV with a fuel tank and range-extender engine.",
        "pack_v": 500,
        "pack_a": 500,
    },
    "kaiyun_pickman": {
        "brand": "Kaiyun",
        "model": "PICKMAN",
        "order": "little_endian",
        "base": 0x0CF10000,
        "step": 0x100,
        "extended": True,
        "node": "KY_VCU",
        "vmax": 60,
        "pack_v": 120,
        "pack_a": 300,
        "vehicle_class": "low_speed_electric_pickup",
        "swappable": {"prefix": "KYB", "digits": 8},  # pack serials as the swap stations know them
        "gears": {"P": "P", "R": "R", "N": "N", "D": "D", "X": "ERR"},
        "power": {"OFF": "OFF", "ACC": "ACC", "ON": "ON", "START": "READY"},
        "description": "Kaiyun PICKMAN (reference): low-speed electric pickup (25-45 km/h) for micro-logistics, "
        "72 V pack, J1939-style 29-bit ids.",
    },
}


def erev_message() -> Msg:
    return Msg(
        "RangeExtender",
        [
            Sig("FuelLevel", "Vehicle.Powertrain.FuelSystem.RelativeLevel", 7, 1, 0, 0, 100, "%"),
            Sig("EngSpeed", "Vehicle.Powertrain.CombustionEngine.Speed", 14, 0.5, 0, 0, 8000, "rpm"),
            flag("EngRunning", "Vehicle.Powertrain.CombustionEngine.IsRunning"),
            Sig(
                "FuelRange",
                "Vehicle.Powertrain.FuelSystem.Range",
                11,
                1,
                0,
                0,
                1500,
                "km",
                to_vss={"math": "floor(x*1000+0.5)"},
                to_dbc={"math": "x/1000"},
            ),
        ],
        cycle_ms=200,
    )


SWAP_OVERLAY = "swappable_pack.vspec"


def swap_overlay(b: dict[str, Any]) -> str:
    """The VSS overlay of a vehicle whose traction battery is swapped at a station: the pack's
    identity and capacity are attributes in VSS 6.0 (fixed for a car's life) but change with each
    swap here, so they become sensors; the serial's shape is the pattern the mapping writes."""
    serial = b["swappable"]
    nodes = {
        "Vehicle.Powertrain.TractionBattery.Id": {
            "type": "sensor",
            "datatype": "string",
            "pattern": f"^{serial['prefix']}[0-9]{{{serial['digits']}}}$",
            "description": "Serial number of the traction battery pack now fitted (swappable pack: "
            "changes at a swap station).",
        },
        "Vehicle.Powertrain.TractionBattery.GrossCapacity": {
            "type": "sensor",
            "datatype": "uint16",
            "unit": "kWh",
            "description": "Gross capacity of the pack now fitted (changes with the pack at a swap).",
        },
    }
    head = (
        f"# {b['brand']} {b['model']}: swappable traction battery (an overlay over VSS 6.0).\n"
        "# Generated by tools/make_reference_profiles.py; edit the tool.\n"
    )
    return head + yaml.safe_dump(nodes, sort_keys=False, width=110)


def pack_message(b: dict[str, Any]) -> Msg:
    """The BMS's pack identity frame: the serial as an integer (the mapping's ``serial``
    transform gives VSS the station's string), the pack's gross and net capacity."""
    top = 10 ** b["swappable"]["digits"] - 1
    return Msg(
        "BattPack",
        [
            Sig(
                "PackSerial",
                "Vehicle.Powertrain.TractionBattery.Id",
                32,
                hi=top,
                to_vss={"serial": dict(b["swappable"])},
                to_dbc={"serial": dict(b["swappable"])},
            ),
            Sig("PackGrossCap", "Vehicle.Powertrain.TractionBattery.GrossCapacity", 8, 1, 0, 0, 255, "kWh"),
            Sig("PackNetCap", "Vehicle.Powertrain.TractionBattery.NetCapacity", 8, 1, 0, 0, 255, "kWh"),
        ],
        cycle_ms=1000,
    )


def build(pid: str, b: dict[str, Any]) -> tuple[dict[str, Database], list[tuple[str, Msg, Message]]]:
    msgs = common_messages(b)
    if b.get("erev"):
        msgs.append(erev_message())
    if b.get("swappable"):
        msgs.append(pack_message(b))
    buses = b.get("buses", {"main": ("main", "can0"), "body": ("main", "can0")})
    dbs: dict[str, list[Message]] = {}
    built: list[tuple[str, Msg, Message]] = []
    order = b["order"]
    for i, m in enumerate(msgs):
        name = b.get("names", {}).get(m.key, f"{b['node'].split('_')[0]}_{m.key}")
        length = b.get("fd", {}).get(m.key, m.length)
        signals = layout(m, order, length, b)
        frame_id = b["base"] + i * b["step"]
        message = Message(
            frame_id=frame_id,
            name=name,
            length=length,
            signals=signals,
            senders=[b["node"]],
            cycle_time=m.cycle_ms,
            is_extended_frame=bool(b.get("extended")),
            is_fd=length > 8,
            strict=True,
        )
        bus = buses[m.bus][0]
        dbs.setdefault(bus, []).append(message)
        built.append((bus, m, message))
    out = {}
    for bus, messages in dbs.items():
        out[bus] = Database(messages=messages, nodes=[Node(b["node"], None)], strict=True)
    return out, built


def layout(m: Msg, order: str, length: int, b: dict[str, Any]) -> list[Signal]:
    """Pack signals one after another (muxed ones share the space after the selector)."""
    cursor = 0
    mux_start = None
    mux_cursor: dict[int, int] = {}
    out: list[Signal] = []
    selector = None
    for s in m.signals:
        if m.muxed and s.mux is not None:
            if mux_start is None:
                mux_start = cursor
            pos = mux_cursor.get(s.mux, mux_start)
            mux_cursor[s.mux] = pos + s.bits
        else:
            pos = cursor
            cursor += s.bits
        # for Motorola, pos counts bits MSB-first; the DBC start bit is the MSB's sawtooth index
        start = pos if order == "little_endian" else (pos // 8) * 8 + (7 - pos % 8)
        hi = s.hi if s.hi is not None else (2**s.bits - 1) * s.scale + s.offset
        name = s.key
        sig = Signal(
            name=name,
            start=start,
            length=s.bits,
            byte_order=order,  # type: ignore[arg-type]
            is_signed=s.signed,
            conversion=BaseConversion.factory(scale=s.scale, offset=s.offset, choices=s.choices),
            minimum=s.lo,
            maximum=hi,
            unit=s.unit or None,
            is_multiplexer=bool(m.muxed and s.mux is None and selector is None and s.vss is None),
            multiplexer_ids=[s.mux] if (m.muxed and s.mux is not None) else None,
            multiplexer_signal=m.signals[0].key if (m.muxed and s.mux is not None) else None,
        )
        if sig.is_multiplexer:
            selector = sig
        out.append(sig)
    end = max([cursor, *mux_cursor.values()])
    assert end <= length * 8, f"{m.key}: {end} bits do not fit {length} bytes"
    return out


def mapping_for(pid: str, b: dict[str, Any], built: list[tuple[str, Msg, Message]]) -> str:
    lines = [
        f"# {b['brand']} {b['model']} -> VSS 6.0 (reference mapping written by anycar, not the maker's).",
        "# KUKSA CAN provider overlay format; vss2dbc entries let a simulator encode the same signals.",
        "# Generated by tools/make_reference_profiles.py.",
    ]
    multi_bus = len({bus for bus, _, _ in built}) > 1
    for bus, m, message in built:
        lines.append(
            f"\n# {message.name} (0x{message.frame_id:X}{', extended' if message.is_extended_frame else ''}"
            f"{', CAN FD' if message.is_fd else ''}, every {m.cycle_ms} ms, bus {bus})"
        )
        for s in m.signals:
            if not s.vss:
                continue
            d2v: dict[str, Any] = {"signal": s.key, "message": message.name}
            if multi_bus:
                d2v["bus"] = bus
            if m.cycle_ms <= 20 and s.bits > 4:
                d2v["interval_ms"] = 100
            d2v["on_change"] = True
            choices = {str(v) for v in (s.choices or {}).values()}
            if s.to_vss:
                d2v["transform"] = s.to_vss
            elif s.choices:
                d2v["transform"] = {
                    "mapping": [
                        {"from": name, "to": name if s.vss.endswith("IsActive") else bool(k)}
                        for k, name in sorted(s.choices.items())
                    ]
                }
            v2d: dict[str, Any] = {"signal": s.key, "message": message.name}
            if multi_bus:
                v2d["bus"] = bus
            if s.to_dbc:
                v2d["transform"] = s.to_dbc
            elif s.choices:
                v2d["transform"] = {
                    "mapping": [
                        {"from": name if s.vss.endswith("IsActive") else bool(k), "to": name}
                        for k, name in sorted(s.choices.items())
                    ]
                }
            del choices
            node = {"dbc2vss": d2v, "vss2dbc": v2d}
            text = yaml.safe_dump({s.vss: node}, sort_keys=False, default_flow_style=None, width=110)
            lines.append(text.rstrip())
    return "\n".join(lines) + "\n"


def main() -> int:
    for pid, b in BRANDS.items():
        folder = DATA / pid
        folder.mkdir(parents=True, exist_ok=True)
        dbs, built = build(pid, b)
        bus_channels = b.get("buses", {"main": ("main", "can0")})
        bus_entries = []
        seen = set()
        for _, (bus, channel) in bus_channels.items():
            if bus in seen:
                continue
            seen.add(bus)
            fname = f"{pid}_{bus}.dbc" if len(dbs) > 1 else f"{pid}.dbc"
            header = (
                f'CM_ "anycar reference DBC for the {b["brand"]} {b["model"]} ({bus} bus): written by the anycar '
                f"project for simulation and demos; not the maker's database.\";\n"
            )
            text = dbs[bus].as_dbc_string()
            text = text.replace("BS_:", "BS_:", 1)
            (folder / fname).write_text(text.rstrip() + "\n\n" + header, encoding="utf-8")
            bus_entries.append({"name": bus, "channel": channel, "dbc": fname})
        (folder / "mapping.yaml").write_text(mapping_for(pid, b, built), encoding="utf-8")
        profile = {
            "brand": b["brand"],
            "model": b["model"],
            "reference": True,
            "vehicle_class": b.get("vehicle_class", "passenger_car"),
            "source": "anycar reference DBC (tools/make_reference_profiles.py); not the maker's database",
            "description": b["description"],
            "buses": bus_entries,
            "mappings": ["mapping.yaml"],
            "sample_log": "sample.log",
        }
        if "body" in b:  # otherwise the loader's default (pickup for a pickup class, else sedan)
            profile["body"] = b["body"]
        if b.get("swappable"):
            # the pack's identity changes at run time: VSS 6.0's attributes made sensors
            (folder / SWAP_OVERLAY).write_text(swap_overlay(b), encoding="utf-8")
            profile["overlays"] = [SWAP_OVERLAY]
        (folder / "profile.yaml").write_text(
            f"# {b['brand']} {b['model']}: reference profile (DBC written by anycar). Generated; edit the tool.\n"
            + yaml.safe_dump(profile, sort_keys=False, width=110),
            encoding="utf-8",
        )
        # check that what was written loads back the same way
        for entry in bus_entries:
            cantools.database.load_file(str(folder / entry["dbc"]), strict=True)
        print(f"{pid}: {sum(len(d.messages) for d in dbs.values())} messages on {len(dbs)} bus(es)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
