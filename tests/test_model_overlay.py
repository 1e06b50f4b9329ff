"""VSS overlays add and change nodes at run time, and bad ones change nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anycar.errors import OverlayError
from anycar.model import Catalog, NodeType, load_overlay, parse_overlay, parse_overlay_text

LIGHT_OVERLAY = """\
Vehicle.Accessories:
  type: branch
  description: Fitted accessories.
Vehicle.Accessories.Light1:
  type: branch
  description: A light on a mount.
Vehicle.Accessories.Light1.IsOn:
  type: actuator
  datatype: boolean
  description: Light on or off.
Vehicle.Accessories.Light1.Brightness:
  type: actuator
  datatype: uint8
  unit: percent
  min: 0
  max: 100
  description: Brightness.
"""


def test_vspec_overlay_adds_signals(tmp_path: Path, catalog: Catalog) -> None:
    file = tmp_path / "light.vspec"
    file.write_text(LIGHT_OVERLAY)
    added, changed = catalog.apply_overlay(load_overlay(file))
    assert [s.path for s in added] == [
        "Vehicle.Accessories.Light1.IsOn",
        "Vehicle.Accessories.Light1.Brightness",
    ]
    assert not changed
    assert len(catalog) == 1269
    assert catalog.get("Vehicle.Accessories.Light1.Brightness").max == 100
    assert len(catalog.match("Vehicle.Accessories.*.IsOn")) == 1


def test_nested_json_overlay_changes_an_existing_signal(tmp_path: Path, catalog: Catalog) -> None:
    file = tmp_path / "speed.json"
    file.write_text('{"Vehicle": {"type": "branch", "children": {"Speed": {"max": 45, "min": 0}}}}')
    speed = catalog.get("Vehicle.Speed")
    added, changed = catalog.apply_overlay(load_overlay(file))
    assert changed == [speed] and not added
    assert speed.max == 45 and speed.id == catalog.get("Vehicle.Speed").id
    with pytest.raises(ValueError):
        speed.validate(46.0)


def test_instances_expand_like_vss_tools(catalog: Catalog) -> None:
    overlay = parse_overlay(
        {
            "Vehicle.Cargo": {"type": "branch", "description": "Cargo bed", "instances": ["Zone[1,2]"]},
            "Vehicle.Cargo.Temperature": {
                "type": "sensor",
                "datatype": "float",
                "unit": "Celsius",
                "description": "t",
            },
        }
    )
    added, _ = catalog.apply_overlay(overlay)
    assert sorted(s.path for s in added) == [
        "Vehicle.Cargo.Zone1.Temperature",
        "Vehicle.Cargo.Zone2.Temperature",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Vehicle.X:\n  type: sensor\n  datatype: floaty\n", r"x.vspec:1: Vehicle.X: datatype 'floaty'"),
        ("Vehicle.X:\n  type: sensr\n  datatype: float\n", "type 'sensr' is not one of"),
        ("Vehicle.X:\n  datatype: float\n", "a new node needs 'type'"),
        ("Vehicle.X:\n  type: sensor\n  datatype: float\n  unit: furlong\n", "unit 'furlong'"),
        (
            "Vehicle.X:\n  type: sensor\n  datatype: float\n  min: 5\n  max: 1\n",
            "min 5 is greater than max 1",
        ),
        ("Vehicle.X:\n  type: sensor\n  datatype: string\n  min: 1\n", "field 'min'"),
        ("Vehicle.X:\n  type: sensor\n  datatype: uint8\n  allowed: [1, 300]\n", "outside"),
        ("Vehicle.X:\n  type: sensor\n  datatype: float\n  colour: red\n", "unknown attribute 'colour'"),
        ("Vehicle.Speed.Sub:\n  type: sensor\n  datatype: float\n", "parent Vehicle.Speed is a signal"),
        ("Vehicle.Cabin:\n  type: sensor\n  datatype: float\n", "cannot turn a branch"),
        ("Vehicle.x-y:\n  type: sensor\n", "not a VSS name"),
        ("Vehicle.X: [1, 2\n", "invalid YAML"),
        ("- just a list\n", "mapping of paths"),
    ],
)
def test_bad_overlays_say_where_and_change_nothing(catalog: Catalog, text: str, message: str) -> None:
    before = len(catalog)
    with pytest.raises(OverlayError, match=message):
        catalog.apply_overlay(parse_overlay_text(text, source="x.vspec"))
    assert len(catalog) == before


def test_a_bad_node_anywhere_rejects_the_whole_overlay(catalog: Catalog) -> None:
    overlay = parse_overlay(
        {
            "Vehicle.Good": {"type": "sensor", "datatype": "float", "description": "ok"},
            "Vehicle.Bad": {"type": "sensor", "datatype": "nope"},
        }
    )
    with pytest.raises(OverlayError):
        catalog.apply_overlay(overlay)
    assert catalog.find("Vehicle.Good") is None


def test_extended_attributes_are_kept_when_allowed(catalog: Catalog) -> None:
    overlay = parse_overlay(
        {"Vehicle.Speed": {"dbc2vss": {"signal": "DI_vehicleSpeed"}}}, extended_attributes={"dbc2vss"}
    )
    catalog.apply_overlay(overlay)
    assert catalog.get("Vehicle.Speed").extra["dbc2vss"]["signal"] == "DI_vehicleSpeed"
    assert catalog.get("Vehicle.Speed").type is NodeType.SENSOR


SHARED = Catalog.load_default()


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=30),
        st.one_of(
            st.none(),
            st.text(max_size=10),
            st.dictionaries(st.text(max_size=10), st.one_of(st.text(max_size=10), st.integers(), st.none())),
            st.integers(),
        ),
        max_size=5,
    )
)
def test_random_overlays_never_crash_and_never_half_apply(data: dict[str, object]) -> None:
    catalog = SHARED
    before = len(catalog)
    try:
        catalog.apply_overlay(parse_overlay(data))
    except OverlayError:
        assert len(catalog) == before
