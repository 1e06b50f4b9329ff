"""Manifests: the schema, trait and overlay checks name the exact field; every virtual manifest
is valid; binding puts signals on standard paths where the mount allows."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anycar.accessories import virtual
from anycar.accessories.errors import ManifestError
from anycar.accessories.manifest import load_manifest, mount_types, parse_manifest, schema
from anycar.accessories.traits import families, trait_catalog
from anycar.model import Catalog


def base() -> dict[str, Any]:
    return copy.deepcopy(virtual.manifest_data("clip_fan"))


def problems(data: Any) -> dict[str, str]:
    with pytest.raises(ManifestError) as info:
        parse_manifest(data)
    return dict(info.value.problems)


@pytest.mark.parametrize("name", list(virtual.VIRTUAL))
def test_every_virtual_manifest_is_valid(name: str) -> None:
    m = load_manifest(virtual.manifest_path(name))
    assert m.traits and m.power.peak_w >= m.power.typical_w >= m.power.standby_w


def test_trait_catalog_covers_the_issue() -> None:
    fams = families()
    for family in (
        "light",
        "fan",
        "display",
        "charger",
        "cooler",
        "fragrance",
        "camera",
        "speaker",
        "controls",
        "gauge",
        "environment",
        "cargo",
    ):
        assert family in fams
    assert {"cargo_door_sensor", "cargo_temperature_sensor", "cargo_weight_sensor", "tablet", "knob"} <= set(
        trait_catalog()
    )
    # one virtual accessory per family
    assert set(virtual.VIRTUAL.values()) == set(fams)


def test_schema_is_published_and_mount_types_come_from_it() -> None:
    assert schema()["$schema"].startswith("https://json-schema.org/")
    assert "quarter_inch_powered" in mount_types() and "cargo_bed_rail" in mount_types()


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (lambda d: d.pop("vendor_id"), "(top level)", "'vendor_id' is required"),
        (lambda d: d.update(vendor_id=70000), "vendor_id", "70000"),
        (lambda d: d.update(firmware_version="v1"), "firmware_version", "does not match"),
        (lambda d: d.update(traits=["toaster"]), "traits[0]", "toaster"),
        (lambda d: d.update(mount_types=["suction_cup"]), "mount_types[0]", "suction_cup"),
        (lambda d: d["power"].update(peak_w=-1), "power.peak_w", "minimum"),
        (lambda d: d["power"].update(peak_w=1), "power.typical_w", "above peak_w"),
        (lambda d: d.update(colour="red"), "(top level)", "unknown field"),
        (lambda d: d["vss"]["FanSpeed"].update(unit="rpmm"), "vss.FanSpeed.unit", "units.yaml"),
        (lambda d: d["vss"]["FanSpeed"].update(min=90, max=10), "vss.FanSpeed.min", "greater than max"),
        (lambda d: d["vss"]["FanSpeed"].update(datatype="uint9"), "vss.FanSpeed.datatype", "uint9"),
        (
            lambda d: d["vss"]["FanSpeed"].update(type="sensor"),
            "vss.FanSpeed",
            "needs FanSpeed (actuator uint8",
        ),
        (lambda d: d["vss"].pop("FanSpeed"), "traits[0]", "needs signal FanSpeed"),
        (
            lambda d: d["vss"].update({"Status": {"type": "sensor", "datatype": "string"}}),
            "vss.Status",
            "reserved",
        ),
        (
            lambda d: d["vss"].update({"Vehicle.Chassis.Axle.Row1.Wheel.Left.Brake.IsBrakesWorn": {}}),
            'vss["Vehicle.Chassis.Axle.Row1.Wheel.Left.Brake.IsBrakesWorn"]',
            "safety-critical",
        ),
        (
            lambda d: d["vss"].update({"Vehicle.Powertrain.Transmission.SelectedGear": {}}),
            'vss["Vehicle.Powertrain.Transmission.SelectedGear"]',
            "safety-critical",
        ),
        (
            lambda d: d["vss"].update({"Vehicle.Cabin.Door.Row1.DriverSide.IsLocked": {}}),
            'vss["Vehicle.Cabin.Door.Row1.DriverSide.IsLocked"]',
            "outside Vehicle.Accessories",
        ),
        (
            lambda d: d["vss"].update({"Vehicle.Cabin.Light.Spotlight.{row}.{side}.IsGlowing": {}}),
            'vss["Vehicle.Cabin.Light.Spotlight.{row}.{side}.IsGlowing"]',
            "no standard VSS signal",
        ),
        (lambda d: d.update(reads=["Vehicle.Sped"]), "reads[0]", "did you mean Vehicle.Speed"),
        (lambda d: d.update(actuates=["Vehicle.ADAS.ABS.IsEnabled"]), "actuates[0]", "safety-critical"),
        (lambda d: d.update(actuates=["Vehicle.**"]), "actuates[0]", "safety-critical"),
        (
            lambda d: d.update(actuates=["Vehicle.Cabin.HVAC.AmbientAirTemperature"]),
            "actuates[0]",
            "no actuator",
        ),
        (
            lambda d: d.update(signature={"algorithm": "RSA", "key_id": "x", "value": "y"}),
            "signature.algorithm",
            "Ed25519",
        ),
    ],
)
def test_invalid_manifest_names_the_field(mutate: Any, field: str, words: str) -> None:
    data = base()
    mutate(data)
    found = problems(data)
    assert field in found, found
    assert words in found[field]


def test_all_problems_are_listed_at_once() -> None:
    data = base()
    data["power"]["peak_w"] = "lots"
    data["model"] = ""
    found = problems(data)
    assert {"power.peak_w", "model"} <= set(found)


def test_not_a_mapping_and_bad_text() -> None:
    with pytest.raises(ManifestError, match="mapping"):
        parse_manifest([1, 2])
    from anycar.accessories.manifest import parse_manifest_text

    with pytest.raises(ManifestError, match=r"m.yaml:3: invalid YAML"):
        parse_manifest_text("a: 1\nb: [\n", source="m.yaml")
    with pytest.raises(ManifestError, match=r"m.json:1: invalid JSON"):
        parse_manifest_text("{", source="m.json")


def test_bind_uses_standard_path_where_the_mount_allows() -> None:
    cat = Catalog.load_default()
    m = parse_manifest(virtual.manifest_data("cabin_light"))
    b = m.bind("Light1", {"row": 2, "side": "PassengerSide"}, cat)
    assert b.paths["IsLightOn"] == "Vehicle.Cabin.Light.Spotlight.Row2.PassengerSide.IsLightOn"
    # VSS has no Row3 spotlight: the signal goes under the accessories branch with standard metadata
    b3 = m.bind("Light2", {"row": 3, "side": "Middle"}, cat)
    assert b3.paths["IsLightOn"] == "Vehicle.Accessories.Light2.IsLightOn"
    cat.apply_overlay(b3.overlay)
    assert cat.get("Vehicle.Accessories.Light2.Intensity").unit == "percent"
    # taken by someone else: fall back too
    b4 = m.bind("Light3", {"row": 1, "side": "DriverSide"}, cat, is_free=lambda p: False)
    assert b4.paths["Color"] == "Vehicle.Accessories.Light3.Color"


def test_bind_relative_signals_go_under_the_instance() -> None:
    cat = Catalog.load_default()
    m = parse_manifest(virtual.manifest_data("cargo_sensor"))
    b = m.bind("Cargo1", {}, cat)
    cat.apply_overlay(b.overlay)
    assert b.paths == {
        "IsOpen": "Vehicle.Accessories.Cargo1.IsOpen",
        "Temperature": "Vehicle.Accessories.Cargo1.Temperature",
        "Weight": "Vehicle.Accessories.Cargo1.Weight",
    }
    assert cat.get("Vehicle.Accessories.Cargo1.Weight").max == 2000
    assert cat.get(b.status_path).allowed == ("RUNNING", "UNAVAILABLE", "SHED", "REMOVED")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from([*sorted(base()), "x", "signature"]), json_values, max_size=12))
def test_hypothesis_random_manifests_only_raise_manifest_error(data: dict[str, Any]) -> None:
    try:
        parse_manifest(data)
    except ManifestError as exc:
        assert exc.problems and all(isinstance(f, str) for f, _ in exc.problems)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(base())), json_values)
def test_hypothesis_one_bad_field_is_named(key: str, value: Any) -> None:
    data = base()
    data[key] = value
    try:
        parse_manifest(data)
    except ManifestError as exc:
        assert any(
            f.startswith(key) or f == "(top level)" or f.startswith("traits") or f.startswith("vss")
            for f, _ in exc.problems
        ), exc.problems
    json.dumps(data)
