"""The VSS catalog: look-up, wildcard patterns and metadata of the shipped VSS 6.0 tree."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anycar.errors import InvalidPattern, UnknownPath
from anycar.model import Catalog, NodeType


def test_ships_the_whole_vss_6_tree(catalog: Catalog) -> None:
    assert len(catalog) == 1267
    kinds = {t: sum(1 for s in catalog if s.type is t) for t in NodeType if t is not NodeType.BRANCH}
    assert kinds == {NodeType.SENSOR: 494, NodeType.ACTUATOR: 643, NodeType.ATTRIBUTE: 130}


def test_lookup_by_path_carries_metadata(catalog: Catalog) -> None:
    speed = catalog.get("Vehicle.Speed")
    assert (speed.type, speed.datatype, speed.unit) == (NodeType.SENSOR, "float", "km/h")
    vin = catalog.get("Vehicle.VehicleIdentification.VIN")
    assert vin.pattern and vin.pattern.startswith("^")
    assert catalog.by_id(speed.id) is speed


def test_unknown_path_suggests_the_nearest(catalog: Catalog) -> None:
    with pytest.raises(UnknownPath, match=r"did you mean Vehicle\.Speed"):
        catalog.get("Vehicle.Sped")


@pytest.mark.parametrize(
    ("pattern", "count"),
    [
        ("Vehicle.Cabin.Door.*.*.IsOpen", 4),
        ("Vehicle.Cabin.Door.Row*.DriverSide.IsOpen", 2),
        ("Vehicle.**.IsOpen", 17),
        ("Vehicle.Cabin.Door", 44),
        ("*", 1267),
        ("**", 1267),
        ("Vehicle.Speed", 1),
        ("Vehicle.Nothing.*", 0),
    ],
)
def test_wildcards_follow_kuksa_rules(catalog: Catalog, pattern: str, count: int) -> None:
    assert len(catalog.match(pattern)) == count


def test_a_single_star_is_exactly_one_segment(catalog: Catalog) -> None:
    paths = {s.path for s in catalog.match("Vehicle.Cabin.Door.*.*.IsOpen")}
    assert "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen" in paths
    assert all(p.count(".") == 5 for p in paths)


@pytest.mark.parametrize("bad", ["", "Vehicle..Speed", "Vehicle.Sp eed", "Vehicle.a**b", "Vehicle.$"])
def test_malformed_patterns_are_refused(catalog: Catalog, bad: str) -> None:
    with pytest.raises(InvalidPattern):
        catalog.match(bad)


def test_resolve_refuses_what_matches_nothing(catalog: Catalog) -> None:
    with pytest.raises(UnknownPath):
        catalog.resolve("Vehicle.Cabin.Nothing")


def test_metadata_lists_limits_and_allowed(catalog: Catalog) -> None:
    soc = catalog.get("Vehicle.Powertrain.TractionBattery.StateOfCharge.Current").metadata()
    assert soc["min"] == 0 and soc["max"] == 100 and soc["unit"] == "percent"
    gear = catalog.find("Vehicle.Cabin.Infotainment.Media.Action")
    assert gear is not None and gear.allowed and "PLAY" in gear.allowed


SHARED = Catalog.load_default()


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="Vehicl.*Cabin_Door0123 $", max_size=40))
def test_any_pattern_text_matches_or_is_refused_cleanly(pattern: str) -> None:
    try:
        found = SHARED.match(pattern)
    except InvalidPattern:
        return
    assert all(s.path.startswith("Vehicle.") for s in found)
