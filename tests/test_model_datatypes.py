"""The coercion rules every write goes through (docs/signals.md)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anycar.model.datatypes import (
    MAX_ARRAY_LENGTH,
    MAX_STRING_LENGTH,
    ValueRejected,
    compile_validator,
    parse_text,
    to_text,
)


def test_integers_accept_integral_floats_and_refuse_the_rest() -> None:
    check = compile_validator("uint8")
    assert check(3) == 3 and check(3.0) == 3 and type(check(3.0)) is int
    for bad in (3.5, -1, 256, True, "3", None, math.nan):
        with pytest.raises(ValueRejected):
            check(bad)


def test_min_max_narrow_the_datatype_range() -> None:
    check = compile_validator("int16", minimum=-10, maximum=10)
    assert check(-10) == -10 and check(10) == 10
    with pytest.raises(ValueRejected, match=r"outside \[-10, 10\]"):
        check(11)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 1e39, True, "1.0", None, [1.0]])
def test_floats_refuse_nan_infinity_overflow_and_other_types(bad: object) -> None:
    with pytest.raises(ValueRejected):
        compile_validator("float")(bad)


def test_double_takes_what_float_cannot() -> None:
    assert compile_validator("double")(1e39) == 1e39
    assert compile_validator("float")(2) == 2.0


def test_booleans_are_only_booleans() -> None:
    check = compile_validator("boolean")
    assert check(True) is True
    for bad in (0, 1, "true", None):
        with pytest.raises(ValueRejected):
            check(bad)


def test_strings_length_pattern_and_allowed() -> None:
    check = compile_validator("string", allowed=["ON", "OFF"])
    assert check("ON") == "ON"
    with pytest.raises(ValueRejected, match="allowed"):
        check("MAYBE")
    with pytest.raises(ValueRejected, match="exceeds"):
        compile_validator("string")("x" * (MAX_STRING_LENGTH + 1))
    vin = compile_validator("string", pattern=r"[A-Z0-9]{17}")
    assert vin("WVWZZZ1JZXW000001") == "WVWZZZ1JZXW000001"
    with pytest.raises(ValueRejected, match="pattern"):
        vin("short")


def test_arrays_check_each_element_and_their_length() -> None:
    check = compile_validator("uint8[]", maximum=100)
    assert check((1, 2.0)) == [1, 2]
    with pytest.raises(ValueRejected, match=r"element \[1\]"):
        check([1, 101])
    with pytest.raises(ValueRejected, match="exceeds"):
        check([0] * (MAX_ARRAY_LENGTH + 1))
    with pytest.raises(ValueRejected, match="exceeds 2"):
        compile_validator("string[]", arraysize=2)(["a", "b", "c"])
    with pytest.raises(ValueRejected, match="a list"):
        check("1,2")


def test_text_form_round_trips() -> None:
    assert parse_text("boolean", "true") is True
    assert parse_text("uint8[]", "[1, 2]") == [1, 2]
    assert parse_text("float", " 1.5 ") == 1.5
    assert to_text(True) == "true" and to_text([1, 2]) == "[1, 2]"
    with pytest.raises(ValueRejected):
        parse_text("int32", "twelve")
    with pytest.raises(ValueRejected):
        parse_text("boolean", "yes")


@given(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(), st.lists(st.integers())))
def test_a_validator_either_returns_a_valid_value_or_rejects(value: object) -> None:
    check = compile_validator("int32", minimum=-100, maximum=100)
    try:
        out = check(value)
    except ValueRejected:
        return
    assert type(out) is int and -100 <= out <= 100


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_no_float_outside_limits_gets_through(value: float) -> None:
    check = compile_validator("float", minimum=0, maximum=100)
    try:
        out = check(value)
    except ValueRejected:
        assert not (0 <= value <= 100)
        return
    assert 0 <= out <= 100
