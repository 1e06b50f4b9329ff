"""Malformed routes and vehicle parameters get a ConfigError that says where, never a crash."""

from __future__ import annotations

from importlib import resources
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from anycar.errors import ConfigError
from anycar.sim.route import Route, parse_geojson
from anycar.sim.vehicle import VehicleParams, parse_vehicle

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
coordinates = st.lists(
    st.lists(
        st.floats(allow_nan=False, allow_infinity=False, width=32) | st.integers() | st.text(max_size=3),
        max_size=4,
    ),
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(data=json_values)
def test_any_json_is_a_route_or_a_config_error(data: Any) -> None:
    try:
        route = parse_geojson("fuzz", data)
    except ConfigError:
        return
    assert isinstance(route, Route)


@settings(max_examples=200, deadline=None)
@given(coords=coordinates)
def test_any_line_string_is_a_route_or_a_config_error(coords: Any) -> None:
    try:
        route = parse_geojson("fuzz", {"type": "LineString", "coordinates": coords})
    except ConfigError as exc:
        assert "fuzz" in str(exc)
        return
    pos = route.at(route.length_m / 3)
    assert -90 <= pos.latitude <= 90 and 0 <= pos.heading < 360


GOOD = yaml.safe_load((resources.files("anycar.sim") / "data/vehicles/kaiyun_pickman.yaml").read_text())


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(sorted(GOOD)), value=json_values)
def test_any_field_value_is_accepted_or_named(key: str, value: Any) -> None:
    data = {**GOOD, key: value}
    try:
        params = parse_vehicle("fuzz", data, "fuzz.yaml")
    except ConfigError as exc:
        assert str(exc).startswith("fuzz.yaml")
        return
    assert isinstance(params, VehicleParams)


@pytest.mark.parametrize("section", ["battery", "low_voltage", "hvac"])
def test_a_missing_section_field_is_named(section: str) -> None:
    data = {**GOOD, section: {k: v for k, v in GOOD[section].items() if k != next(iter(GOOD[section]))}}
    with pytest.raises(ConfigError, match=rf"{section}\.{next(iter(GOOD[section]))}"):
        parse_vehicle("x", data, "x.yaml")
