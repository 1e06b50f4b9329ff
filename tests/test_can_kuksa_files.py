"""The KUKSA CAN provider's own files (Apache-2.0, tests/data/kuksa) work unchanged through the adapter."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import can
import pytest

from anycar.broker import SignalBroker
from anycar.can import Bus, CanAdapter, CanNetwork, LoadedDbc, load_dbc, load_mapping
from anycar.can.mapping import unit_renames
from anycar.model.catalog import known_units

KUKSA = Path(__file__).resolve().parent / "data" / "kuksa"
SHARED = next(
    (p / "shared" / "kuksa" for p in Path(__file__).resolve().parents if (p / "shared" / "kuksa").is_dir()),
    None,
)
MAPPINGS = [
    KUKSA / "vss_3.0" / "vss_dbc.json",
    KUKSA / "vss_4.2" / "vss_dbc.json",
    KUKSA / "vss_4.2" / "dbc_overlay.vspec",
]


@cache
def _model3() -> LoadedDbc:
    return load_dbc(KUKSA / "Model3CAN.dbc")  # read-only, shared by the tests


def _adapter(mapping: Path) -> tuple[SignalBroker, CanAdapter]:
    broker = SignalBroker()
    network = CanNetwork([Bus("can", [_model3()])])
    return broker, CanAdapter(broker, network, load_mapping(mapping))


def _frame(adapter: CanAdapter, message: str, values: dict[str, Any], ts: float) -> can.Message:
    msg = adapter.network.buses[0].dbcs[0].db.get_message_by_name(message)
    data = msg.encode({s.name: 0 for s in msg.signals} | values, strict=False)
    return can.Message(arbitration_id=msg.frame_id, data=data, timestamp=ts, is_extended_id=False)


def test_every_older_unit_name_maps_onto_a_vss_6_unit() -> None:
    table = unit_renames()
    assert table["celsius"] == "Celsius"
    assert set(table.values()) <= known_units()
    assert not set(table) & known_units()  # a rename never hides a unit VSS 6.0 still has


@pytest.mark.parametrize("mapping", MAPPINGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_kuksa_mapping_files_load_without_a_problem(mapping: Path) -> None:
    broker, adapter = _adapter(mapping)
    assert adapter.problems == []
    assert len(adapter.paths) >= 31
    if mapping.suffix == ".json" and "4.2" in str(mapping):
        # VSS 4.2's OBD branch is gone from 6.0: the mapping adds it, with the unit renamed
        assert broker.catalog.get("Vehicle.OBD.AmbientAirTemperature").unit == "Celsius"


@pytest.mark.skipif(SHARED is None, reason="shared/ not beside the repo")
def test_every_vss_release_of_the_shared_kuksa_snapshot_loads() -> None:
    assert SHARED is not None
    files = sorted(SHARED.glob("mapping/vss_*/vss_dbc.json"))
    assert len(files) == 5
    for f in files:
        _broker, adapter = _adapter(f)
        assert adapter.problems == [], f


def test_kuksa_mapping_and_model3_dbc_decode_frames_through_the_adapter() -> None:
    broker, adapter = _adapter(KUKSA / "vss_4.2" / "vss_dbc.json")
    adapter.feed_many(
        [
            _frame(adapter, "ID118DriveSystemStatus", {"DI_gear": "DI_GEAR_R"}, 10.0),
            _frame(adapter, "ID257DIspeed", {"DI_uiSpeed": 42}, 10.0),
            _frame(adapter, "ID321VCFRONT_sensors", {"VCFRONT_tempAmbientFiltered": 21.5}, 10.0),
            _frame(adapter, "ID129SteeringAngle", {"SteeringAngle129": -12.3}, 10.0),
        ]
    )
    got = {p: broker.get(p).value for p in adapter.paths if broker.get(p) is not None}  # type: ignore[union-attr]
    assert got["Vehicle.Powertrain.Transmission.CurrentGear"] == -1
    assert got["Vehicle.Powertrain.Transmission.IsParkLockEngaged"] is False
    assert got["Vehicle.Speed"] == 42
    assert got["Vehicle.OBD.AmbientAirTemperature"] == 21.5
    assert got["Vehicle.Chassis.SteeringWheel.Angle"] == -12
    assert adapter.bad.wrong_length == adapter.bad.out_of_range == adapter.bad.transform_failed == 0


def test_one_unusable_rule_is_a_warning_naming_it_and_the_rest_runs(tmp_path: Path) -> None:
    tree = json.loads((KUKSA / "vss_4.2" / "vss_dbc.json").read_text())
    obd = tree["Vehicle"]["children"]["OBD"]["children"]
    obd["AmbientAirTemperature"]["unit"] = "parsec"  # no VSS release has it
    obd["Speed"]["dbc2vss"]["signal"] = "NoSuchSignal"  # a signal none of the DBCs carries
    path = tmp_path / "vss_dbc.json"
    path.write_text(json.dumps(tree, indent=2))
    broker, adapter = _adapter(path)
    lines = path.read_text().splitlines()
    assert len(adapter.problems) == 2, adapter.problems
    unit, signal = sorted(adapter.problems, key=lambda p: "parsec" not in p)
    assert "Vehicle.OBD.AmbientAirTemperature" in unit and "'parsec'" in unit
    assert "DBC signal VCFRONT_tempAmbientFiltered" in unit and unit.endswith("rule not used")
    where = unit.split(": ")[0]
    assert where.startswith(f"{path}:") and '"AmbientAirTemperature"' in lines[int(where.split(":")[-1]) - 1]
    assert signal.startswith(f"{path}:") and "Vehicle.OBD.Speed" in signal and "'NoSuchSignal'" in signal
    adapter.feed(_frame(adapter, "ID257DIspeed", {"DI_uiSpeed": 42}, 10.0))
    assert broker.get("Vehicle.Speed").value == 42  # type: ignore[union-attr]
    assert "Vehicle.OBD.AmbientAirTemperature" not in adapter.paths
